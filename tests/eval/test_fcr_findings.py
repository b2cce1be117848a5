"""The claims of eval/fcr_findings.py on hand-made per-seed results (no training)."""
from tfgan3d.eval import fcr_findings, protocol
from tfgan3d.eval.palette import CLASS_NAMES


def _arm(iou_all, ap_all, refine=None, above=(), refined_above=None):
    """One arm's metrics: per-class IoU 0.5 for the classes in `above`, else 0.1; the baseline
    0.2 everywhere, and 0.1 / 0.1 / 0.1 for its pooled rows."""
    metrics = {"iou_all": iou_all, "ap_all": ap_all, "map": ap_all,
               "iou_all_refine": iou_all if refine is None else refine,
               "baseline_iou_all": 0.1, "baseline_ap_all": 0.1, "baseline_map": 0.1}
    for c, name in enumerate(CLASS_NAMES):
        metrics[f"iou_{name}"] = 0.5 if c in above else 0.1
        metrics[f"iou_refine_{name}"] = (metrics[f"iou_{name}"] if refined_above is None
                                         else 0.5 if c in refined_above else 0.1)
        metrics[f"baseline_iou_{name}"] = 0.2
    return metrics


def test_claims_are_computed_from_each_seeds_numbers():
    results = {
        # seed 0: every claim holds
        0: {"alphagan": _arm(0.4, 0.5, refine=0.45, above=(2, 3, 5, 6, 7)),
            "vae": _arm(0.3, 0.4), "vae1d": _arm(0.2, 0.3)},
        # seed 1: the 1-D latent wins on AP, the refiner lowers IoU, only two furniture classes
        # (the refined output has floor, wall and three furniture classes)
        1: {"alphagan": _arm(0.4, 0.5, refine=0.35, above=(2, 3, 5, 6),
                             refined_above=(2, 3, 5, 6, 11)),
            "vae": _arm(0.3, 0.3), "vae1d": _arm(0.2, 0.35)},
    }
    texts = [c.text for c, _ in fcr_findings.claims()]
    summary = protocol.summarize(results, [c for c, _ in fcr_findings.claims()])
    holds = {v["claim"]: v["per_seed"] for v in summary["verdicts"]}
    assert holds[texts[0]] == {0: True, 1: False}            # FC latent vs 1-D latent
    assert holds[texts[1]] == {0: True, 1: True}             # alphaGAN vs VAE
    assert holds[texts[2]] == {0: True, 1: False}            # the refiner
    assert holds[texts[3]] == {0: True, 1: True}             # above the trivial baseline
    assert holds[texts[4]] == {0: True, 1: False}            # per-class: floor, wall, 3 furniture
    assert holds[texts[5]] == {0: True, 1: True}             # the same, refined
    table = fcr_findings.per_class_table(results, ["alphagan", "vae", "vae1d"])
    assert "| floor" in table and "0.500 +- 0.000" in table


def test_claims_name_the_arms_they_need():
    needs = {c.text: arms for c, arms in fcr_findings.claims()}
    assert all(set(arms) <= set(fcr_findings.ARMS) for arms in needs.values())
    assert sum(arms == ("alphagan",) for arms in needs.values()) == 4


def test_per_class_stats_feed_the_report_table_with_cells_above_the_baseline_in_bold():
    import json
    import re

    from tfgan3d.eval import report_modes

    results = {0: {"alphagan": _arm(0.4, 0.5, above=(2, 3)), "vae": _arm(0.3, 0.4)},
               1: {"alphagan": _arm(0.4, 0.5, above=(2,)), "vae": _arm(0.3, 0.4)}}
    stats = json.loads(json.dumps(fcr_findings.per_class_stats(results, ["alphagan", "vae"])))
    assert stats["seeds"] == 2
    assert stats["columns"] == ["alphagan", "vae", "alphagan refined", "trivial baseline"]
    wall = [r for r in stats["rows"] if r["class"] == "wall"][0]
    assert wall["alphagan"]["mean"] == 0.3                   # (0.5 + 0.1) / 2
    assert abs(wall["alphagan"]["std"] - 0.2828427) < 1e-6   # sample std of 0.5, 0.1
    html = report_modes.fcr_per_class(stats)
    rows = dict(re.findall(r"<tr><th>(\w+)</th>(.*?)</tr>", html))
    assert rows.pop("class").startswith("<th>alphagan</th>")           # the header row
    assert set(rows) == set(CLASS_NAMES)
    # floor: 0.5 in both seeds, above the baseline's 0.2; wall: mean 0.3 > 0.2; empty: 0.1
    assert rows["floor"].startswith("<td><b>0.5 &plusmn; 0</b></td><td>0.1 &plusmn; 0</td>")
    assert rows["wall"].startswith("<td><b>0.3 &plusmn; 0.28</b></td>")
    assert "<b>" not in rows["empty"] and rows["empty"].endswith("<td>0.2 &plusmn; 0</td>")


def test_main_records_its_command_and_budget_and_writes_the_per_class_json(tmp_path,
                                                                          monkeypatch):
    import json

    calls = []

    def fake_arm(seed, arm_dir, *, variant, preset, phase1_steps, phase2_steps, n, extra=None):
        calls.append((seed, variant, preset, phase1_steps, phase2_steps))
        return _arm(0.4, 0.5, above=(2, 3, 5, 6, 7))

    monkeypatch.setattr(fcr_findings, "run_arm", fake_arm)
    out = tmp_path / "std"
    fcr_findings.main([str(out), "--preset", "standard", "--seeds", "0", "--arms", "alphagan"])
    # the preset's budget (standard: phase 2 from 5001 to 6000), not quick's 1200 + 300
    assert calls == [(0, "alphagan", "standard", 5000, 1000)]
    protocol_json = json.loads((out / "protocol.json").read_text())
    assert protocol_json["command"] == (
        f"python -m tfgan3d.eval.fcr_findings {out} --preset standard --seeds 0 --arms alphagan "
        f"--phase1-steps 5000 --phase2-steps 1000 --n 50")
    per_class = json.loads((out / "per_class.json").read_text())
    assert per_class["columns"] == ["alphagan", "alphagan refined", "trivial baseline"]


def test_a_class_counts_as_reconstructed_only_from_iou_005_and_above_the_baseline():
    from tfgan3d.eval import report_modes

    def seed(**iou):
        """alphagan reconstructs floor, wall and chair, bed, sofa (IoU 0.5, baseline 0.2);
        the keyword classes get (IoU, baseline) pairs."""
        arm = _arm(0.4, 0.5, above=(2, 3, 5, 6, 7))
        for name, (value, base) in iou.items():
            arm[f"iou_{name}"] = arm[f"iou_refine_{name}"] = value
            arm[f"baseline_iou_{name}"] = base
        return {"alphagan": arm}

    text = [c.text for c, _ in fcr_findings.claims()][4]
    claims = [c for c, _ in fcr_findings.claims()][4:]
    assert "0.05" in text
    results = {
        0: seed(),                                          # three furniture classes at 0.5
        1: seed(sofa=(0.0008, 0.0)),                       # scattered voxels over a 0 baseline
        2: seed(sofa=(0.05, 0.0)),                         # exactly the threshold
        3: seed(sofa=(0.0499, 0.0)),                       # just under it
        4: seed(sofa=(0.06, 0.06)),                        # at the baseline: not above it
        5: seed(wall=(0.04, 0.01)),                         # the wall itself under 0.05
    }
    assert CLASS_NAMES.index("sofa") == 7 and CLASS_NAMES.index("wall") == 3
    summary = protocol.summarize(results, claims)
    expected = {0: True, 1: False, 2: True, 3: False, 4: False, 5: False}
    assert [v["per_seed"] for v in summary["verdicts"]] == [expected, expected]
    assert report_modes.reconstructed(0.05, 0.0) and not report_modes.reconstructed(0.0008, 0.0)
    assert not report_modes.reconstructed(0.3, 0.3) and not report_modes.reconstructed(None, 0)
    # the report bolds the same cells: sofa 0.0008 over 0 is not bold
    stats = fcr_findings.per_class_stats({1: results[1]}, ["alphagan"])
    assert stats["reconstructed_iou"] == 0.05
    html = report_modes.fcr_per_class(stats)
    assert "<td>0.0008</td>" in html and "<b>0.5</b>" in html and "&ge; 0.05" in html
