"""One page for people: what each seed claims, what our runs measured, and the pictures.

    python -m tfgan3d.eval report FOLDER... [--out runs/report] [--title TEXT]

Each FOLDER is an experiment (a folder with the protocol's protocol.json, e.g. the output of
`eval domains`), a training run (a folder with config.json and losses.csv), or any folder that
holds them. The page groups what it finds by mode; per mode it shows the seed's claim and its
own numbers, each experiment's mean +- std table and verdicts (computed by the experiment, per
seed), the command that reproduces it, the experiment's pictures (grids, renders, GIFs, heat
maps), learning curves drawn from every run's losses.csv, and links to each run's config.json;
then the environment (versions, CPU / GPU, date).

Writes OUT/index.html and OUT/assets/ (copies of the pictures and the drawn curves), so that the
page is static, opens from the file system and links only relatively. `tools/page_check.py`
opens it in headless Chromium.
"""
from __future__ import annotations

import csv
import hashlib
import html
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from tfgan3d import cli
from tfgan3d.eval import report_modes, tables

MODES = ("pix2pix", "simgan", "sim2real", "fcr_alphagan")
# What each seed claims, in the seed's own numbers where it prints them.
SEED_CLAIMS = {
    "pix2pix": {
        "title": "pix2pix: monocular depth with a conditional GAN (seed 000)",
        "claim": "A model trained on one regime predicts depth well on that regime and "
                 "'universally bad' on the other: in-domain beats cross-domain on both test "
                 "sets (Regime-V virtual scenes, Regime-R real rooms with faulty depth maps).",
        "numbers": "The seed reports the 2x2 experiment qualitatively (its figures 4-7).",
        "command": "python -m tfgan3d.eval domains --preset quick --seeds 0 1 2",
    },
    "simgan": {
        "title": "SimGAN: refined synthetic eyes train a better gaze estimator (seeds 003, 004)",
        "claim": "A gaze estimator trained on refined synthetic eyes beats one trained on raw "
                 "synthetic eyes on real eyes.",
        "numbers": "MPIIGaze, % of test eyes within 7 degrees: refined 69.4 %, synthetic "
                   "62.3 % (Table 2).",
        "command": "python -m tfgan3d.eval simgan finding --seeds 0 1 2",
    },
    "sim2real": {
        "title": "Sim2Real: twin VAE with a shared latent space (seed 001)",
        "claim": "Depth and segmentation learned on simulation transfer to real images through "
                 "the shared latent space.",
        "numbers": "KITTI at 256x256, Table 1: Abs Rel 0.752, Sq Rel 20.7, RMSE 16.1, log RMSE "
                   "0.580; mIoU 0.063, accuracy 54.9 %.",
        "command": "python -m tfgan3d.eval sim2real RUN",
    },
    "fcr_alphagan": {
        "title": "FCR-alphaGAN: 3D voxel scenes (seed 002)",
        "claim": "A fully convolutional latent beats a 1-D latent, alphaGAN beats a plain "
                 "fully convolutional VAE, and the refiner smooths shapes; almost all voxels "
                 "are reconstructed while small objects may vanish.",
        "numbers": "The seed reports IoU and AP per class (its tables) and renders.",
        "command": "python -m tfgan3d.eval.fcr_findings OUT --seeds 0 1 2 --preset quick",
    },
}
PICTURES = (".png", ".gif", ".jpg", ".jpeg")
MAX_PICTURES = 12
# Pictures people look at first, in this order (file name starts); then the rest by depth.
PRIORITY = ("grid", "refined_grid", "gaze_cumulative", "translations", "renders",
            "interpolation", "noise_heatmap", "latent_map", "IoU", "AP")
CAPTIONS = {"grid": "input | prediction | truth", "refined_grid": "synthetic | refined | real-like",
            "gaze_cumulative": "cumulative gaze error (Figure 7)",
            "translations": "sim | sim -> real, real | real -> sim",
            "renders": "VTK renders: real | reconstruction | refined",
            "interpolation": "latent interpolation (VTK renders)",
            "noise_heatmap": "voxels changed by noise at each latent position",
            "samples_over_steps": "refiner samples over training", "IoU": "IoU per class",
            "AP": "AP per class"}
MAX_CURVES = 8
_SKIP_DIRS = {"checkpoints", "tensorboard", "assets", "__pycache__"}


# ---- discovery ---------------------------------------------------------------------------------

def _walk(root: Path, max_depth: int = 6):
    """Folders under root (root included), breadth first, skipping checkpoints and TensorBoard."""
    queue = [(root, 0)]
    while queue:
        folder, depth = queue.pop(0)
        yield folder
        if depth < max_depth:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                continue
            queue += [(c, depth + 1) for c in children if c.name not in _SKIP_DIRS]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def discover(folders) -> dict:
    """{"experiments": [{path, protocol, mode}], "runs": [{path, config}]} under `folders`.

    Raises:
        FileNotFoundError: a folder that does not exist (named).
    """
    experiments, runs, evaluations, seen = [], [], [], set()
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: expected an experiment or run folder, found "
                                    f"{'a file' if folder.exists() else 'nothing'}")
        for path in _walk(folder):
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            if (path / "protocol.json").is_file():
                protocol = _read_json(path / "protocol.json")
                if isinstance(protocol, dict) and "arms" in protocol:
                    experiments.append({"path": path, "protocol": protocol})
            if (path / "metrics.json").is_file():
                metrics = _read_json(path / "metrics.json")
                if isinstance(metrics, dict) and "rows" in metrics and "verdict" in metrics:
                    evaluations.append({"path": path, "metrics": metrics, "mode": "sim2real"})
            if (path / "config.json").is_file():
                config = _read_json(path / "config.json")
                if isinstance(config, dict) and config.get("mode") in MODES:
                    runs.append({"path": path, "config": config})
    for exp in experiments:
        inside = [r for r in runs if _is_under(r["path"], exp["path"])]
        exp["runs"] = inside
        exp["mode"] = exp["protocol"].get("mode") or (inside[0]["config"]["mode"] if inside
                                                      else None)
    return {"experiments": experiments, "runs": runs, "evaluations": evaluations}


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


# ---- assets ------------------------------------------------------------------------------------

def _asset(src: Path, out: Path) -> str:
    """Copies a picture into OUT/assets under a name unique to its path; returns the relative
    link."""
    digest = hashlib.sha1(str(src.resolve()).encode()).hexdigest()[:10]
    name = f"{digest}-{src.name}"
    dest = out / "assets" / name
    if not dest.exists() or dest.stat().st_mtime < src.stat().st_mtime:
        tables.atomic_write(dest, src.read_bytes())
    return f"assets/{name}"


def pictures_of(folder: Path, limit: int = MAX_PICTURES) -> list[Path]:
    """The experiment's pictures: those of its first seed (or all, when it has no seed folders),
    evaluation figures rather than training samples, at most `limit`, never TensorBoard's or
    checkpoints'."""
    found = []
    for path in _walk(folder):
        try:
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in PICTURES
                            and p.is_file())
        except OSError:
            continue
    seeds = sorted({p.relative_to(folder).parts[0] for p in found
                    if p.relative_to(folder).parts[0].startswith("seed-")})
    if seeds:
        found = [p for p in found if p.relative_to(folder).parts[0] in (seeds[0],)
                 or not p.relative_to(folder).parts[0].startswith("seed-")]
    figures = [p for p in found if "samples" not in p.parts]
    found = figures or found  # training samples only when there is nothing else to show
    found.sort(key=lambda p: (_priority(p), len(p.parts), str(p)))
    return found[:limit]


def _priority(path: Path) -> int:
    for i, start in enumerate(PRIORITY):
        if path.name.startswith(start) and not (start == "grid" and "refined" in path.name):
            return i
    return len(PRIORITY)


def caption(path: Path, root: Path) -> str:
    """What the picture shows, then where it comes from."""
    what = next((text for start, text in sorted(CAPTIONS.items(), key=lambda kv: -len(kv[0]))
                 if path.name.startswith(start)), "")
    where = str(path.relative_to(root)) if _is_under(path, root) else path.name
    return f"{what}: {where}" if what else where


def learning_curve(run_path: Path, out: Path) -> str | None:
    """Draws the run's losses.csv (every loss column against the step) into OUT/assets."""
    path = run_path / "losses.csv"
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    if len(rows) < 2:
        return None
    columns = [c for c in rows[0] if c.endswith("_loss")] or [
        c for c in rows[0] if c not in ("step", "time_s", "lr")]

    def number(text):
        try:
            value = float(text)
        except (TypeError, ValueError):
            return math.nan
        return value if math.isfinite(value) else math.nan

    steps = np.array([number(r.get("step")) for r in rows])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=90)
    for column in columns[:10]:
        values = np.array([number(r.get(column)) for r in rows])
        if np.isfinite(values).any():
            ax.plot(steps, values, label=column, linewidth=1.2)
    ax.set_xlabel("iteration")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(run_path.name, fontsize=9)
    fig.tight_layout()
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    digest = hashlib.sha1(str(run_path.resolve()).encode()).hexdigest()[:10]
    name = f"{digest}-curves.png"
    tables.atomic_write(out / "assets" / name, buf.getvalue())
    return f"assets/{name}"


# ---- HTML --------------------------------------------------------------------------------------

def _e(text) -> str:
    return html.escape(str(text))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    return _e(value)


def experiment_tables(protocol: dict, main=None) -> str:
    """The protocol's mean +- std table (the `main` metrics first, the others under "more
    metrics"), its per-seed table and its verdicts, as HTML."""
    every = protocol.get("metrics", [])
    metrics = [m for m in every if m in main] if main is not None else every
    rest = [m for m in every if m not in metrics]
    head = "".join(f"<th>{_e(m)}</th>" for m in metrics)
    n = len(protocol.get("seeds", []))
    body = ""
    for arm, stats in protocol.get("arms", {}).items():
        cells = ""
        for m in metrics:
            cells += f"<td>{report_modes.mean_std(stats.get(m), n)}</td>"
        body += f"<tr><th>{_e(arm)}</th>{cells}</tr>\n"
    text = "" if not metrics else (f"<table class='summary'><caption>mean &plusmn; std over {n} seed"
            f"{'s' * (n != 1)}</caption><tr><th>arm</th>{head}</tr>\n{body}</table>\n")
    if rest:
        more = experiment_tables({**protocol, "metrics": rest, "per_seed_rows": [],
                                  "verdicts": []})
        text += (f"<details><summary>{'more' if metrics else 'all'} metrics (mean &plusmn; "
                 f"std per arm)</summary>{more}</details>\n")
    rows = protocol.get("per_seed_rows", [])
    if rows:
        text += ("<details><summary>per seed</summary><table class='per-seed'><tr><th>seed</th>"
                 f"<th>arm</th>{head}</tr>\n")
        for r in rows:
            text += (f"<tr><td>{_e(r.get('seed'))}</td><td>{_e(r.get('arm'))}</td>"
                     + "".join(f"<td>{_cell(r.get(m))}</td>" for m in metrics) + "</tr>\n")
        text += "</table></details>\n"
    verdicts = protocol.get("verdicts", [])
    if verdicts:
        text += "<ul class='verdicts'>\n"
        for v in verdicts:
            seeds = ", ".join(f"{s}: {'yes' if ok else 'no'}" for s, ok in v["per_seed"].items())
            cls = "holds" if v.get("holds") else "fails"
            text += (f"<li class='{cls}'><b>{'holds' if v.get('holds') else 'does not hold'}"
                     f"</b> ({v['holds_in']} of {v['of']} seeds: {_e(seeds)}): "
                     f"{_e(v['claim'])}</li>\n")
        text += "</ul>\n"
    return text


def _run_links(runs, out: Path) -> str:
    if not runs:
        return ""
    items = "".join(
        f"<li><a href='{_e(os.path.relpath(r['path'] / 'config.json', out))}'>"
        f"{_e(r['path'].name)}</a> ({_e(r['config'].get('preset'))}, seed "
        f"{_e(r['config'].get('seed'))})</li>" for r in runs)
    return (f"<details><summary>runs ({len(runs)}): config.json</summary><ul>{items}</ul>"
            "</details>\n")


def _figures(paths, out: Path, captions=None) -> str:
    if not paths:
        return ""
    items = ""
    for i, path in enumerate(paths):
        caption = captions[i] if captions else str(path)
        items += (f"<figure><img src='{_e(path if isinstance(path, str) else _asset(path, out))}'"
                  f" alt='{_e(caption)}' loading='eager'><figcaption>{_e(caption)}</figcaption>"
                  "</figure>\n")
    return f"<div class='figures'>{items}</div>\n"


def environment() -> dict:
    """Versions, CPU and GPU of this machine (GPUs from nvidia-smi's device files only, so that
    building a page never starts TensorFlow)."""
    versions = {"python": platform.python_version()}
    from importlib.metadata import PackageNotFoundError, version
    for name, dists in (("tensorflow", ("tensorflow", "tensorflow-cpu", "tf-nightly")),
                        ("keras", ("keras",)), ("numpy", ("numpy",)), ("vtk", ("vtk",)),
                        ("matplotlib", ("matplotlib",))):
        versions[name] = "not installed"
        for dist in dists:
            try:
                versions[name] = version(dist)
                break
            except PackageNotFoundError:
                continue
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = sorted(p.name for p in Path("/dev").glob("nvidia[0-9]*")) if Path("/dev").exists() \
        else []
    return {"versions": versions, "cpu": f"{cpu} x {os.cpu_count()}",
            "gpu": ", ".join(gpus) or "none", "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                   time.gmtime())}


CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em;display:block;overflow-x:auto}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}th{background:#f4f4f4}
caption{text-align:left;font-size:.9em;color:#555}
.verdicts li.holds b{color:#17702b}.verdicts li.fails b{color:#a4161a}
.figures{display:flex;flex-wrap:wrap;gap:.8em}figure{margin:0;max-width:380px}
figure img{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}
figcaption{font-size:.72em;color:#555;word-break:break-all}
code{background:#f4f4f4;padding:.1em .3em}td.l{text-align:left}
td.own{background:#e8f3ea}tr.seed td{background:#f7f7fb;font-style:italic}
.claim{background:#f7f7fb;padding:.6em;border-left:3px solid #88a}
"""


def _stage_table(demo) -> str:
    """The demo's stages: what ran, its state and its time."""
    if not demo:
        return ""
    rows = ""
    for stage in demo.get("stages", []):
        seconds = stage.get("seconds")
        rows += (f"<tr><td class='l'>{_e(stage['name'])}</td><td class='l'>{_e(stage['state'])}"
                 f"</td><td>{'' if seconds is None else f'{seconds / 60:.1f} min'}</td></tr>")
    return (f"<table class='stages'><caption>demo stages (preset {_e(demo.get('preset'))}, seeds "
            f"{_e(' '.join(map(str, demo.get('seeds', []))))})</caption><tr><th>stage</th>"
            f"<th>state</th><th>time</th></tr>{rows}</table>\n")


def folder_seeds(protocol: dict, folder: Path) -> list[int]:
    """The seeds an experiment folder holds: its protocol.json's, else its seed-S folders."""
    seeds = protocol.get("seeds")
    if isinstance(seeds, list) and seeds:
        return [int(s) for s in seeds]
    found = [p.name[len("seed-"):] for p in Path(folder).glob("seed-*") if p.is_dir()]
    return sorted(int(s) for s in found if s.isdigit())


def reproduce_command(command: str, protocol: dict, folder: Path) -> str:
    """A seed's generic command (SEED_CLAIMS) made that of `folder`: OUT is the folder and
    `--seeds` lists the seeds the folder holds (not the default 0 1 2)."""
    words = command.split()
    words = [str(folder) if w == "OUT" else w for w in words]
    seeds = folder_seeds(protocol, folder)
    if "--seeds" in words and seeds:
        i = words.index("--seeds") + 1
        j = i
        while j < len(words) and words[j].lstrip("-").isdigit() and not words[j].startswith("--"):
            j += 1
        words[i:j] = [str(s) for s in seeds]
    return " ".join(words)


def build(folders, out, *, title="tfgan3d report", total_seconds=None, demo=None) -> Path:
    """Writes OUT/index.html from the experiments and runs under `folders`; returns its path."""
    out = Path(out)
    found = discover(folders)
    out.mkdir(parents=True, exist_ok=True)
    commands = {Path(s["folder"]).resolve(): s["command"] for s in (demo or {}).get("stages", [])
                if s.get("folder") and s.get("command")}
    sections, toc = [], []
    for mode in MODES:
        experiments = [e for e in found["experiments"] if e["mode"] == mode]
        loose = [r for r in found["runs"] if r["config"]["mode"] == mode
                 and not any(_is_under(r["path"], e["path"]) for e in found["experiments"])]
        evaluations = [v for v in found["evaluations"] if v["mode"] == mode]
        loose = [r for r in loose if not any(_is_under(r["path"], v["path"].parent)
                                             for v in evaluations)]
        if not experiments and not loose and not evaluations:
            continue
        seed = SEED_CLAIMS[mode]
        text = (f"<h2 id='{mode}'>{_e(seed['title'])}</h2>\n<p class='claim'><b>The seed:</b> "
                f"{_e(seed['claim'])}<br><b>Its numbers:</b> {_e(seed['numbers'])}</p>\n")
        for exp in experiments:
            protocol = exp["protocol"]
            command = (commands.get(exp["path"].resolve()) or protocol.get("command")
                       or reproduce_command(seed["command"], protocol, exp["path"]))
            text += (f"<h3>{_e(protocol.get('title', exp['path'].name))}</h3>\n"
                     f"<p>Reproduce: <code>{_e(command)}</code> (folder "
                     f"<code>{_e(os.path.relpath(exp['path'], out))}</code>)</p>\n")
            if mode == "pix2pix":
                text += report_modes.pix2pix_matrix(protocol)
            elif mode == "simgan":
                text += report_modes.simgan_beside_seed(protocol)
            text += experiment_tables(protocol, report_modes.MAIN_METRICS.get(mode))
            per_class = _read_json(exp["path"] / "per_class.json")
            if mode == "fcr_alphagan" and isinstance(per_class, dict):
                text += report_modes.fcr_per_class(per_class)
            pics = pictures_of(exp["path"])
            text += _figures(pics, out, [caption(p, exp["path"]) for p in pics])
            drawn = [(learning_curve(r["path"], out), r) for r in exp["runs"][:MAX_CURVES]]
            drawn = [(c, r) for c, r in drawn if c]
            text += _figures([c for c, _ in drawn], out, [
                f"learning curves: {r['path'].relative_to(exp['path'])}" for _, r in drawn])
            text += _run_links(exp["runs"], out)
        for ev in evaluations:
            run = Path(str(ev["metrics"].get("run", "")))
            runs = [r for r in found["runs"] if r["config"]["mode"] == mode and (
                _is_under(r["path"], ev["path"].parent) or r["path"].resolve() == run.resolve())]
            command = (commands.get(ev["path"].resolve())
                       or f"python -m tfgan3d.eval sim2real {run} --out {ev['path']}")
            text += (f"<h3>{_e(os.path.relpath(ev['path'], out))}</h3>\n"
                     f"<p>Reproduce: <code>{_e(command)}</code></p>\n")
            text += report_modes.sim2real_evaluation(ev["metrics"])
            pics = pictures_of(ev["path"], limit=4)
            text += _figures(pics, out, [caption(p, ev["path"]) for p in pics])
            drawn = [(learning_curve(r["path"], out), r) for r in runs[:MAX_CURVES]]
            drawn = [(c, r) for c, r in drawn if c]
            text += _figures([c for c, _ in drawn], out,
                             [f"learning curves: {r['path'].name}" for _, r in drawn])
            text += _run_links(runs, out)
        for run in loose:
            text += f"<h3>run {_e(run['path'].name)}</h3>\n"
            pics = pictures_of(run["path"], limit=4)
            text += _figures(pics, out, [caption(p, run["path"]) for p in pics])
            curve = learning_curve(run["path"], out)
            text += _figures([curve] if curve else [], out, ["learning curves"])
            text += _run_links([run], out)
        sections.append(text)
        toc.append(f"<a href='#{mode}'>{_e(mode)}</a>")
    env = environment()
    env_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                       for k, v in env["versions"].items())
    total = (f"<tr><th>total time</th><td>{total_seconds / 60:.1f} min</td></tr>"
             if total_seconds is not None else "")
    body = (f"<h1>{_e(title)}</h1>\n<p>{' | '.join(toc) or 'No experiments or runs found.'}</p>\n"
            + "".join(sections)
            + "<h2 id='environment'>Environment</h2>\n<table>" + env_rows
            + f"<tr><th>CPU</th><td>{_e(env['cpu'])}</td></tr><tr><th>GPU</th><td>"
            f"{_e(env['gpu'])}</td></tr><tr><th>date</th><td>{_e(env['date'])}</td></tr>{total}"
            "</table>\n" + _stage_table(demo))
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(title)}"
            f"</title><style>{CSS}</style></head><body>\n{body}</body></html>\n")
    return tables.atomic_write(out / "index.html", page)


def main(argv=None):
    parser = cli.ArgumentParser(prog="tfgan3d-eval report",
                                description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", metavar="FOLDER",
                        help="experiment or run folders (or folders that hold them)")
    parser.add_argument("--out", default="runs/report", help="page folder (index.html, assets/)")
    parser.add_argument("--title", default="tfgan3d report")
    args = parser.parse_args(argv)
    path = build(args.folders, args.out, title=args.title)
    print(f"page: {path}", flush=True)
    return 0


if __name__ == "__main__":
    main()
