"""sim2real with --deterministic (tiny preset): every stage of two fresh runs reads the same
batches, and a run resumed from its first checkpoint (what a kill right after that save
leaves) ends with the uninterrupted run's tensors: weights, Adam slots, batch-norm
statistics, the random stream of the reparameterisation.

Old code: the sample images were read through the training streams' own dataset objects,
whose shuffle seed generator every iterator of an object shares, so each run's training order
depended on how far that read-ahead had got (two CLI runs differed at step 1: 8 of 332 tensors
equal at the end); stage 2 read another iterator of the same objects, and
`Sim2RealVAE.code` drew noise even for the mean, after the checkpoint of that step was saved.
Two fresh runs trained in one process happened to agree on the old code (the read-ahead is a
matter of timing), so the fresh-run check reads the streams instead of training twice.
"""
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.trainers import runner

OPTS = {"preset": "tiny", "deterministic": True, "seed": 0, "stage1_steps": 4,
        "stage2_steps": 2, "checkpoint_every": 2, "log_every": 2, "sample_every": 2,
        "keep_checkpoints": 5}


def tensors(prefix) -> dict:
    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in k and not k.startswith("save_counter")}


def assert_same(a: dict, b: dict, what: str):
    assert a.keys() == b.keys(), f"{what}: keys differ: {sorted(set(a) ^ set(b))[:5]}"
    differ = [k for k in a if not np.array_equal(a[k], b[k])]
    assert differ == [], f"{what}: {len(differ)} of {len(a)} tensors differ: {differ[:5]}"


def test_each_stage_of_each_run_reads_the_seeded_stream_from_its_start(tmp_path, monkeypatch):
    """Two fresh runs, without training (runner.fit records the first batches it is given,
    across an epoch boundary): every stage of both runs reads the same batches, those of a
    fresh stream at position 0, whatever was read before. (Old code: stage 2 read a later
    shuffle epoch of stage 1's dataset object, and the order depended on read-ahead.)"""
    seen = []

    def record(model, dataset, run, *, total, **kwargs):
        batches = iter(dataset)
        seen.append([next(batches) for _ in range(4)])     # 8 of 6 examples per domain
        run.step.assign(total)
        return {}

    monkeypatch.setattr(runner, "fit", record)
    for name in ("a", "b"):
        runner.run_mode("sim2real", {**OPTS, "run_dir": str(tmp_path / name)})
    assert len(seen) == 4                                   # 2 runs x 2 stages
    for batches in seen[1:]:
        for got, first in zip(batches, seen[0]):
            for domain, key in (("sim", "image"), ("sim", "labels"), ("real", "image")):
                np.testing.assert_array_equal(got[domain][key], first[domain][key])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return runner.run_mode("sim2real", {**OPTS, "run_dir": str(tmp_path_factory.mktemp("a"))})


def test_resumed_run_ends_identical_to_the_uninterrupted_one(uninterrupted, tmp_path):
    """Run A trains stage 1 for 4 iterations and stage 2 for 2, checkpointing and drawing its
    sample grids every 2 (grids drawn right after saves); the copy resumes at step 2 and
    redoes the stage switch."""
    run = tmp_path / uninterrupted.path.name
    shutil.copytree(uninterrupted.path, run)
    ckpts = run / "checkpoints"
    # A kill right after the save at step 2: no later checkpoint, no stage-1 copy yet.
    for path in list(ckpts.glob("ckpt-4.*")) + list(ckpts.glob("ckpt-6.*")):
        path.unlink()
    (ckpts / "checkpoint").unlink()
    shutil.rmtree(ckpts / "stage1")
    resumed = runner.run_mode("sim2real", {"resume": str(run), "run_dir": str(tmp_path)})
    assert int(resumed.step.numpy()) == 6
    assert any(k.startswith("rng/") for k in tensors(ckpts / "ckpt-6"))
    assert_same(tensors(uninterrupted.checkpoint_dir / "ckpt-6"), tensors(ckpts / "ckpt-6"),
                "resumed at step 2 vs uninterrupted")
    assert_same(tensors(uninterrupted.checkpoint_dir / "stage1" / "ckpt"),
                tensors(ckpts / "stage1" / "ckpt"), "end of stage 1")
