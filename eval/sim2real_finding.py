"""Sim2Real's question over seeds (seed 001, Table 1): does the twin VAE beat sim-only on the
real-like test set? Through the multi-seed protocol (tfgan3d.eval.protocol).

    python -m tfgan3d.eval sim2real_finding --out runs/sim2real-finding [--seeds 0 1 2]
        [--preset standard|quick|tiny] [--reuse] [--steps N] [--baseline-steps N] [--resolution R]
        [--run-option KEY=VALUE ...] [--variant NAME:KEY=VALUE[,KEY=VALUE...] ...]

For each seed S (the seed of the built-in rooms, the initialisation and the input order) one
sim2real run of the preset trains (builtin:rooms-sim with labels + builtin:rooms-real without;
stage 1 then stage 2), and `eval sim2real` scores it on S's real-like test set beside the
models it is compared with, all trained on the same data with the same budget (the run's
stage-2 steps unless --baseline-steps):
  twin_vae        the run: E_R -> z -> D_depth, D_seg on the real image
  sim_only_twin   the twin VAE's own networks (E_S -> z -> D_depth, D_seg), sim labels only,
                  no adaptation, the twin VAE's stage-2 optimiser settings
  sim_only_unet   a U-Net supervised on sim only (lower bound)
  real_unet       the same U-Net supervised on the real-like train split's own labels (upper
                  bound)
  prior           per-pixel mean depth and majority class of the sim training set, no image
  twin_vae_via_es (diagnostic, not in the budget check) the same twin VAE reading the real
                  images through E_S instead of E_R
The twin VAE trains with the config's recipe (default "transfer"; `--run-option recipe=paper`
or a variant `paper:recipe=paper` for the seed's objective). Beside the metrics each arm has
abs_rel_x_sup (its abs_rel over the real-supervised U-Net's; the seed's Table 1: 5.1x) and
depth_std (std of the predicted depth across the test images); twin VAE arms also the linear
probe (probe_E_R, probe_E_S, probe_prior: abs_rel of a ridge probe fitted on E_S(sim train)
codes, read on E_R(real test), E_S(real test) codes, and the mean sim depth map) and E_R's
latent statistics at the end of stage 1 and of stage 2 (spread_real, sigma_real, latent_mmd).
Every arm is also scored on S's sim test set (metrics prefixed sim_; the twin VAE through its
sim path E_S -> z -> D_depth, D_seg).
  twin_vae_NAME   (--variant NAME:OPTIONS) a stage-2 variant of the twin VAE: its stage 2
                  starts from the seed's twin_vae run's end-of-stage-1 checkpoint
                  (--stage2-from) with the run options OPTIONS (e.g. unpaired:mmd_pairing=
                  unpaired, frozen:stage2_trains=aux); scored like twin_vae, no baselines of
                  its own (the seed's are the ones above)
Writes OUT/seed-S/twin_vae/ (the run, eval/ with the comparison table, grids and translations,
result.json), OUT/seed-S/<other arm>/result.json (read from that evaluation), and the
protocol's per_seed.csv, summary.csv, summary.md, protocol.json. A seed's arms after twin_vae
are its evaluation's rows, so --reuse picks up a finished seed; a run that was interrupted
resumes at its newest checkpoint.

Claims, per seed, computed from the numbers: the budget check (upper bound beats sim-only, and
every model beats the prior, on abs_rel and mIoU: if not, the budget is too small to say
anything); on the sim test set, where it had labels, the twin VAE beats the prior on abs_rel
and mIoU (a budget check too: if not, its decoders have not learned the task); the twin VAE
beats sim-only with the same networks on abs_rel and on mIoU; and, for reference, the twin VAE
beats the sim-only U-Net on both. Per variant: it beats sim-only with the same networks on
abs_rel and on mIoU, it beats the seed's twin_vae arm on abs_rel, it beats the prior, and its
probe reads E_R(real) better than the prior. Issue 28's targets are claims too: the twin VAE
beats the prior on the real-like test set, and the probe reads E_R(real) better than the prior.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tfgan3d import cli
from tfgan3d.eval import protocol, sim2real_eval

# arm -> the role of its row in eval sim2real's table
ARMS = {"twin_vae": "sim2real", "sim_only_twin": "sim-only-twin", "sim_only_unet": "sim-only",
        "real_unet": "real-supervised", "prior": "prior"}
# Diagnostic arms (issue 28): rows of the twin VAE's evaluation that are not competitors
# (left out of the budget check): the twin VAE reading the real images through E_S.
DIAGNOSTIC_ARMS = {"twin_vae_via_es": "sim2real-via-E_S"}
METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "miou", "pixel_accuracy")
# The same metrics on the sim test set (eval sim2real's "sim_test" rows).
SIM_METRICS = tuple(f"sim_{m}" for m in METRICS)
# Issue 28's measurements: abs_rel as a multiple of the real-supervised U-Net's (the seed's:
# 5.1x), the std of predicted depth across the test images, and (twin VAE arms) the linear
# probe's abs_rel read through E_R, through E_S and the prior's, and E_R's latent statistics
# at the end of each stage.
EXTRA_METRICS = ("abs_rel_x_sup", "depth_std", "probe_E_R", "probe_E_S", "probe_prior",
                 "spread_real_stage1", "spread_real", "sigma_real_stage1", "sigma_real",
                 "latent_mmd_stage1", "latent_mmd")
# Scoring resolution per preset: eval sim2real's default 256 (the seed's), tiny at its own 16.
PRESETS = {"paper": dict(resolution=256), "standard": dict(resolution=256),
           "quick": dict(resolution=256), "tiny": dict(resolution=16)}


def _beats(a, b, key):
    # A metric an arm lacks (None: e.g. an arm cached before the sim test set was scored)
    # raises KeyError, which the protocol counts as "missing", not as a claim that fails.
    if a.get(key) is None or b.get(key) is None:
        raise KeyError(key)
    lower_is_better = sim2real_eval.COMPARED[key.removeprefix("sim_")]
    return a[key] < b[key] if lower_is_better else a[key] > b[key]


def _lower(row, key, than):
    if row.get(key) is None or row.get(than) is None:
        raise KeyError(key)
    return row[key] < row[than]


def claims(variants=()):
    both = ("abs_rel", "miou")
    return _base_claims(both) + [claim for name in variants for claim in _variant_claims(name)]


def _variant_claims(name):
    arm = f"twin_vae_{name}"
    return [
        protocol.Claim(f"{arm} beats sim-only with the same networks on the real-like test set "
                       "(abs_rel)", lambda r: _beats(r[arm], r["sim_only_twin"], "abs_rel")),
        protocol.Claim(f"{arm} beats sim-only with the same networks on the real-like test set "
                       "(mIoU)", lambda r: _beats(r[arm], r["sim_only_twin"], "miou")),
        protocol.Claim(f"{arm} beats the seed's twin_vae arm on the real-like test set "
                       "(abs_rel)", lambda r: _beats(r[arm], r["twin_vae"], "abs_rel")),
        protocol.Claim(f"{arm} beats the image-blind prior on the real-like test set (abs_rel "
                       "and mIoU)", lambda r: all(_beats(r[arm], r["prior"], k)
                                                  for k in ("abs_rel", "miou"))),
        protocol.Claim(f"{arm}: the linear probe reads E_R(real) codes better than the prior",
                       lambda r: _lower(r[arm], "probe_E_R", "probe_prior")),
    ]


def _base_claims(both):
    return [
        protocol.Claim("budget check: the real-supervised upper bound beats the sim-only U-Net "
                       "on abs_rel and mIoU",
                       lambda r: all(_beats(r["real_unet"], r["sim_only_unet"], k) for k in both)),
        protocol.Claim("budget check: every model beats the image-blind prior on abs_rel and "
                       "mIoU",
                       lambda r: all(_beats(r[a], r["prior"], k) for a in ARMS if a != "prior"
                                     for k in both)),
        protocol.Claim("budget check: on the sim test set the twin VAE beats the prior "
                       "(abs_rel and mIoU)",
                       lambda r: all(_beats(r["twin_vae"], r["prior"], f"sim_{k}")
                                     for k in both)),
        protocol.Claim("twin VAE beats sim-only with the same networks on the real-like test "
                       "set (abs_rel)",
                       lambda r: _beats(r["twin_vae"], r["sim_only_twin"], "abs_rel")),
        protocol.Claim("twin VAE beats sim-only with the same networks on the real-like test "
                       "set (mIoU)",
                       lambda r: _beats(r["twin_vae"], r["sim_only_twin"], "miou")),
        protocol.Claim("twin VAE beats the image-blind prior on the real-like test set "
                       "(abs_rel and mIoU)",
                       lambda r: all(_beats(r["twin_vae"], r["prior"], k) for k in both)),
        protocol.Claim("the linear probe reads E_R(real) codes better than the prior (abs_rel)",
                       lambda r: _lower(r["twin_vae"], "probe_E_R", "probe_prior")),
        protocol.Claim("(reference) twin VAE beats the sim-only U-Net on abs_rel and mIoU",
                       lambda r: all(_beats(r["twin_vae"], r["sim_only_unet"], k)
                                     for k in both)),
    ]


def train_run(seed, arm_dir, preset, steps=None, options=None) -> Path:
    """The seed's sim2real run under arm_dir (resumed at its newest checkpoint if started)."""
    from tfgan3d.trainers import runner
    arm_dir = Path(arm_dir)
    started = [p for p in sorted(arm_dir.glob("*-sim2real-*-run"))
               if (p / "checkpoints" / "checkpoint").exists()]
    if started:
        print(f"seed {seed}: resuming {started[-1]}", flush=True)
        run_options = {"resume": str(started[-1]), "run_dir": str(arm_dir)}
    else:
        run_options = {"preset": preset, "run_dir": str(arm_dir), "run_name": "run",
                       **dict(options or {}), "seed": seed}
        if steps is not None:
            run_options["steps"] = steps
    return runner.run_mode("sim2real", run_options).path


def _twin_arm(preset, steps, baseline_steps, resolution, options):
    def run(seed, arm_dir):
        t0 = time.time()
        run_dir = train_run(seed, arm_dir, preset, steps, options)
        t1 = time.time()
        result = sim2real_eval.evaluate_run(run_dir, out=Path(arm_dir) / "eval",
                                            baseline_steps=baseline_steps,
                                            resolution=resolution)
        print(f"seed {seed}: {result['budget_check']}\nseed {seed}: {result['verdict']}"
              + (f"\nseed {seed}: {result['sim_test']['prior_check']}"
                 if "sim_test" in result else ""), flush=True)
        return _twin_row(result, run_dir, t0, t1)
    return run


def _twin_row(result, run_dir, t0, t1, **extra):
    """An arm's result from an `eval sim2real` of its run: the run's own row (role sim2real) on
    the real-like and, as sim_*, the sim test set, the run and the times."""
    by_role = {row["role"]: row for row in result["rows"]}
    sim = {row["role"]: row for row in result.get("sim_test", {}).get("rows", [])}
    return {**{m: by_role["sim2real"].get(m) for m in METRICS + ("abs_rel_x_sup", "depth_std")},
            **_sim_metrics(sim.get("sim2real")), **latent_metrics(result),
            "run": str(run_dir), **extra,
            "train_seconds": round(t1 - t0, 1), "eval_seconds": round(time.time() - t1, 1)}


def latent_metrics(result) -> dict:
    """The probe's abs_rel values and E_R's latent statistics at the end of each stage from an
    `eval sim2real` result or metrics.json ({} where absent)."""
    out = {}
    probe = result.get("content_probe") or {}
    for name in ("E_R", "E_S", "prior"):
        if f"abs_rel_{name}" in probe:
            out[f"probe_{name}"] = probe[f"abs_rel_{name}"]
    stages = result.get("latent_by_stage") or {}
    last = stages.get("stage2") or result.get("latent") or {}
    for key, field in (("spread_real", "spread_real"), ("sigma_real", "sigma_real"),
                       ("latent_mmd", "mmd")):
        if stages.get("stage1"):
            out[f"{key}_stage1"] = stages["stage1"].get(field)
        if last:
            out[key] = last.get(field)
    return out


def twin_run_of(twin_dir) -> Path:
    """The run folder of a seed's finished twin_vae arm (its result.json names it)."""
    result = json.loads((Path(twin_dir) / protocol.RESULT).read_text())
    return Path(result["run"])


def _variant_arm(twin_dir, preset, steps, resolution, options, variant):
    def run(seed, arm_dir):
        t0 = time.time()
        source = twin_run_of(twin_dir)
        run_dir = train_run(seed, arm_dir, preset, steps,
                            {**dict(options or {}), **variant, "stage2_from": str(source)})
        t1 = time.time()
        result = sim2real_eval.evaluate_run(run_dir, out=Path(arm_dir) / "eval",
                                            baseline_steps=0, resolution=resolution)
        return _twin_row(result, run_dir, t0, t1, stage1_from=str(source))
    return run


def parse_variant(text) -> tuple[str, dict]:
    """'NAME:KEY=VALUE[,KEY=VALUE...]' -> (NAME, {KEY: VALUE}) (values as --run-option's)."""
    name, sep, rest = str(text).partition(":")
    pairs = rest.split(",")
    if (not sep or not re.fullmatch(r"[a-z0-9_]+", name)
            or not all(p.partition("=")[0] and p.partition("=")[1] for p in pairs)):
        raise ValueError(f"--variant: expected NAME:KEY=VALUE[,KEY=VALUE...] with NAME of "
                         f"a-z, 0-9 and _, got {text!r}")
    return name, _options(pairs)


def _sim_metrics(row):
    """A sim test-set row's metrics as sim_* keys ({} without the row)."""
    return {f"sim_{m}": row.get(m) for m in METRICS} if row else {}


def _row_arm(twin_dir, role, optional=False):
    """An arm read from the seed's twin_vae evaluation's row of `role` (`optional`: an
    evaluation without that row, e.g. one from before it existed, gives an arm of no
    metrics instead of an error)."""
    def run(seed, arm_dir):
        metrics = json.loads((Path(twin_dir) / "eval" / "metrics.json").read_text())
        rows = metrics["rows"]
        row = {r["role"]: r for r in rows}.get(role)
        if row is None and optional:
            return {"model": None, "note": f"no {role!r} row in {twin_dir}/eval/metrics.json"}
        if row is None:
            raise RuntimeError(f"{twin_dir / 'eval' / 'metrics.json'}: expected a {role!r} "
                               f"row, found roles {[r['role'] for r in rows]}")
        sim = {r["role"]: r for r in metrics.get("sim_test", {}).get("rows", [])}
        return ({m: row.get(m) for m in METRICS + ("abs_rel_x_sup", "depth_std")}
                | _sim_metrics(sim.get(role)) | {"model": row.get("model")})
    return run


def run_finding(out, *, seeds=protocol.DEFAULT_SEEDS, reuse=False, preset="quick", steps=None,
                baseline_steps=None, resolution=None, options=None, variants=None) -> dict:
    """Per seed: train the run, evaluate it and its comparisons, then each variant
    ({NAME: run options}, stage 2 from the run's stage 1); returns the protocol summary."""
    variants = dict(variants or {})
    resolution = resolution or PRESETS[preset]["resolution"]
    exp = protocol.Experiment(out, seeds=seeds, reuse=reuse)
    title = (f"Sim2Real on the built-in rooms ({preset}), real-like test set (sim_*: the sim "
             "test set)")
    notes = ("Arms of one seed share its data (builtin:rooms-sim train with labels; the upper "
             "bound: builtin:rooms-real train with its labels) and budget: every supervised "
             "baseline trains for the run's stage-2 steps"
             + (f" ({baseline_steps})" if baseline_steps else "")
             + " at the run's image size and batch; the twin VAE also had its unlabelled stage 1. "
             f"Scored at {resolution} x {resolution} on the seed's real-like test images; the "
             "sim_* columns: the same arms on the seed's sim test images (the twin VAE through "
             "E_S -> D_depth, D_seg). "
             "Lower is better for abs_rel, sq_rel, rmse, rmse_log; higher for delta1, miou, "
             "pixel_accuracy. Per-seed tables with the seed's Table 1: seed-S/twin_vae/eval/"
             "comparison.md.")
    for seed in exp.seeds:
        t0 = time.time()
        exp.run(seed, "twin_vae", _twin_arm(preset, steps, baseline_steps, resolution, options))
        for arm, role in {**ARMS, **DIAGNOSTIC_ARMS}.items():
            if arm != "twin_vae":
                exp.run(seed, arm, _row_arm(exp.arm_dir(seed, "twin_vae"), role,
                                            optional=arm in DIAGNOSTIC_ARMS))
        for name, variant in variants.items():
            exp.run(seed, f"twin_vae_{name}",
                    _variant_arm(exp.arm_dir(seed, "twin_vae"), preset, steps, resolution,
                                 options, variant))
        print(f"seed {seed} done ({time.time() - t0:.0f} s)", flush=True)
        exp.write(title=title, claims=claims(variants),
                  metrics=METRICS + SIM_METRICS + EXTRA_METRICS,
                  notes=notes + _variant_notes(variants))
    return exp.write(title=title, claims=claims(variants),
                     metrics=METRICS + SIM_METRICS + EXTRA_METRICS,
                     notes=notes + _variant_notes(variants),
                     extra={"preset": preset, "resolution": resolution, "variants": variants})


def _variant_notes(variants):
    if not variants:
        return ""
    return (" Variants (not the paper's unless said): " + "; ".join(
        f"twin_vae_{name}: " + ", ".join(f"{k}={v}" for k, v in opts.items())
        for name, opts in variants.items())
        + ", each with stage 2 started from the seed's twin_vae run's end-of-stage-1 checkpoint "
        "(one stage 1 for all) and the same stage-2 steps.")


def _options(pairs):
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--run-option: expected KEY=VALUE, got {pair!r}")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out


def main(argv=None):
    parser = cli.ArgumentParser(prog="tfgan3d-eval sim2real_finding",
                                description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/sim2real-finding")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--steps", type=int, help="total sim2real steps of each run (split "
                        "between the stages as the preset's; default: the preset's)")
    parser.add_argument("--baseline-steps", type=int,
                        help="steps of every baseline (default: the run's stage-2 steps)")
    parser.add_argument("--resolution", type=int,
                        help="side the maps are scored at (default: the preset's: "
                             + ", ".join(f"{k} {v['resolution']}" for k, v in PRESETS.items())
                             + ")")
    parser.add_argument("--run-option", action="append", metavar="KEY=VALUE",
                        help="a sim2real config value for every run (e.g. lambda_mmd=2)")
    parser.add_argument("--variant", action="append", metavar="NAME:KEY=VALUE[,...]",
                        help="an arm twin_vae_NAME: stage 2 again from the twin VAE's stage 1 "
                             "with these run options (e.g. unpaired:mmd_pairing=unpaired)")
    protocol.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        variants = dict(parse_variant(v) for v in args.variant or ())
        options = _options(args.run_option)
    except ValueError as err:
        parser.error(str(err))
    summary = run_finding(args.out, seeds=args.seeds, reuse=args.reuse, preset=args.preset,
                          steps=args.steps, baseline_steps=args.baseline_steps,
                          resolution=args.resolution, options=options, variants=variants)
    print((Path(args.out) / "summary.md").read_text())
    return summary


if __name__ == "__main__":
    main()
