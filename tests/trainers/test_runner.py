"""The shared training machinery: schedules, the NaN guard, checkpoints, CSV truncation."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d.trainers import runner


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
