"""Resuming restores the whole training state, in every mode: after `--resume` the run's
checkpointed objects (network weights and batch-norm statistics, every optimizer's slots and
iteration counter, learning rates, SimGAN's history buffer, the step counter) equal what the
run held when it saved its newest checkpoint.

Each mode trains a few tiny iterations in this process (once for the module) with a linear
learning-rate decay from step 0 (so the rate changes every iteration), checkpointing every
step. The state it holds at the end is written out; a copy of the run is resumed with nothing
left to do (its step count reached), and the restored state is written out too. Both must
equal the newest checkpoint, key for key. Another copy loses its newest checkpoint's index and
is resumed from the one before.
"""
import shutil

import numpy as np
import pytest
import tensorflow as tf
from run_helpers import read_rows

from tfgan3d.trainers import runner

COMMON = {"preset": "tiny", "log_every": 1, "sample_every": 1000, "checkpoint_every": 1,
          "lr_schedule": "linear", "lr_decay_start": 0.0}
MODES = {
    "pix2pix": {"steps": 2},
    # a refiner and a discriminator pretraining step, then K_g = 2 refiner steps and one
    # discriminator step (each D step stores half its batch in the history buffer)
    "simgan": {"steps": 5, "pretrain_r_steps": 1, "pretrain_d_steps": 1},
    "sim2real": {"stage1_steps": 2, "stage2_steps": 2},
    # phase 1 at iterations 1-2, phase 2 (the refiner) at 3-4
    "fcr_alphagan": {"steps": 4, "phase2_start": 3},
}
SKIP = ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")


def state(prefix) -> dict:
    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k not in SKIP}


def assert_same_state(a: dict, b: dict, what: str):
    assert sorted(a) == sorted(b), f"{what}: keys differ: {sorted(set(a) ^ set(b))[:10]}"
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, f"{what}: {len(different)} values differ, e.g. {different[:5]}"


@pytest.fixture(scope="module", params=list(MODES))
def trained(request, tmp_path_factory):
    """(mode, run folder, the state the run held when it ended): one tiny run per mode, made
    once; each test resumes its own copy of the folder (`copy_of`)."""
    mode = request.param
    root = tmp_path_factory.mktemp(f"trained-{mode}")
    run = runner.run_mode(mode, {**COMMON, **MODES[mode], "run_dir": str(root / "runs")})
    held = state(run.checkpoint.write(str(root / "held" / "ckpt")))
    return mode, run.path, held


def copy_of(trained, tmp_path):
    """(runs folder, run folder): a copy of the trained run's folder under tmp_path/runs."""
    path = trained[1]
    runs = tmp_path / "runs"
    runs.mkdir()
    return runs, shutil.copytree(path, runs / path.name)


def test_resume_restores_every_saved_value(trained, tmp_path):
    mode, _, held = trained
    runs, path = copy_of(trained, tmp_path)
    newest = tf.train.latest_checkpoint(str(path / "checkpoints"))
    saved = state(newest)
    # Random streams ("rng/") included: a sample drawn after the last checkpoint must leave
    # the model's seed generator as the checkpoint holds it.
    assert_same_state(held, saved, "the state at the end of the run vs its newest checkpoint")
    final_step = int(saved["step/.ATTRIBUTES/VARIABLE_VALUE"])
    assert final_step == int(read_rows(path)[-1]["step"])

    resumed = runner.run_mode(mode, {"resume": str(path), "run_dir": str(runs)})
    assert resumed.path == path and int(resumed.step.numpy()) == final_step
    restored = state(resumed.checkpoint.write(str(tmp_path / "restored" / "ckpt")))
    assert_same_state(restored, saved, "the restored state vs the newest checkpoint")

    # What the comparison covered: every weight of the networks (saved under model/ or, for
    # trainable ones, under the optimizer that steps them), every optimizer's slots (two Adam
    # moments per weight; SimGAN's SGD has none) and iteration counter.
    model = resumed.checkpoint.model
    optimizers = {name[len("opt_"):]: getattr(resumed.checkpoint, name)
                  for name in dir(resumed.checkpoint) if name.startswith("opt_")}
    assert optimizers
    variables = {id(v) for v in model.weights}
    for name, opt in optimizers.items():
        inner = getattr(opt, "inner_optimizer", opt)
        variables |= {id(v) for v in inner.variables}
        assert int(inner.iterations.numpy()) > 0, f"optimizer {name} never stepped"
    assert len(saved) >= len(variables), (len(saved), len(variables))
    if mode == "simgan":
        assert saved["buffer/filled/.ATTRIBUTES/VARIABLE_VALUE"] > 0

    # The learning rates after the restore are the ones the run logged at that step (the
    # linear decay moves them every iteration, so a lost iteration counter shows).
    last = read_rows(resumed.path)[-1]
    for name, opt in optimizers.items():
        logged = float(last[f"lr_{name}"])
        assert runner.current_lr(opt) == pytest.approx(logged, rel=1e-5), name
        assert logged < float(COMMON.get("lr", 1.0))


def test_fallback_resume_saves_the_step_it_fell_back_from(trained, tmp_path):
    """The newest checkpoint loses its index while the `checkpoint` state file still names it
    (a disk error, not a kill): the resume restores the one before, moves the damaged files
    aside (never deleted), rewrites the state file, and saves the redone step again. A stale
    state file used to make the saver skip that step, so its training was on disk nowhere."""
    mode = trained[0]
    runs, path = copy_of(trained, tmp_path)
    ckpts = path / "checkpoints"
    final = runner.checkpoint_numbers(ckpts)[0]
    assert tf.train.latest_checkpoint(str(ckpts)).endswith(f"ckpt-{final}")
    (ckpts / f"ckpt-{final}.index").unlink()
    data = [p.name for p in ckpts.glob(f"ckpt-{final}.data-*")]
    assert data

    resumed = runner.run_mode(mode, {"resume": str(path), "run_dir": str(runs)})
    assert int(resumed.step.numpy()) == final
    assert runner.verify_checkpoint(ckpts / f"ckpt-{final}") is None, "the redone step was not saved"
    aside = ckpts / f"ckpt-{final}.damaged"
    assert sorted(p.name for p in aside.iterdir()) == sorted(data)
    assert tf.train.latest_checkpoint(str(ckpts)) == str(ckpts / f"ckpt-{final}")
    assert [int(r["step"]) for r in read_rows(path)] == list(range(1, final + 1))

    # A later resume restores the redone checkpoint itself: nothing left to redo or set aside.
    again = runner.run_mode(mode, {"resume": str(path), "run_dir": str(runs)})
    assert int(again.step.numpy()) == final
    assert sorted(p.name for p in ckpts.iterdir() if p.name.endswith((".damaged", "-2"))) == \
        [aside.name]
