"""The report page's per-mode tables: our numbers beside the seed's own, in each seed's layout.

pix2pix: the 2x2 (train regime x test regime) for abs_rel, rmse and delta1, as the seed's
experiment is laid out; simgan: Table 2 (% of real test eyes within 7 degrees) beside ours;
sim2real: Table 1 (KITTI, 256x256) beside each evaluation's comparison rows, with the program's
budget check and verdict; fcr_alphagan: the seed prints no numbers (bar charts only), so its
table is ours with the trivial baseline, and its per-class IoU table. Read by eval/report.py; nothing here runs a model.
"""
from __future__ import annotations

import html
import math

# The seeds' own numbers (seeds 003 Table 2 and 001 Table 1, as printed).
SIMGAN_TABLE2 = {"synthetic": 62.3, "refined": 69.4}
SIM2REAL_TABLE1 = {"abs_rel": 0.752, "sq_rel": 20.7, "rmse": 16.1, "rmse_log": 0.580,
                   "miou": 0.063, "pixel_accuracy": 0.549}
SIM2REAL_COLUMNS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "miou", "pixel_accuracy",
                    "abs_rel_x_sup", "depth_std")
# The columns of the mean +- std table shown first; the others go under "more metrics".
MAIN_METRICS = {
    "fcr_alphagan": ("iou_all", "ap_all", "map", "iou_all_refine", "ap_all_refine",
                     "map_refine", "baseline_iou_all", "baseline_ap_all", "baseline_map"),
    "pix2pix": (),            # the 2x2 above stands for it; the arms x 14 table under "more"
    "simgan": ("within_7", "mean_error", "real_vs_x", "pupil_shift", "train_seconds"),
}
PIX2PIX_METRICS = ("abs_rel", "rmse", "delta1")


def _e(text) -> str:
    return html.escape(str(text))


def mean_std(stats, n=None) -> str:
    """'mean +- std' of a protocol cell over n seeds; the mean alone for one seed (its std of
    0 says nothing), n/a when missing."""
    mean, std = (stats or {}).get("mean"), (stats or {}).get("std")
    if mean is None or not math.isfinite(mean):
        return "n/a"
    one = n is not None and n < 2
    return f"{mean:.4g}" + ("" if one or std is None or not math.isfinite(std) else
                            f" &plusmn; {std:.2g}")


_ms = mean_std


def _num(value) -> str:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:.4g}"
    return "" if value is None else _e(value)


def pix2pix_matrix(protocol: dict) -> str:
    """The 2x2 per metric: rows = training regime, columns = test regime (metric names
    'M on TEST', arms 'train-REGIME')."""
    arms = protocol.get("arms", {})
    tests = []
    for m in protocol.get("metrics", []):
        if " on " in m and m.split(" on ", 1)[1] not in tests:
            tests.append(m.split(" on ", 1)[1])
    if not tests or not arms:
        return ""
    head = "".join(f"<th>test {_e(t)}</th>" for t in tests)
    n = len(protocol.get("seeds", []))
    body = ""
    for metric in PIX2PIX_METRICS:
        better = "higher" if metric.startswith("delta") else "lower"
        for i, (arm, stats) in enumerate(arms.items()):
            label = (f"<th rowspan='{len(arms)}'>{_e(metric)} ({better} is better)</th>"
                     if i == 0 else "")
            cells = ""
            for t in tests:
                own = arm.replace("train-", "") == t
                cells += (f"<td class='{'own' if own else ''}'>"
                          f"{_ms(stats.get(f'{metric} on {t}'), n)}</td>")
            body += f"<tr>{label}<th>{_e(arm)}</th>{cells}</tr>\n"
    return (f"<table class='matrix'><caption>the 2x2: mean &plusmn; std over {n} seed"
            f"{'s' * (n != 1)}; in-domain cells shaded (the seed: they should win each column)"
            f"</caption><tr><th>metric</th><th>trained on</th>{head}</tr>\n{body}</table>\n")


def simgan_beside_seed(protocol: dict) -> str:
    """Table 2 of the seed beside ours: % within 7 degrees, mean error."""
    arms, n = protocol.get("arms", {}), len(protocol.get("seeds", []))
    rows = ""
    for arm, seed_value in SIMGAN_TABLE2.items():
        if arm not in arms:
            continue
        rows += (f"<tr><th>{_e(arm)}</th><td>{seed_value:.1f}</td>"
                 f"<td>{_ms(arms[arm].get('within_7'), n)}</td>"
                 f"<td>{_ms(arms[arm].get('mean_error'), n)}</td></tr>\n")
    if not rows:
        return ""
    return ("<table class='beside'><caption>the seed's Table 2 (MPIIGaze) beside ours (built-in "
            "real-like eyes)</caption><tr><th>gaze estimator trained on</th><th>seed: % within "
            "7&deg;</th><th>ours: % within 7&deg;</th><th>ours: mean error (&deg;)</th></tr>\n"
            + rows + "</table>\n")


def sim2real_evaluation(metrics: dict) -> str:
    """One `eval sim2real` result: its rows beside the seed's Table 1 row, the budget check and
    the verdict (as the program computed them)."""
    head = "".join(f"<th>{_e(c)}</th>" for c in SIM2REAL_COLUMNS)
    body = ""
    for row in metrics.get("rows", []):
        body += (f"<tr><td class='l'>{_e(row.get('model'))}</td><td class='l'>"
                 f"{_e(row.get('role'))}</td>"
                 + "".join(f"<td>{_num(row.get(c))}</td>" for c in SIM2REAL_COLUMNS) + "</tr>\n")
    body += ("<tr class='seed'><td class='l'>seed 001 Table 1: Ours (KITTI, 256x256)</td>"
             "<td class='l'>sim2real</td>"
             + "".join(f"<td>{_num(SIM2REAL_TABLE1.get(c))}</td>" for c in SIM2REAL_COLUMNS)
             + "</tr>\n")
    text = (f"<table class='sim2real'><caption>on {_e(metrics.get('data'))} "
            f"({_e(metrics.get('split'))} split, scored at {_e(metrics.get('resolution'))}); "
            "depth errors lower is better, mIoU and accuracy higher</caption>"
            f"<tr><th>model</th><th>role</th>{head}</tr>\n{body}</table>\n")
    budget, verdict = metrics.get("budget_check", ""), metrics.get("verdict", "")
    budget_ok = "FAILS" not in str(budget)
    verdict_ok = str(verdict).split("?", 1)[-1].strip().startswith("Yes")
    text += "<ul class='verdicts'>\n"
    if budget:
        text += (f"<li class='{'holds' if budget_ok else 'fails'}'><b>budget check "
                 f"{'passes' if budget_ok else 'fails'}</b>: {_e(budget)}</li>\n")
    if verdict:
        text += (f"<li class='{'holds' if verdict_ok and budget_ok else 'fails'}'><b>"
                 f"{'holds' if verdict_ok else 'does not hold'}"
                 f"{'' if budget_ok else ' (but the budget check fails)'}</b>: "
                 f"{_e(verdict)}</li>\n")
    text += "</ul>\n"
    latent = metrics.get("latent")
    if latent:
        within = latent.get("mmd_within_sim")
        text += ("<p class='latent'>shared latent (eval/latent_alignment.py): posterior sigma "
                 f"E_S on sim {_num(latent.get('sigma_sim'))}, E_R on real "
                 f"{_num(latent.get('sigma_real'))}; spread of the codes across images "
                 f"{_num(latent.get('spread_sim'))} / {_num(latent.get('spread_real'))}; MMD&sup2; "
                 f"of sim and real codes {_num(latent.get('mmd'))}"
                 + (f" (two halves of sim: {_num(within)})" if within is not None else "")
                 + "</p>\n")
    stages = metrics.get("latent_by_stage") or {}
    if stages.get("stage1") and stages.get("stage2"):
        one, two = stages["stage1"], stages["stage2"]
        text += ("<p class='latent'>E_R on real images, end of stage 1 -> end of stage 2: "
                 f"sigma {_num(one.get('sigma_real'))} -> {_num(two.get('sigma_real'))}, "
                 f"spread {_num(one.get('spread_real'))} -> {_num(two.get('spread_real'))}, "
                 f"MMD&sup2; of sim and real codes {_num(one.get('mmd'))} -> "
                 f"{_num(two.get('mmd'))}</p>\n")
    probe = metrics.get("content_probe")
    if probe:
        text += ("<p class='latent'>content alignment: a ridge probe fitted on E_S(sim train) "
                 f"codes to depth reads the real test set with abs_rel "
                 f"{_num(probe.get('abs_rel_E_R'))} through E_R, "
                 f"{_num(probe.get('abs_rel_E_S'))} through E_S, against the prior's "
                 f"{_num(probe.get('abs_rel_prior'))} (abs_rel_x_sup: abs_rel over the "
                 "real-supervised row's; the seed's method is 5.1x its supervised one)</p>\n")
    return text


# A class counts as reconstructed (fcr's per-class claims, the report's bold cells) when its IoU
# is at least this and above the trivial baseline's: at quick the furniture classes can be a
# few scattered voxels, IoU 0.0008 over a baseline of 0, which is not a shape.
RECONSTRUCTED_IOU = 0.05


def reconstructed(iou, baseline, threshold: float = RECONSTRUCTED_IOU) -> bool:
    """Whether a class's IoU means a reconstructed shape: >= `threshold` and > `baseline`."""
    if iou is None or baseline is None:
        return False
    iou, baseline = float(iou), float(baseline)
    return math.isfinite(iou) and math.isfinite(baseline) and iou >= threshold and iou > baseline


def fcr_per_class(table: dict) -> str:
    """Per-class IoU of `eval.fcr_findings` (its per_class.json): a row per class, a column per
    arm, the refined alphagan and the trivial per-position baseline; a cell is bold where the
    class counts as reconstructed (`reconstructed`: mean IoU >= the table's threshold and above
    the baseline), as the per-class claims count them."""
    columns = table.get("columns", [])
    n = table.get("seeds")
    threshold = table.get("reconstructed_iou", RECONSTRUCTED_IOU)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = ""
    for row in table.get("rows", []):
        base = (row.get("trivial baseline") or {}).get("mean")
        cells = ""
        for c in columns:
            cell, mean = mean_std(row.get(c), n), (row.get(c) or {}).get("mean")
            bold = c != "trivial baseline" and reconstructed(mean, base, threshold)
            cells += f"<td>{'<b>' + cell + '</b>' if bold else cell}</td>"
        body += f"<tr><th>{_e(row.get('class'))}</th>{cells}</tr>\n"
    return (f"<table class='per-class'><caption>IoU per class (mean &plusmn; std over {n} "
            f"seed{'s' * (n != 1)}; bold: reconstructed, IoU &ge; {threshold:g} and above the "
            f"trivial baseline)</caption>"
            f"<tr><th>class</th>{head}</tr>\n{body}</table>\n")
