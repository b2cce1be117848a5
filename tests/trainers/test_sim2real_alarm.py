"""The collapse alarm end to end (issue 28): the paper's stage 2 with its eq 14 weighted up
(lambda_mmd 100, no task loss, lr 0.01) shrinks E_R's codes on real images within 16 tiny steps
and the alarm fires once, naming the step; the transfer recipe with the same weights keeps the
spread (measured: 0.69 and 1.98 x stage 1's) and stays quiet. losses.csv carries the probe."""
import json

import pytest
from run_helpers import read_rows

from tfgan3d.trainers import runner

BUILT_TO_COLLAPSE = {"preset": "tiny", "sim_data": "builtin:scenes-virtual",
                     "real_data": "builtin:scenes-real", "stage1_steps": 4, "stage2_steps": 16,
                     "log_every": 2, "collapse_every": 2, "collapse_fraction": 0.8,
                     "checkpoint_every": 100, "sample_every": 100, "lambda_mmd": 100.0,
                     "lr": 0.01, "lambda_depth": 0.0, "lambda_seg": 0.0}


@pytest.mark.parametrize("recipe", ["paper", "transfer"])
def test_the_alarm_fires_on_a_collapse_and_stays_quiet_without_one(recipe, tmp_path, capfd):
    run = runner.run_mode("sim2real", {**BUILT_TO_COLLAPSE, "recipe": recipe,
                                       "run_dir": str(tmp_path)})
    state = json.loads((run.path / "collapse_alarm.json").read_text())
    rows = read_rows(run.path)
    assert [int(r["step"]) for r in rows] == list(range(2, 21, 2))
    assert all(float(r["probe_spread_real"]) > 0 and float(r["probe_sigma_real"]) > 0
               and float(r["probe_rec_real"]) > 0 for r in rows)
    assert state["stage1_step"] == 4 and state["images"] == 6     # tiny: 6 real train images
    # the reference is stage 1's last probe: the logged row of step 4
    assert state["stage1_spread"] == pytest.approx(float(rows[1]["probe_spread_real"]), rel=1e-4)
    ratio = state["last_spread"] / state["stage1_spread"]
    err = capfd.readouterr().err
    if recipe == "paper":
        assert ratio < 0.8, state
        step = state["alarm_step"]
        assert step and 4 < step <= 20 and step % 2 == 0
        fired = [r for r in rows if float(r["collapse_alarm_step"]) > 0]
        assert int(fired[0]["step"]) == step                    # logged from that step on
        assert float(fired[0]["probe_spread_real"]) < 0.8 * state["stage1_spread"]
        assert err.count("warning: collapse alarm at step") == 1 and f"step {step} " in err
    else:
        assert ratio > 0.8, state
        assert state["alarm_step"] is None
        assert "collapse alarm at step" not in err
        assert all(float(r["collapse_alarm_step"]) == 0 for r in rows)
