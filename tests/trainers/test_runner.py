"""The shared training machinery: schedules, the NaN guard, checkpoints, CSV truncation."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d.trainers import runner


def test_linear_decay_matches_pix2pix_rule():
    sched = runner.LinearDecay(2e-4, decay_start=100, decay_end=200)
    values = [float(sched(s)) for s in (0, 100, 150, 199, 200, 500)]
    np.testing.assert_allclose(values, [2e-4, 2e-4, 1e-4, 2e-6, 0.0, 0.0], rtol=1e-5, atol=1e-12)
    restored = runner.LinearDecay.from_config(sched.get_config())
    assert float(restored(150)) == pytest.approx(1e-4)


def test_learning_rate_kinds():
    base = config_lib.TrainConfig(mode="x", lr_schedule="piecewise", lr_boundaries=(10, 20),
                                  lr_factors=(1.0, 0.5, 0.1))
    sched = runner.learning_rate(base, 1.0, 100, steps_per_iteration=2)
    # Boundaries are iterations; the optimizer steps twice per iteration.
    assert [float(sched(s)) for s in (0, 19, 21, 39, 41)] == pytest.approx(
        [1.0, 1.0, 0.5, 0.5, 0.1])
    linear = config_lib.TrainConfig(mode="x", lr_schedule="linear", lr_decay_start=0.5)
    sched = runner.learning_rate(linear, 1.0, 100)
    assert float(sched(50)) == pytest.approx(1.0) and float(sched(75)) == pytest.approx(0.5)
    with pytest.raises(config_lib.ConfigError, match="one more value"):
        config_lib.TrainConfig(mode="x", lr_schedule="piecewise", lr_boundaries=(10,),
                               lr_factors=(1.0,)).validate()


class NaNAfter(keras.Model):
    """A one-weight model whose loss becomes NaN from its 4th step on."""

    def __init__(self):
        super().__init__()
        self.w = self.add_weight(shape=(), initializer="ones")
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False)
        self.tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.tracker]

    def train_step(self, data):
        self.count.assign_add(1.0)
        loss = tf.where(self.count >= 4.0, tf.constant(np.nan), self.w * 2.0)
        self.w.assign_add(1.0)
        self.tracker.update_state(loss)
        return {"loss": self.tracker.result()}


def make_run(tmp_path, **cfg):
    config = config_lib.TrainConfig(mode="test", run_dir=str(tmp_path), **cfg)
    path = tmp_path / "00001-test"
    path.mkdir()
    return runner.Run(path=path, config=config, strategy=tf.distribute.get_strategy())


def test_nan_loss_stops_with_step_and_name_and_keeps_last_good_checkpoint(tmp_path):
    run = make_run(tmp_path, checkpoint_every=2, log_every=1)
    model = NaNAfter()
    model.compile(optimizer="sgd")
    ds = tf.data.Dataset.from_tensors(0.0).repeat()
    with pytest.raises(runner.NonFiniteLossError, match="'loss' is nan at step 4") as err:
        runner.fit(model, ds, run, total=10, optimizers={})
    assert "ckpt-2" in str(err.value)
    assert tf.train.latest_checkpoint(str(run.checkpoint_dir)).endswith("ckpt-2")
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run.checkpoint_dir)))
    # The weights of the checkpoint are those after 2 good steps, not after the NaN.
    weight = [k for k in reader.get_variable_to_shape_map() if k.startswith("model/w")]
    assert reader.get_tensor(weight[0]) == 3.0


def test_truncate_csv_drops_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text("step,loss\n5,1\n10,2\n15,3\n")
    runner.truncate_csv(path, 10)
    assert path.read_text() == "step,loss\n5,1\n10,2\n"


def test_config_precedence_preset_then_flags():
    from tfgan3d.trainers.pix2pix import Pix2PixConfig
    cfg = config_lib.resolve_config(Pix2PixConfig, "pix2pix", {"preset": "tiny", "ngf": 12})
    assert cfg.crop_size == 32 and cfg.ngf == 12
    paper = config_lib.resolve_config(Pix2PixConfig, "pix2pix", {"preset": "paper"})
    assert (paper.crop_size, paper.load_size, paper.batch_size, paper.lr, paper.beta1,
            paper.lambda_l1, paper.flip) == (256, 286, 1, 2e-4, 0.5, 100.0, True)
    with pytest.raises(config_lib.ConfigError, match="--steps or --epochs"):
        config_lib.resolve_config(Pix2PixConfig, "pix2pix", {"steps": 3, "epochs": 1.0})


def test_csv_header_widens_when_a_phase_logs_new_columns(tmp_path):
    run = make_run(tmp_path)
    run.path.joinpath("losses.csv").write_text("step,time_s,a\n1,0.1,5\n")
    monitor = runner.RunMonitor.__new__(runner.RunMonitor)
    monitor.run, monitor.csv_path, monitor.columns = run, run.path / "losses.csv", None
    monitor._append_csv({"step": 2, "time_s": 0.2, "b": 7})
    assert run.path.joinpath("losses.csv").read_text() == (
        "step,time_s,a,b\n1,0.1,5,\n2,0.2,,7\n")
