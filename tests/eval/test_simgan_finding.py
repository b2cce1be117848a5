"""The SimGAN finding over seeds on the tiny preset: every arm trains, the protocol summarises."""
import csv
import json

from tfgan3d.eval import simgan_finding


def test_finding_runs_every_arm_and_the_ablations_train_what_they_say(tmp_path):
    out = tmp_path / "finding"
    summary = simgan_finding.main(["--preset", "tiny", "--out", str(out), "--seeds", "0",
                                   "--steps", "14"])
    arms = {row["arm"] for row in summary["per_seed_rows"]}
    assert arms == {"synthetic", "refined", "no_history", "global"}
    for arm, expect in (("refined", (True, "local")), ("no_history", (False, "local")),
                        ("global", (True, "global"))):
        run = next((out / "seed-0" / arm / "run").iterdir())
        config = json.loads((run / "config.json").read_text())
        assert (config["use_history"], config["adversarial"]) == expect
        assert config["steps"] == 14 and config["seed"] == 0
        with open(run / "losses.csv") as f:
            rows = list(csv.DictReader(f))
        assert any(float(r["d_loss"]) > 0 for r in rows)                     # D trained
        assert float(rows[-1]["phase"]) == 2 and float(rows[-1]["r_adv_loss"]) > 0
        assert (out / "seed-0" / arm / "refined_grid.png").is_file()
        result = json.loads((out / "seed-0" / arm / "result.json").read_text())
        assert result["pupil_shift"] >= 0 and 0 <= result["real_vs_x"] <= 1
    assert "pupil_shift" not in json.loads((out / "seed-0/synthetic/result.json").read_text())
    texts = [v["claim"] for v in summary["verdicts"]]
    assert "the history buffer helps (refined beats no_history on mean error)" in texts
    assert all(v["of"] == 1 for v in summary["verdicts"])
    assert "verdicts" in (out / "summary.md").read_text()
    # --reuse reads the finished arms back instead of training again
    again = simgan_finding.main(["--preset", "tiny", "--out", str(out), "--seeds", "0",
                                 "--steps", "14", "--reuse", "--arms", "synthetic", "refined"])
    assert again["arms"]["refined"]["mean_error"]["mean"] == \
        summary["arms"]["refined"]["mean_error"]["mean"]
    # --only-finished summarises what exists and trains nothing (an arm of seed 1 is missing)
    cut = simgan_finding.main(["--preset", "tiny", "--out", str(out), "--seeds", "0", "1",
                               "--only-finished"])
    assert {row["seed"] for row in cut["per_seed_rows"]} == {0}
    assert not (out / "seed-1").exists()
