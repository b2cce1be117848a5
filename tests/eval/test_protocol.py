"""The multi-seed protocol: per-seed arms, caching, mean +- std and verdict counts."""
import argparse
import json
import math

import pytest

from tfgan3d.eval import protocol


def test_mean_std_is_sample_std_and_skips_non_finite():
    mean, std = protocol.mean_std([1.0, 2.0, 4.0, float("nan"), None])
    assert mean == pytest.approx(7 / 3)
    # sample variance of 1, 2, 4: ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3
    assert std == pytest.approx(math.sqrt(7 / 3))
    mean, std = protocol.mean_std([3.0])
    assert mean == 3.0 and math.isnan(std)      # the std of one value is undefined, not 0
    assert all(math.isnan(v) for v in protocol.mean_std([float("inf")]))


def test_one_seed_prints_its_std_as_na_and_says_seed(tmp_path):
    exp = protocol.Experiment(tmp_path / "one", seeds=[3])
    exp.run(3, "arm", lambda s, d: {"error": 0.25})
    exp.write(title="one seed")
    md = (tmp_path / "one" / "summary.md").read_text()
    assert "over 1 seed)" in md and "1 seeds" not in md
    assert "0.2500 +- n/a" in md and "+- 0.0000" not in md
    saved = json.loads((tmp_path / "one" / "protocol.json").read_text())
    assert saved["arms"]["arm"]["error"] == {"mean": 0.25, "std": None}   # strict JSON null
    assert protocol.format_mean_std(0.5, 0.1, ".2f") == "0.50 +- 0.10"
    assert protocol.seeds_phrase(2) == "2 seeds"


@pytest.mark.parametrize("text, expected", [("0 1 2", (0, 1, 2)), ("3,5", (3, 5)), ([7], (7,))])
def test_parse_seeds(text, expected):
    assert protocol.parse_seeds(text) == expected


@pytest.mark.parametrize("bad, word", [("0 x", "'x'"), ("1 1", "twice"), ("", "none"),
                                       ("-1", ">= 0")])
def test_parse_seeds_names_the_bad_value(bad, word):
    with pytest.raises(ValueError, match=word):
        protocol.parse_seeds(bad)


def _fake_arms(calls):
    def arm(offset):
        def fn(seed, arm_dir):
            calls.append((seed, arm_dir.name))
            (arm_dir / "output.txt").write_text("made by the arm")
            return {"error": 10.0 - offset + seed, "score": offset * (1 + seed)}
        return fn
    return {"base": arm(0.0), "better": arm(2.0)}


def test_experiment_writes_rows_summary_and_verdicts(tmp_path):
    calls = []
    exp = protocol.Experiment(tmp_path, seeds=[0, 1], reuse=False)
    for seed in exp.seeds:
        for name, fn in _fake_arms(calls).items():
            exp.run(seed, name, fn)
    claims = [protocol.Claim("better has lower error",
                             lambda r: r["better"]["error"] < r["base"]["error"]),
              protocol.Claim("seed-dependent", lambda r: r["base"]["error"] < 10.5),
              protocol.Claim("missing arm", lambda r: r["absent"]["error"] < 1)]
    summary = exp.write(title="fake finding", claims=claims, metrics=("error", "score"))
    assert calls == [(0, "base"), (0, "better"), (1, "base"), (1, "better")]
    assert (tmp_path / "seed-1" / "better" / "output.txt").exists()
    # base errors 10, 11 -> mean 10.5, std sqrt(0.5); better errors 8, 9.
    assert summary["arms"]["base"]["error"]["mean"] == pytest.approx(10.5)
    assert summary["arms"]["base"]["error"]["std"] == pytest.approx(math.sqrt(0.5))
    assert summary["arms"]["better"]["score"]["mean"] == pytest.approx(3.0)  # 2 and 4
    v = {d["claim"]: d for d in summary["verdicts"]}
    better = v["better has lower error"]
    assert (better["holds_in"], better["holds"]) == (2, True)
    assert (v["seed-dependent"]["holds_in"], v["seed-dependent"]["holds"]) == (1, False)
    assert v["seed-dependent"]["per_seed"] == {0: True, 1: False}
    assert v["missing arm"]["holds_in"] == 0 and "absent" in v["missing arm"]["missing"][0]
    md = (tmp_path / "summary.md").read_text()
    assert "10.5000 +- 0.7071" in md and "holds in 1 of 2 seeds" in md
    assert "missing arm: holds in 0 of 2 seeds (0: n/a, 1: n/a) -> incomplete (2 seeds" in md
    saved = json.loads((tmp_path / "protocol.json").read_text())
    assert saved["seeds"] == [0, 1] and len(saved["per_seed_rows"]) == 4
    assert (tmp_path / "per_seed.csv").read_text().splitlines()[0] == "seed,arm,error,score"


def test_reuse_reads_finished_arms_and_runs_the_rest(tmp_path):
    calls = []
    arms = _fake_arms(calls)
    first = protocol.Experiment(tmp_path, seeds=[0, 1])
    first.run(0, "base", arms["base"])  # an experiment interrupted after one arm
    again = protocol.Experiment(tmp_path, seeds=[0, 1], reuse=True)
    for seed in again.seeds:
        for name, fn in arms.items():
            again.run(seed, name, fn)
    assert calls == [(0, "base"), (0, "better"), (1, "base"), (1, "better")]
    assert again.results[0]["base"] == {"error": 10.0, "score": 0.0}
    # without reuse the finished arm runs again
    protocol.Experiment(tmp_path, seeds=[0]).run(0, "base", arms["base"])
    assert calls[-1] == (0, "base")


def test_add_arguments_defaults_to_three_seeds():
    parser = argparse.ArgumentParser()
    protocol.add_arguments(parser)
    args = parser.parse_args([])
    assert args.seeds == [0, 1, 2] and args.reuse is False
    assert parser.parse_args(["--seeds", "4", "5", "--reuse"]).seeds == [4, 5]


def test_arm_names_must_be_plain_folder_names(tmp_path):
    with pytest.raises(ValueError, match="plain folder name"):
        protocol.Experiment(tmp_path, seeds=[0]).arm_dir(0, "../escape")
