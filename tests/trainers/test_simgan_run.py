"""The simgan mode end to end on the tiny preset: run folder, phases, resume, export."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from run_helpers import kill_after_checkpoint, read_rows, serving_script

from tfgan3d import config as config_lib
from tfgan3d import train
from tfgan3d.models.simgan import count_updates
from tfgan3d.trainers import runner
from tfgan3d.trainers import simgan

TINY = {"preset": "tiny"}   # 24 steps: R pretrained for 8, D for 4, then K_g = 2, K_d = 1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny training run shared by the tests that only read its outputs."""
    run_dir = tmp_path_factory.mktemp("runs")
    return runner.run_mode("simgan", {**TINY, "run_dir": str(run_dir)}).path


def test_run_folder_holds_everything(tiny_run):
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["mode"] == "simgan" and config["data"] == "builtin:eyes"
    # Completed from the data when the run started: export and resume rebuild the same model.
    assert config["image_size"] == [35, 55] and config["discriminator"] == "eyes"
    assert config["variant"] == "eyes" and config["refiner_kernel"] == 3
    assert (tiny_run / "checkpoints" / "checkpoint").exists()
    samples = sorted(p.name for p in (tiny_run / "samples").glob("*.png"))
    assert samples == ["step_0000012.png", "step_0000024.png"]
    grid = tf.io.decode_png((tiny_run / "samples" / samples[-1]).read_bytes()).numpy()
    assert grid.shape == (2 * 37 - 2, 3 * 57 - 2, 1)   # 2 rows of synthetic | refined | real
    assert list((tiny_run / "tensorboard").glob("events.out.tfevents.*"))


def test_losses_csv_follows_the_schedule(tiny_run):
    rows = read_rows(tiny_run)
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16, 20, 24]
    assert [float(r["phase"]) for r in rows] == [0, 0, 1, 2, 2, 2]
    # Pretraining: R alone on self-regularisation; D has not stepped. (That the term falls is
    # checked on a fixed batch in tests/models/test_simgan_model.py: two 4-step means over
    # fresh tiny batches differ by more than 4 steps of training move them.)
    assert all(float(r["r_reg_loss"]) > 0 for r in rows[:2])
    assert all(float(r["d_loss"]) == 0 for r in rows[:2])
    assert float(rows[2]["d_loss"]) > 0 and float(rows[2]["r_loss"]) == 0   # D pretraining
    assert all(float(r["r_adv_loss"]) > 0 and float(r["d_loss"]) > 0 for r in rows[3:])


def test_variant_picks_the_papers_recipes(tmp_path, capsys):
    def dry(*args):
        train.main(["--mode", "simgan", "--run-dir", str(tmp_path / "r"), "--dry-run", *args])
        return json.loads(capsys.readouterr().out.split("\n}")[0] + "\n}")

    eyes = dry("--preset", "paper")
    assert (eyes["variant"], eyes["refiner_kernel"], eyes["refiner_blocks"]) == ("eyes", 3, 4)
    assert (eyes["pretrain_r_steps"], eyes["pretrain_d_steps"], eyes["k_g"], eyes["k_d"]) == \
        (1000, 200, 50, 1)
    assert (eyes["batch_size"], eyes["optimizer"], eyes["lr"]) == (512, "sgd", 0.001)
    hands = dry("--preset", "paper", "--data", "builtin:depth", "--k-g", "3")
    assert (hands["variant"], hands["refiner_kernel"], hands["refiner_blocks"]) == \
        ("hands", 7, 10)
    assert (hands["pretrain_r_steps"], hands["k_g"]) == (500, 3)        # a flag wins
    assert not (tmp_path / "r").exists()
    config = config_lib.resolve_config(simgan.CONFIG, "simgan", {"data": "builtin:depth"})
    assert simgan.discriminator_layers(config, (64, 64)) == "eyes"       # the built-in size
    assert simgan.discriminator_layers(config, (224, 224)) == "hands"    # the paper's


def test_bad_config_value_is_named(tmp_path):
    with pytest.raises(SystemExit) as err:
        train.main(["--mode", "simgan", "--preset", "tiny", "--self-reg-feature", "vgg",
                    "--run-dir", str(tmp_path)])
    assert "--self-reg-feature" in str(err.value) and "'vgg'" in str(err.value)


def test_resume_after_sigkill_restores_the_buffer_and_the_counters(tmp_path):
    args = ["--mode", "simgan", "--preset", "tiny", "--run-dir", str(tmp_path),
            "--steps", "400", "--checkpoint-every", "4", "--log-every", "4",
            "--sample-every", "1000"]
    ckpts = tmp_path / "00001-simgan-tiny" / "checkpoints"
    killed_at = kill_after_checkpoint(args, ckpts, 20)
    assert killed_at >= 20 and killed_at % 4 == 0

    end = killed_at + 6
    run = runner.run_mode("simgan", {"resume": "latest", "run_dir": str(tmp_path),
                                     "steps": end})
    assert run.path.name == "00001-simgan-tiny"
    assert [int(r["step"]) for r in read_rows(run.path)] == list(range(4, end + 1, 4)) + [end]
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(ckpts)))
    names = reader.get_variable_to_shape_map()

    def value(part):
        (key,) = [k for k in names if part in k and not k.startswith("_CHECKPOINTABLE")
                  and "OPTIMIZER_SLOT" not in k]
        return reader.get_tensor(key)

    assert value("step/.ATTRIBUTES") == value("model/iteration") == end
    r_updates, d_updates = count_updates(end, pretrain_r_steps=8, pretrain_d_steps=4, k_g=2,
                                         k_d=1)
    # Counters carried across the kill: the optimizers stepped exactly on their turns,
    # and the buffer drew once per discriminator step, 2 images a time, 16 at most.
    assert value("opt_r/_iterations") == r_updates and value("opt_d/_iterations") == d_updates
    assert value("buffer/calls") == d_updates
    assert value("buffer/filled") == min(2 * d_updates, 16)
    assert np.count_nonzero(np.abs(value("buffer/images")).reshape(16, -1).sum(1)) == 16


EXPORTED = serving_script("""
    model = tf.saved_model.load(sys.argv[1])
    x = np.load(sys.argv[2])
    out = model.signatures["serving_default"](synthetic=tf.constant(x))["refined"].numpy()
    u8 = ((x + 1) * 127.5).round().astype(np.uint8)
    out8 = model.signatures["refine_uint8"](image=tf.constant(u8))["refined"].numpy()
    np.savez(sys.argv[3], refined=out, refined_uint8=out8)
""")


def test_export_loads_without_tfgan3d_and_matches_keras(tiny_run, tmp_path):
    from tfgan3d import export

    path = export.export_run(tiny_run, tmp_path / "serving")
    assert path == tmp_path / "serving" / "simgan" / "1"
    # Another size than the training one: the refiner is fully convolutional.
    x = np.random.default_rng(0).uniform(-1, 1, (2, 40, 64, 1)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([sys.executable, "-c", EXPORTED, str(path), str(tmp_path / "x.npy"),
                          str(tmp_path / "out.npz")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    served = np.load(tmp_path / "out.npz")
    _, model, _ = export.load_trained(tiny_run)
    expected = np.asarray(model.refiner(x))
    assert served["refined"].shape == (2, 40, 64, 1)
    np.testing.assert_allclose(served["refined"], expected, atol=1e-5)
    assert np.abs(expected - x).mean() > 1e-3                    # a trained refiner, not x
    expected8 = np.asarray(model.refiner(((x + 1) * 127.5).round() / 127.5 - 1))
    assert served["refined_uint8"].dtype == np.uint8
    assert np.abs(served["refined_uint8"].astype(int)
                  - np.round((expected8 + 1) * 127.5)).max() <= 1
