"""Sharded TFRecord sets (tfgan3d.data.shards): the same examples as the folders they came
from, disjoint shards per worker, and flat resident memory while training from a set larger
than the growth it is allowed."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.data import paired, quality, refine_data, shards, voxel_files
from tfgan3d.data.scene_files import write_scene_dataset
from tfgan3d.data.voxel_formats import write_shards

HERE = Path(__file__).parent


def tf_config(n, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{20000 + i}" for i in range(n)]},
                       "task": {"type": "worker", "index": index}})


def test_workers_read_disjoint_shards(tmp_path, monkeypatch):
    files = [f"s{i}" for i in range(7)]
    parts = [shards.shard_files(files, 3, i) for i in range(3)]
    assert parts == [["s0", "s3", "s6"], ["s1", "s4"], ["s2", "s5"]]
    with pytest.raises(ValueError, match="3 workers need at least 3 shard files.*found 2"):
        shards.shard_files(files[:2], 3, 0)
    with pytest.raises(ValueError, match="worker 3 of 3"):
        shards.shard_files(files, 3, 3)
    assert shards.current_worker() == (1, 0)
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
         "task": {"type": "worker", "index": 1}}))
    assert shards.current_worker() == (3, 2)        # the chief is worker 0

    # Pair records: each worker of two streams its own shards; together, every record once.
    root = tmp_path / "pairs"
    with shards.ShardWriter(root, "pairs", 3) as writer:
        for i in range(10):
            writer.write({"input": b"x", "name": f"{i:02d}"})
        writer.meta.update(has_depth=False, has_labels=False)
    files = shards.discover_pair_shards(root, None)
    assert len(files) == 10 and len(files.shards) == 4
    seen = []
    for index in range(2):
        ds = shards.pair_records(files, training=True, seed=1, worker=(2, index))
        names = [e["name"].decode() for e in ds.as_numpy_iterator()]
        assert len(names) == len(set(names))
        seen.append(set(names))
    assert not seen[0] & seen[1] and seen[0] | seen[1] == {f"{i:02d}" for i in range(10)}

    # fcr_alphagan's voxel shards: the training pipeline of each worker (here from TF_CONFIG)
    # reads its own files.
    scenes = np.zeros((8, 4, 2, 4), np.uint8)
    scenes[:, 0, 0, 0] = np.arange(8)                    # scene k is marked with label k
    write_shards(scenes, [f"v{k}" for k in range(8)], tmp_path / "vox", shard_size=2,
                 format="tfrecord", split="train")
    def worker_marks(folder):
        """The scene marks each of two workers (TF_CONFIG) reads from `folder`."""
        marks = []
        for index in range(2):
            monkeypatch.setenv("TF_CONFIG", tf_config(2, index))
            ds = voxel_files.make_voxel_dataset(folder, batch_size=1, flip=False,
                                                one_hot=False, seed=0,
                                                worker=shards.current_worker())
            marks.append({int(b[0, 0, 0, 0]) for b in ds.as_numpy_iterator()})
            options = ds.options().experimental_distribute.auto_shard_policy
            assert options == tf.data.experimental.AutoShardPolicy.OFF
        return marks

    marks = worker_marks(tmp_path / "vox")
    assert not marks[0] & marks[1] and marks[0] | marks[1] == set(range(8)), marks
    # Fewer shards than workers (one npz shard of 8 scenes, two workers): each keeps its
    # own scenes of it.
    write_shards(scenes, [f"v{k}" for k in range(8)], tmp_path / "one", shard_size=8,
                 format="npz", split="train")
    marks = worker_marks(tmp_path / "one")
    assert marks == [{0, 2, 4, 6}, {1, 3, 5, 7}], marks


def test_pair_shards_give_the_folder_examples(tmp_path):
    """A converted scenes set: the evaluation stream equals the folder's, batch by batch;
    the quality filter keeps as many pairs (counted from the manifest) as on the folder; the
    training stream runs."""
    folder = write_scene_dataset(tmp_path / "scenes", "real-like", 12, 3, 16, 16, seed=0)
    out = shards.write_pair_shards(folder, tmp_path / "shards", shard_size=5)
    assert sorted(os.listdir(out)) == ["test", "train"]
    for split in ("train", "test"):
        by_file = paired.discover_pairs(folder, split)
        by_shard = paired.discover_pairs(out, split)
        assert by_shard.layout == "shards" and len(by_shard) == len(by_file)
        paired.validate_pairs(by_shard)
        a = list(paired.make_pix2pix_dataset(by_file, crop_size=16, batch_size=4,
                                             training=False, labels=True))
        b = list(paired.make_pix2pix_dataset(by_shard, crop_size=16, batch_size=4,
                                             training=False, labels=True))
        assert len(a) == len(b)
        for x, y in zip(a, b):
            for key in x:
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)
    kept_files, dropped_files = quality.filter_pairs(paired.discover_pairs(folder), 0.2)
    kept, dropped = quality.filter_pairs(paired.discover_pairs(out), 0.2)
    assert 0 < len(dropped_files) < 12, "the threshold should drop some pairs, not all"
    assert (len(kept), len(dropped)) == (len(kept_files), len(dropped_files))
    train = paired.make_pix2pix_dataset(kept, load_size=18, crop_size=16, batch_size=2,
                                        training=True, repeat=True)
    valid = [b["valid_b"].numpy() for b in train.take(3 * len(kept))]
    fractions = 1 - np.mean(np.concatenate(valid), axis=(1, 2, 3))
    assert fractions.max() <= 0.2 + 0.05        # crops of kept maps (dropped ones: > 0.2)


def test_simgan_shards_stream_the_builtin_eyes(tmp_path):
    """make_dataset --domain eyes --layout shards writes the built-in eyes a chunk at a time;
    the test set reads back as rendered (16-bit PNG: within 2/65535), and the training
    streams take the shard root as --data alone."""
    from tfgan3d.tools import make_dataset
    make_dataset.REFINE_CHUNK = 7          # several chunks: a chunked set equals a whole one
    assert make_dataset.main(["--domain", "eyes", "--n-train", "20", "--n-real", "12",
                              "--n-test", "9", "--layout", "shards", "--shard-size", "4",
                              "--out", str(tmp_path / "eyes")]) == 0
    images, labels = refine_data.labeled_test_set(str(tmp_path / "eyes"))
    want_images, want_labels = refine_data.render_builtin("eyes", "test", 9, (35, 55), 0)
    np.testing.assert_allclose(images, want_images, atol=2 / 65535)
    np.testing.assert_allclose(labels, want_labels, rtol=1e-6)
    synthetic, real, info = refine_data.make_refine_datasets(str(tmp_path / "eyes"),
                                                             batch_size=4)
    assert (info["n_synthetic"], info["n_real"], info["image_shape"]) == (20, 12, (35, 55, 1))
    assert info["label_names"] and info["label_shape"] == (5,)
    rendered, _ = refine_data.render_builtin("eyes", "synthetic", 20, (35, 55), 0)
    for batch in synthetic.take(6):          # 24 images: past one pass over the 20
        for image in batch["image"].numpy():
            assert np.abs(rendered - image).max(axis=(1, 2, 3)).min() <= 2 / 65535
    assert next(iter(real))["image"].shape == (4, 35, 55, 1)


def test_training_from_a_large_shard_set_keeps_memory_flat(tmp_path):
    """pix2pix trains 90 steps of 8 pairs (720 > the 600 pairs: a whole pass) from a shard
    set of about 180 MB; resident memory after the first 20 steps stays within 45 MB (a
    quarter of the set). The control in the same process, which reads the records into a
    list, grows by most of the set: the sampling would see a pipeline that loads it whole."""
    subprocess.run([sys.executable, str(HERE / "shard_memory_child.py"), str(tmp_path),
                    "600", "90"], check=True, timeout=580,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    result = json.loads((tmp_path / "memory.json").read_text())
    set_bytes, rss = result["set_bytes"], dict(result["rss"])
    assert set_bytes > 150 * 2 ** 20
    assert sorted(rss) == list(range(10, 91, 10))
    after_warmup = [rss[s] for s in rss if s >= 20]
    growth = max(after_warmup) - min(after_warmup)
    print(f"set {set_bytes / 2**20:.0f} MiB; RSS by step (MiB): "
          f"{[(s, round(b / 2**20)) for s, b in sorted(rss.items())]}; growth after step 20 "
          f"{growth / 2**20:.1f} MiB; control {result['control_bytes'] / 2**20:.0f} MiB")
    assert growth < set_bytes / 4, (growth, set_bytes)
    assert result["control_bytes"] > 0.7 * set_bytes
