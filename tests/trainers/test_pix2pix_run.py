"""The pix2pix mode end to end on the tiny preset: CLI, run folder, resume, export."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from run_helpers import kill_after_checkpoint, newest_checkpoint, read_rows, serving_script

from tfgan3d import train
from tfgan3d.trainers import runner

TINY = {"preset": "tiny"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny training run shared by the tests that only read its outputs."""
    run_dir = tmp_path_factory.mktemp("runs")
    run = runner.run_mode("pix2pix", {**TINY, "run_dir": str(run_dir), "steps": 60,
                                      "lr": 1e-3, "log_every": 10, "checkpoint_every": 20,
                                      "sample_every": 30})
    return run.path


def test_run_folder_holds_everything(tiny_run):
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["mode"] == "pix2pix" and config["preset"] == "tiny" and config["steps"] == 60
    assert config["crop_size"] == 32 and config["lambda_l1"] == 100.0   # complete config
    assert (tiny_run / "checkpoints" / "checkpoint").exists()
    assert sorted(p.name for p in (tiny_run / "samples").glob("*.png")) == [
        "step_0000030.png", "step_0000060.png"]
    assert list((tiny_run / "tensorboard").glob("events.out.tfevents.*"))
    assert tiny_run.name.startswith("00001-pix2pix-tiny")


def test_tiny_run_lowers_the_l1_loss(tiny_run):
    rows = read_rows(tiny_run)
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40, 50, 60]
    l1 = [float(r["g_l1_loss"]) for r in rows]
    assert np.mean(l1[-2:]) < 0.8 * l1[0], l1


def test_run_folders_are_numbered_never_overwritten(tmp_path):
    opts = {**TINY, "run_dir": str(tmp_path), "steps": 2, "log_every": 1, "sample_every": 100}
    first = runner.run_mode("pix2pix", opts).path
    second = runner.run_mode("pix2pix", opts).path
    assert (first.name[:5], second.name[:5]) == ("00001", "00002")


def test_dry_run_prints_config_and_writes_nothing(tmp_path, capsys):
    assert train.main(["--mode", "pix2pix", "--preset", "tiny", "--run-dir",
                       str(tmp_path / "r"), "--dry-run", "--lambda-l1", "10"]) is None
    printed = json.loads(capsys.readouterr().out.split("\n}")[0] + "\n}")
    assert printed["lambda_l1"] == 10.0 and printed["preset"] == "tiny"
    assert not (tmp_path / "r").exists()


def test_unknown_mode_and_option_list_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as err:
        train.main(["--mode", "cyclegan"])
    assert "valid modes:" in str(err.value) and "pix2pix" in str(err.value)
    with pytest.raises(SystemExit):
        train.main(["--mode", "pix2pix", "--lambda-l2", "3"])
    message = capsys.readouterr().err
    assert "--lambda-l2" in message and "--lambda-l1" in message and "--preset" in message


def test_help_lists_modes(capsys):
    with pytest.raises(SystemExit) as err:
        train.main(["--help"])
    assert err.value.code == 0
    assert "pix2pix" in capsys.readouterr().out


def test_bad_config_value_is_named(tmp_path):
    with pytest.raises(SystemExit) as err:
        train.main(["--mode", "pix2pix", "--preset", "tiny", "--crop-size", "40",
                    "--run-dir", str(tmp_path)])
    assert "--crop-size 40" in str(err.value)


def checkpoint_values(prefix) -> dict:
    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k not in ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")}


def test_resume_after_sigkill_continues_at_the_checkpoint(tmp_path):
    args = ["--mode", "pix2pix", "--preset", "tiny", "--run-dir", str(tmp_path),
            "--steps", "400", "--checkpoint-every", "5", "--log-every", "5",
            "--sample-every", "1000"]
    ckpts = tmp_path / "00001-pix2pix-tiny" / "checkpoints"
    killed_at = kill_after_checkpoint(args, ckpts, 15)
    assert killed_at >= 15 and killed_at % 5 == 0
    before_kill = checkpoint_values(newest_checkpoint(ckpts))

    # Restored, with nothing left to do: the state equals the one saved before the kill,
    # every network weight, optimizer slot and counter.
    opts = {"resume": "latest", "run_dir": str(tmp_path)}
    restored = runner.run_mode("pix2pix", {**opts, "steps": killed_at})
    after = checkpoint_values(restored.checkpoint.write(str(tmp_path / "restored" / "ckpt")))
    assert sorted(after) == sorted(before_kill)
    assert [k for k in after if not np.array_equal(after[k], before_kill[k])] == []

    run = runner.run_mode("pix2pix", {**opts, "steps": killed_at + 10})
    assert run.path.name == "00001-pix2pix-tiny"
    steps = [int(r["step"]) for r in read_rows(run.path)]
    assert steps == list(range(5, killed_at + 11, 5))       # no gap, no duplicate row
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(ckpts)))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == killed_at + 10
    # Each optimizer stepped exactly once per iteration across the kill and the resume.
    iterations = [k for k in reader.get_variable_to_shape_map() if "iteration" in k
                  and k.startswith("opt_g")]
    assert iterations and reader.get_tensor(iterations[0]) == killed_at + 10
    # What load_trained gives (export, evaluation) is the networks the run ended with.
    from tfgan3d.export import load_trained
    _, model, _ = load_trained(run.path)
    trained = run.checkpoint.model
    for loaded, ended in ((model.generator, trained.generator),
                          (model.discriminator, trained.discriminator)):
        assert len(loaded.weights) == len(ended.weights)
        for a, b in zip(loaded.weights, ended.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


EXPORTED = serving_script("""
    model = tf.saved_model.load(sys.argv[1])
    fn = model.signatures["serving_default"]
    rgb = np.load(sys.argv[2])
    out = fn(rgb=tf.constant(rgb))
    np.save(sys.argv[3], out["depth"].numpy())
""")


def test_export_loads_without_tfgan3d_and_matches_keras(tiny_run, tmp_path):
    from tfgan3d import export
    from tfgan3d.trainers import pix2pix

    path = export.export_run(tiny_run, tmp_path / "serving")
    assert path == tmp_path / "serving" / "pix2pix" / "1"
    rgb = np.random.default_rng(0).integers(0, 256, (2, 64, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", rgb)
    out = subprocess.run([sys.executable, "-c", EXPORTED, str(path), str(tmp_path / "rgb.npy"),
                          str(tmp_path / "depth.npy")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    served = np.load(tmp_path / "depth.npy")
    config, model, _ = export.load_trained(tiny_run)
    expected = pix2pix.predict_depth(model, rgb.astype("float32") / 127.5 - 1, config).numpy()
    assert served.shape == (2, 64, 32, 1)
    np.testing.assert_allclose(served, expected, atol=1e-4)
    assert served.min() >= 0 and served.max() <= config.max_depth     # metres
    # A second export takes the next version; an existing version is never overwritten.
    assert export.export_run(tiny_run, tmp_path / "serving").name == "2"
    with pytest.raises(FileExistsError):
        export.export_run(tiny_run, tmp_path / "serving", version=1)
