"""One experiment protocol for every finding: arms x seeds, cached results, mean +- std, verdicts.

A *finding* compares *arms* (a training recipe and its evaluation, e.g. "train virtual, test
real-like" or "refined" vs "synthetic") over several seeds. For each seed every arm runs with that
seed for its data, initialisation and input order; arms of one seed share the data and the budget.
A finding *holds* when its claim holds in every seed.

    exp = protocol.Experiment(out, seeds=(0, 1, 2), reuse=True)
    for seed in exp.seeds:
        for name, fn in arms.items():
            exp.run(seed, name, fn)          # fn(seed, arm_dir) -> {metric: float}
    claims = [protocol.Claim("refined beats synthetic on mean error",
                             lambda r: r["refined"]["mean_error"] < r["synthetic"]["mean_error"])]
    summary = exp.write(title="...", claims=claims, metrics=("mean_error", "within_7"))

Layout under OUT:
  seed-S/ARM/            the arm's own outputs (runs, predictions, figures), made by `fn`
  seed-S/ARM/result.json {metric: value} returned by `fn`, written atomically when the arm is done;
                         its presence is what `reuse` looks for, so an interrupted experiment
                         resumes at the first unfinished arm
  per_seed.csv           one row per (seed, arm) with every metric
  summary.csv, summary.md  one row per arm: mean and sample std (`mean_std`) of each metric
                         over seeds and the number of seeds; summary.md adds the verdicts
  protocol.json          all of the above, machine-readable (the report page reads it)

`add_arguments` gives an experiment program the common flags (`--seeds`, `--reuse`).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

from tfgan3d.eval import tables

DEFAULT_SEEDS = (0, 1, 2)
RESULT = "result.json"


@dataclasses.dataclass(frozen=True)
class Claim:
    """A statement about one seed's arm results that is either true or false.

    Args:
        text: the claim in words, as the report prints it.
        holds: function of {arm: {metric: value}} for one seed -> bool.
    """
    text: str
    holds: Callable[[Mapping[str, Mapping[str, float]]], bool]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of finite values.

    Non-finite and missing (None) values are skipped; with no finite value both are NaN, with
    one the std is NaN (a sample std of one value is undefined: 0.0 would read as "no spread").
    """
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return mean, math.nan
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(var)


def format_mean_std(mean: float, std: float, fmt: str = ".4f") -> str:
    """'mean +- std'; 'mean +- n/a' when the std is undefined (one seed), 'n/a' without a
    mean."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    if std is None or not math.isfinite(std):
        return f"{mean:{fmt}} +- n/a"
    return f"{mean:{fmt}} +- {std:{fmt}}"


def seeds_phrase(n: int) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} seed{'s' * (n != 1)}"


def parse_seeds(text_or_list) -> tuple[int, ...]:
    """Seeds from a list of ints or strings ("0 1 2", "0,1,2"); raises ValueError naming the bad
    value, a duplicate or an empty list."""
    items = text_or_list
    if isinstance(items, str):
        items = items.replace(",", " ").split()
    seeds = []
    for item in items:
        try:
            seed = int(item)
        except (TypeError, ValueError):
            raise ValueError(f"--seeds: expected integers, got {item!r}") from None
        if seed < 0:
            raise ValueError(f"--seeds: expected seeds >= 0, got {seed}")
        if seed in seeds:
            raise ValueError(f"--seeds: seed {seed} given twice")
        seeds.append(seed)
    if not seeds:
        raise ValueError("--seeds: expected at least one seed, got none")
    return tuple(seeds)


def add_arguments(parser, default_seeds: Sequence[int] = DEFAULT_SEEDS) -> None:
    """Adds `--seeds` and `--reuse` to an argparse parser."""
    parser.add_argument("--seeds", nargs="+", type=int, default=list(default_seeds),
                        metavar="S", help="seeds of data, initialisation and input order; each "
                        f"arm runs once per seed (default: {' '.join(map(str, default_seeds))})")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the arms already finished under OUT (their result.json), so "
                        "an interrupted experiment resumes")


class Experiment:
    """Runs arms over seeds under one output folder and summarises them.

    Args:
        out: output folder (created on the first arm).
        seeds: the seeds, in order.
        reuse: when True, an arm whose result.json exists is read instead of run again.
    """

    def __init__(self, out, seeds: Sequence[int] = DEFAULT_SEEDS, reuse: bool = False):
        self.out = Path(out)
        self.seeds = parse_seeds(list(seeds))
        self.reuse = bool(reuse)
        self.results: dict[int, dict[str, dict]] = {s: {} for s in self.seeds}

    def arm_dir(self, seed: int, arm: str) -> Path:
        if "/" in arm or arm in ("", ".", ".."):
            raise ValueError(f"arm name: expected a plain folder name, got {arm!r}")
        return self.out / f"seed-{seed}" / arm

    def run(self, seed: int, arm: str, fn: Callable[[int, Path], Mapping[str, float]]) -> dict:
        """Runs (or with `reuse`, reads back) one arm of one seed and returns its metrics."""
        if seed not in self.results:
            raise ValueError(f"seed {seed} is not one of this experiment's seeds {self.seeds}")
        path = self.arm_dir(seed, arm) / RESULT
        if self.reuse and path.exists():
            metrics = json.loads(path.read_text())
            print(f"seed {seed} {arm}: reusing {path}", flush=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            metrics = dict(fn(seed, path.parent))
            tables.write_json(metrics, path)
        self.results[seed][arm] = metrics
        return metrics

    def write(self, *, title: str, claims: Sequence[Claim] = (),
              metrics: Sequence[str] | None = None, notes: str = "",
              extra: Mapping | None = None) -> dict:
        """Writes per_seed.csv, summary.csv, summary.md and protocol.json; returns the summary.

        Args:
            title: heading of summary.md.
            claims: the finding's claims; each is evaluated per seed.
            metrics: metric columns, in order (default: every numeric metric of the arms).
            notes: Markdown appended under the tables (e.g. what the arms share).
            extra: more JSON-able values for protocol.json.
        """
        summary = summarize(self.results, claims, metrics)
        tables.write_csv(summary["per_seed_rows"], self.out / "per_seed.csv")
        tables.write_csv(summary["summary_rows"], self.out / "summary.csv")
        md = render_markdown(summary, title=title) + (f"\n{notes.strip()}\n" if notes else "")
        tables.atomic_write(self.out / "summary.md", md)
        tables.write_json({"title": title, "seeds": list(self.seeds), **summary,
                           **(dict(extra) if extra else {})}, self.out / "protocol.json")
        return summary


def _numeric_metrics(results) -> list[str]:
    names = {}
    for per_arm in results.values():
        for metrics in per_arm.values():
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    names.setdefault(key, None)
    return list(names)


def summarize(results: Mapping[int, Mapping[str, Mapping[str, float]]],
              claims: Sequence[Claim] = (), metrics: Sequence[str] | None = None) -> dict:
    """Per-seed rows, mean +- std per arm and metric, and each claim's verdict.

    Args:
        results: {seed: {arm: {metric: value}}}.
        claims: evaluated on each seed's {arm: metrics}; a claim that raises KeyError (an arm or
            metric missing for that seed) counts as not holding, with the reason recorded.
        metrics: metric names to summarise (default: all numeric ones).
    Returns:
        dict with per_seed_rows, summary_rows, arms ({arm: {metric: {mean, std, n}}}) and
        verdicts ([{claim, per_seed: {seed: bool}, holds_in, of, holds}]).
    """
    metrics = list(metrics) if metrics is not None else _numeric_metrics(results)
    seeds = list(results)
    arms: dict[str, None] = {}
    for per_arm in results.values():
        for arm in per_arm:
            arms.setdefault(arm, None)
    per_seed_rows = [{"seed": seed, "arm": arm, **{m: results[seed][arm].get(m) for m in metrics}}
                     for seed in seeds for arm in arms if arm in results[seed]]
    stats, summary_rows = {}, []
    for arm in arms:
        stats[arm] = {}
        row = {"arm": arm, "seeds": sum(arm in results[s] for s in seeds)}
        for m in metrics:
            mean, std = mean_std([results[s][arm].get(m) for s in seeds if arm in results[s]])
            stats[arm][m] = {"mean": mean, "std": std}
            row[f"{m} mean"], row[f"{m} std"] = mean, std
        summary_rows.append(row)
    verdicts = []
    for claim in claims:
        per_seed, reasons = {}, {}
        for seed in seeds:
            try:
                per_seed[seed] = bool(claim.holds(results[seed]))
            except KeyError as exc:
                per_seed[seed], reasons[seed] = False, f"missing {exc}"
        holds_in = sum(per_seed.values())
        verdicts.append({"claim": claim.text, "per_seed": per_seed, "holds_in": holds_in,
                         "of": len(seeds), "holds": bool(seeds) and holds_in == len(seeds),
                         **({"missing": reasons} if reasons else {})})
    return {"metrics": metrics, "arms": stats, "per_seed_rows": per_seed_rows,
            "summary_rows": summary_rows, "verdicts": verdicts}


def verdict_line(v: Mapping) -> str:
    """'holds in 2 of 3 seeds (0: yes, 1: yes, 2: no) -> does not hold' for a verdict dict; a
    seed whose arms are not all there reads 'n/a' and the outcome 'incomplete'."""
    missing = {str(s) for s in v.get("missing", {})}
    seeds = ", ".join(f"{s}: {'n/a' if str(s) in missing else 'yes' if ok else 'no'}"
                      for s, ok in v["per_seed"].items())
    outcome = ("HOLDS" if v["holds"] else
               f"incomplete ({len(missing)} seed{'s' * (len(missing) > 1)} missing arms)"
               if missing else "does not hold")
    return f"{v['claim']}: holds in {v['holds_in']} of {v['of']} seeds ({seeds}) -> {outcome}"


def render_markdown(summary: Mapping, *, title: str) -> str:
    """The summary as Markdown: mean +- std per arm, per-seed values, then the verdicts."""
    metrics = summary["metrics"]
    rows = [{"arm": arm, **{m: format_mean_std(s[m]["mean"], s[m]["std"]) for m in metrics}}
            for arm, s in summary["arms"].items()]
    n = len({r["seed"] for r in summary["per_seed_rows"]})
    text = tables.markdown_table(rows, columns=["arm", *metrics],
                                 title=f"{title} (mean +- std over {seeds_phrase(n)})")
    text += "\n" + tables.markdown_table(summary["per_seed_rows"],
                                         columns=["seed", "arm", *metrics], title="per seed")
    if summary["verdicts"]:
        text += "\n### verdicts\n\n" + "".join(f"- {verdict_line(v)}\n"
                                                for v in summary["verdicts"])
    return text
