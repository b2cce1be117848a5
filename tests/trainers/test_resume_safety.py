"""Resume never destroys: damaged checkpoints fall back or refuse, overrides wait for the
restore, failed starts leave no folder, logs are cut back, and with --deterministic a resumed
run ends with the same weights as an uninterrupted one (pix2pix, tiny preset)."""
import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from run_helpers import read_rows

from tfgan3d import config as config_lib
from tfgan3d.trainers import runner

OPTS = {"preset": "tiny", "steps": 10, "checkpoint_every": 5, "log_every": 5,
        "sample_every": 10, "deterministic": True}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A pix2pix run of 10 iterations with checkpoints at 5 and 10 (copied by each test)."""
    run = runner.run_mode("pix2pix", {**OPTS, "run_dir": str(tmp_path_factory.mktemp("runs"))})
    return run.path


@pytest.fixture
def run_copy(trained, tmp_path):
    path = tmp_path / trained.name
    shutil.copytree(trained, path)
    return path


def snapshot(run):
    """Bytes of every file of a run folder."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def resume(run, **extra):
    return runner.run_mode("pix2pix", {"resume": str(run), "run_dir": str(run.parent), **extra})


def damage(prefix, how):
    data = next(prefix.parent.glob(prefix.name + ".data-*"))
    if how == "missing-index":
        prefix.with_name(prefix.name + ".index").unlink()
    elif how == "truncated":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif how == "zeroed":
        data.write_bytes(bytes(data.stat().st_size))
    elif how == "bit-flip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        data.write_bytes(bytes(raw))


def tensors(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in k and not k.startswith("save_counter")}


@pytest.mark.parametrize("how", ["missing-index", "bit-flip", "truncated", "zeroed"])
def test_damaged_newest_checkpoint_is_passed_over_with_a_warning(run_copy, how, capsys):
    ckpts = run_copy / "checkpoints"
    damage(ckpts / "ckpt-10", how)
    assert runner.newest_good_checkpoint(ckpts) == str(ckpts / "ckpt-5")
    assert f"warning: skipping checkpoint {ckpts / 'ckpt-10'}" in capsys.readouterr().err


def test_resume_falls_back_cuts_logs_back_and_equals_uninterrupted(run_copy, trained, capsys):
    """ckpt-10 loses its index and the state file is gone (a kill during the save), with a
    stale `_temp` folder: the run resumes from ckpt-5, redoes 6..10 with the same batches and
    random streams (--deterministic), and ends with the uninterrupted run's tensors."""
    from tensorflow.core.util import event_pb2
    ckpts = run_copy / "checkpoints"
    damage(ckpts / "ckpt-10", "missing-index")
    (ckpts / "checkpoint").unlink()
    (ckpts / "ckpt-10_temp").mkdir()
    (ckpts / "ckpt-10_temp" / "part-00000-of-00001.index").write_bytes(b"x")
    before = read_rows(run_copy)
    resume(run_copy)
    out = capsys.readouterr()
    assert "warning: skipping checkpoint" in out.err and "ckpt-10" in out.err
    assert f"resumed from {ckpts / 'ckpt-5'} at step 5" in out.out
    assert not (ckpts / "ckpt-10_temp").exists()
    rows = read_rows(run_copy)
    assert [int(r["step"]) for r in rows] == [5, 10]       # every step once
    assert rows[0] == before[0]
    assert float(rows[1]["time_s"]) > float(rows[0]["time_s"])   # the clock continues
    steps = []
    for path in (run_copy / "tensorboard").glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            steps += [event.step for v in event.summary.value if v.tag == "g_loss"]
    assert sorted(steps) == [5, 10]                          # step 10 redone, shown once
    full = tensors(trained / "checkpoints" / "ckpt-10")
    again = tensors(ckpts / "ckpt-10")
    assert full.keys() == again.keys() and any(k.startswith("rng/") for k in full)
    differ = [k for k in full if not np.array_equal(full[k], again[k])]
    assert differ == [], f"{len(differ)} of {len(full)} tensors differ: {differ[:5]}"


def test_no_readable_checkpoint_refuses_and_touches_nothing(run_copy):
    damage(run_copy / "checkpoints" / "ckpt-5", "zeroed")
    damage(run_copy / "checkpoints" / "ckpt-10", "missing-index")
    before = snapshot(run_copy)
    with pytest.raises(runner.RunError, match="expected a readable checkpoint, found none of 2"):
        resume(run_copy, steps=20, lr=1e-3)
    assert snapshot(run_copy) == before


def test_shape_changing_override_is_refused_and_config_kept(run_copy):
    before = snapshot(run_copy)
    with pytest.raises(runner.RunError, match=r"--ngf 16 \(was 8\)"):
        resume(run_copy, ngf=16)
    assert snapshot(run_copy) == before
    assert resume(run_copy).config.ngf == 8      # a plain resume still works (run complete)


def test_override_saved_after_restore_and_state_file_not_needed(run_copy, capsys):
    (run_copy / "checkpoints" / "checkpoint").write_text("garbage {{{")
    resume(run_copy, steps=15, lr=5e-4)
    assert "at step 10" in capsys.readouterr().out
    assert [int(r["step"]) for r in read_rows(run_copy)] == [5, 10, 15]
    saved = json.loads((run_copy / "config.json").read_text())
    assert (saved["steps"], saved["lr"]) == (15, 5e-4)


def test_failed_start_leaves_no_folder_and_latest_skips_failed(trained, tmp_path):
    parent = tmp_path / "runs"
    shutil.copytree(trained, parent / trained.name)
    with pytest.raises(ValueError):
        runner.run_mode("pix2pix", {**OPTS, "run_dir": str(parent),
                                    "data": str(tmp_path / "nowhere")})
    assert [p.name for p in parent.iterdir()] == [trained.name]
    # A folder left by a start killed before its first iteration (config.json only).
    failed = parent / "00002-pix2pix-tiny"
    failed.mkdir()
    failed.joinpath("config.json").write_text((trained / "config.json").read_text())
    assert runner.find_run(parent, "pix2pix", "latest") == parent / trained.name


class InfWeights(keras.Model):
    """Finite losses, but a non-trainable statistic that becomes Inf at the 3rd step (as
    batch norm's moving variance under a huge learning rate)."""

    def __init__(self):
        super().__init__()
        self.stat = self.add_weight(shape=(), initializer="ones", trainable=False)
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False)
        self.tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.tracker]

    def train_step(self, data):
        self.count.assign_add(1.0)
        self.stat.assign(tf.where(self.count >= 3.0, tf.constant(np.inf), self.count))
        self.tracker.update_state(1.0)
        return {"loss": self.tracker.result()}


def test_non_finite_weights_stop_the_run_before_a_checkpoint(tmp_path):
    config = config_lib.TrainConfig(mode="test", run_dir=str(tmp_path), checkpoint_every=2,
                                    log_every=1)
    (tmp_path / "00001-test").mkdir()
    run = runner.Run(path=tmp_path / "00001-test", config=config,
                     strategy=tf.distribute.get_strategy())
    model = InfWeights()
    model.compile(optimizer="sgd")
    with pytest.raises(runner.NonFiniteLossError, match="weights are NaN or Inf at step 4"):
        runner.fit(model, tf.data.Dataset.from_tensors(0.0).repeat(), run, total=10,
                   optimizers={})
    assert runner.checkpoint_numbers(run.checkpoint_dir) == [2]
    assert runner.verify_checkpoint(run.checkpoint_dir / "ckpt-2") is None
