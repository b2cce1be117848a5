"""tools/compare_runs: agreement of two run folders' losses.csv and newest checkpoints."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.tools import compare_runs


def make_run(path, rows, weights):
    path.mkdir(parents=True)
    lines = ["step,time_s,loss,acc"] + [",".join(map(str, r)) for r in rows]
    (path / "losses.csv").write_text("\n".join(lines) + "\n")
    ckpt = tf.train.Checkpoint(**{k: tf.Variable(v) for k, v in weights.items()})
    ckpt.save(str(path / "checkpoints" / "ckpt"))
    return path


def test_worked_relative_differences(tmp_path):
    a = make_run(tmp_path / "a", [(1, 0.5, 2.0, 0.1), (2, 0.9, 1.0, 0.2)],
                 {"w": np.ones(3, np.float32), "b": np.zeros(2, np.float32)})
    b = make_run(tmp_path / "b", [(1, 7.5, 2.0, 0.1), (2, 8.0, 1.1, 0.2)],
                 {"w": np.array([1, 1, 1.5], np.float32), "b": np.zeros(2, np.float32)})
    losses = compare_runs.compare_losses(compare_runs.read_losses(a), compare_runs.read_losses(b))
    # time_s is a clock, left out; loss: |1.0 - 1.1| / 1.1 at step 2.
    assert set(losses["columns"]) == {"step", "loss", "acc"}
    assert losses["columns"]["loss"] == pytest.approx(0.1 / 1.1)
    assert losses["columns"]["acc"] == 0.0
    t = compare_runs.compare_tensors(compare_runs.checkpoint_tensors(a),
                                     compare_runs.checkpoint_tensors(b))
    # b is identical, w differs by 0.5 against a scale of 1.5; "save_counter" is shared too.
    assert t["identical"] == t["shared"] - 1 and t["worst"] == pytest.approx(0.5 / 1.5)
    agree, lines = compare_runs.compare_runs(a, b)
    assert not agree and lines[-1].startswith("differ")
    assert compare_runs.main([str(a), str(a)]) == 0
    assert compare_runs.main([str(a), str(b), "--rtol", "0.5"]) == 0


def test_a_missing_row_or_column_is_a_difference(tmp_path):
    a = make_run(tmp_path / "a", [(1, 0.5, 2.0, 0.1), (2, 0.9, 1.0, 0.2)], {"w": np.ones(2)})
    b = make_run(tmp_path / "b", [(1, 0.5, 2.0, 0.1)], {"w": np.ones(2)})
    agree, lines = compare_runs.compare_runs(a, b)
    assert not agree and "rows 2 vs 1" in lines[0]
