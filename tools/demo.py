"""The demo: each seed system's experiment at one preset on the built-in data, then one page.

    python -m tfgan3d.tools.demo [--out runs/demo] [--modes pix2pix simgan sim2real fcr_alphagan]
        [--seeds 0] [--preset quick|tiny] [--no-page]

Stages (each one child process of the programs' own command lines, `python -m tfgan3d...`):
  pix2pix       the 2x2 virtual / real-like train-test experiment (`eval domains`)
  simgan        the gaze finding, synthetic vs refined (`eval simgan finding`), then the gaze
                evaluation of the first seed's refiner (`eval simgan RUN`: cumulative error
                curves, refined | synthetic | real grid)
  sim2real      per seed: a training (`tfgan3d.train --mode sim2real`) and its comparison
                table beside sim-only, real-supervised and the prior (`eval sim2real RUN`)
  fcr_alphagan  the findings over alphagan / vae / vae1d (reconstruction metrics of each arm,
                the comparison, `eval.fcr_findings`), then on the first seed's alphagan run the
                VTK renders real | reconstruction | refined, the interpolation GIF and the
                latent-noise heat map (`eval fcr renders|interpolate|noise`)
Each child's stdout and stderr go to OUT/logs/STAGE.log (TensorFlow's start-up chatter never
reaches the terminal). A stage is done when its result file exists; running the command again
skips finished stages and lets the programs resume the rest (--reuse for the protocol's arms,
--resume latest for a training). One line per stage: a progress bar (from the runs' losses.csv
rows against their steps and the finished arms' result files, or stage-level), elapsed and
estimated time left. Then OUT/index.html (eval/report.py) and OUT/demo.json (stage times).
"""
from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tfgan3d import cli
from tfgan3d import io as tfgan3d_io

MODES = ("pix2pix", "simgan", "sim2real", "fcr_alphagan")
PRESETS = ("quick", "tiny")
POLL_S = 2.0


@dataclass
class Stage:
    """One child process. `argv` is called when the stage starts (it may need an earlier
    stage's run folder); the stage is done when `done` exists."""
    name: str
    mode: str
    folder: Path
    argv: Callable[[], list[str]]
    done: Path
    trainings: int = 0                  # training runs expected under `folder`
    parts: tuple[str, int] = ("", 0)    # (glob of per-part result files, how many expected)
    marker: bool = False                # the demo writes `done` after a clean exit
    after: list[str] = field(default_factory=list)   # stages that must be done first


def _py(*args) -> list[str]:
    return [sys.executable, "-m", *map(str, args)]


def _seeds(seeds) -> list[str]:
    return [str(s) for s in seeds]


def _protocol_done(path: Path, seeds) -> bool:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return [int(s) for s in saved.get("seeds", [])] == [int(s) for s in seeds]


def _run_of(folder: Path) -> Path:
    """The (one, newest) training run folder under `folder`."""
    runs = sorted(p.parent for p in folder.glob("**/config.json")
                  if (p.parent / "losses.csv").exists() or (p.parent / "checkpoints").is_dir())
    if not runs:
        raise FileNotFoundError(f"{folder}: expected a training run (config.json), found none")
    return runs[-1]


def _started(run_dir: Path) -> bool:
    """A run under run_dir logged an iteration or wrote a checkpoint (what --resume latest
    takes)."""
    for config in run_dir.glob("*/config.json"):
        losses = config.parent / "losses.csv"
        if losses.exists() and len(losses.read_text().splitlines()) > 1:
            return True
        if any((config.parent / "checkpoints").glob("*.index")):
            return True
    return False


def plan(out, modes=MODES, seeds=(0,), preset="quick") -> list[Stage]:
    """The stages of the selected modes, in order."""
    out, seeds, tiny = Path(out), list(seeds), preset == "tiny"
    first = seeds[0]
    stages = []
    if "pix2pix" in modes:
        d = out / "pix2pix"
        stages.append(Stage(
            "pix2pix 2x2", "pix2pix", d,
            lambda d=d: _py("tfgan3d.eval", "domains", "--preset", preset, "--out", d, "--seeds",
                        *_seeds(seeds), "--reuse"),
            d / "protocol.json", trainings=2 * len(seeds),
            parts=("seed-*/*/result.json", 2 * len(seeds))))
    if "simgan" in modes:
        d = out / "simgan"
        stages.append(Stage(
            "simgan gaze finding", "simgan", d,
            lambda d=d: _py("tfgan3d.eval", "simgan", "finding", "--preset", preset, "--out", d,
                        "--seeds", *_seeds(seeds), "--arms", "synthetic", "refined", "--reuse"),
            d / "protocol.json", trainings=len(seeds),
            parts=("seed-*/*/result.json", 2 * len(seeds))))
        ev = d / f"seed-{first}" / "refined" / "eval-simgan"
        small = (["--n-train", "32", "--n-test", "16", "--estimator-steps", "2",
                  "--batch-size", "8", "--realism-steps", "2", "--conv-widths", "4", "4", "4",
                  "4", "4", "--fc-widths", "8"] if tiny else
                 # the finding's estimator (eval/eye_gap.py's CPU setting), so that the curves
                 # belong to the table beside them
                 ["--estimator-steps", "400", "--batch-size", "64", "--conv-widths", "16", "16",
                  "32", "40", "96"])
        stages.append(Stage(
            "simgan gaze curves", "simgan", ev,
            lambda d=d, ev=ev, small=small: _py(
                "tfgan3d.eval", "simgan", _run_of(d / f"seed-{first}" / "refined"), "--out", ev,
                "--seed", first, *small),
            ev / "summary.json", after=["simgan gaze finding"]))
    if "sim2real" in modes:
        for seed in seeds:
            d = out / "sim2real" / f"seed-{seed}"
            train = d / "train"

            def train_argv(train=train, seed=seed):
                return _py("tfgan3d.train", "--mode", "sim2real", "--preset", preset, "--seed",
                           seed, "--run-dir", train,
                           *(["--resume", "latest"] if _started(train) else []))
            stages.append(Stage(f"sim2real train (seed {seed})", "sim2real", train, train_argv,
                                train / "trained.json", trainings=1, marker=True))
            ev = d / "eval"
            small = ["--resolution", "16", "--baseline-steps", "2"] if tiny else []
            stages.append(Stage(
                f"sim2real table (seed {seed})", "sim2real", ev,
                lambda train=train, ev=ev, small=small: _py(
                    "tfgan3d.eval", "sim2real", _run_of(train), "--out", ev, *small),
                ev / "metrics.json", after=[f"sim2real train (seed {seed})"]))
    if "fcr_alphagan" in modes:
        d = out / "fcr_alphagan"
        # tiny (tests): the alphagan arm alone, two iterations a phase, two test scenes
        small = (["--phase1-steps", "2", "--phase2-steps", "2", "--n", "2", "--arms", "alphagan"]
                 if tiny else [])
        stages.append(Stage(
            "fcr findings", "fcr_alphagan", d,
            lambda d=d, small=small: _py("tfgan3d.eval.fcr_findings", d, "--preset", preset,
                                         "--seeds",
                        *_seeds(seeds), "--reuse", *small),
            d / "protocol.json", trainings=(1 if tiny else 3) * len(seeds),
            parts=("seed-*/*/result.json", (1 if tiny else 3) * len(seeds))))
        arm = d / f"seed-{first}" / "alphagan"
        size = ["--size", "96x72"] if tiny else []
        stages.append(Stage(
            "fcr renders", "fcr_alphagan", arm,
            lambda arm=arm, size=size: _py("tfgan3d.eval", "fcr", "renders", arm / "eval-recons", "--out",
                        arm / "renders.png", "--indices",
                        *(["0", "1"] if tiny else ["0", "1", "2", "3"]), *size),
            arm / "renders.png", after=["fcr findings"]))
        stages.append(Stage(
            "fcr interpolation GIF", "fcr_alphagan", arm / "eval-interpolate",
            lambda arm=arm: _py("tfgan3d.eval", "fcr", "interpolate", _run_of(arm), "--out",
                        arm / "eval-interpolate", "--pairs", "1", "--steps",
                        "3" if tiny else "16", *(["--gif-size", "96x72"] if tiny else [])),
            arm / "eval-interpolate" / "interpolate.json", after=["fcr findings"]))
        stages.append(Stage(
            "fcr noise heat map", "fcr_alphagan", arm / "eval-noise",
            lambda arm=arm: _py("tfgan3d.eval", "fcr", "noise", _run_of(arm), "--out",
                        arm / "eval-noise", "--scenes", "1", "--draws", "2" if tiny else "4"),
            arm / "eval-noise" / "noise.json", after=["fcr findings"]))
    return stages


def shown_command(stage: Stage) -> str | None:
    """The stage's command line as a user would type it (`python -m ...`), or None while it
    depends on a run that does not exist yet."""
    try:
        argv = stage.argv()
    except FileNotFoundError:
        return None
    return " ".join(["python", *(shlex.quote(str(a)) for a in argv[1:])])


def is_done(stage: Stage, seeds) -> bool:
    if stage.done.name == "protocol.json":   # done for these seeds, not for an earlier list
        return _protocol_done(stage.done, seeds)
    return stage.done.exists()


# ---- progress ---------------------------------------------------------------------------------

def _training_fraction(run: Path) -> float:
    try:
        config = json.loads((run / "config.json").read_text())
        total = config.get("steps") or ((config.get("stage1_steps") or 0)
                                        + (config.get("stage2_steps") or 0))
        with open(run / "losses.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        last = float(rows[-1]["step"]) if rows else 0.0
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
    return min(1.0, last / total) if total else 0.0


def progress(stage: Stage) -> float | None:
    """Fraction done in [0, 1] from the runs' losses.csv and the parts' result files; None when
    the stage has neither (stage-level: 0 until it ends)."""
    pattern, parts = stage.parts
    units = stage.trainings + parts
    if not units:
        return None
    done = 0.0
    if stage.trainings:
        runs = [p.parent for p in stage.folder.glob("**/config.json")
                if (p.parent / "losses.csv").exists()]
        done += sum(sorted((_training_fraction(r) for r in runs), reverse=True)
                    [:stage.trainings])
    if parts:
        done += min(parts, len(list(stage.folder.glob(pattern))))
    return min(1.0, done / units)


def _clock(seconds) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"


def status_line(name, fraction, elapsed, state="", width=24) -> str:
    bar_fraction = 1.0 if state == "done" else (fraction or 0.0)
    filled = int(round(width * bar_fraction))
    bar = "#" * filled + "." * (width - filled)
    left = None
    if state not in ("done", "reused", "failed") and fraction and fraction > 0.02:
        left = elapsed * (1 - fraction) / fraction
    pct = "  ? %" if fraction is None and not state else f"{100 * bar_fraction:3.0f} %"
    tail = state or f"left {_clock(left)}"
    return f"{name:<26} [{bar}] {pct}  {_clock(elapsed)}  {tail}"


class Display:
    """One line per stage: rewritten in place on a terminal, printed every `every` seconds
    (and at the stage's end) otherwise."""
    def __init__(self, stream=sys.stdout, every=60.0):
        self.stream, self.every = stream, every
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last = 0.0

    def update(self, text, final=False):
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        elif final or time.time() - self.last >= self.every:
            self.stream.write(text + "\n")
            self.last = time.time()
        self.stream.flush()


# ---- running -----------------------------------------------------------------------------------

def _tail_error(log: Path) -> str:
    try:
        lines = [l for l in log.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    errors = [l for l in lines if l.startswith("error:")]
    return (errors or lines or [""])[-1][:300]


def run_stage(stage: Stage, logs: Path, display: Display, env=None) -> tuple[str, float]:
    """Runs the stage's child process with its output in logs/NAME.log; returns (state,
    seconds) with state 'done' or 'failed: ...'."""
    log = logs / (stage.name.replace(" ", "-").replace("(", "").replace(")", "") + ".log")
    stage.folder.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        argv = stage.argv()
    except FileNotFoundError as err:
        display.update(status_line(stage.name, 0.0, 0.0, "failed"), final=True)
        return f"failed: {err}", 0.0
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    child_env["PYTHONUNBUFFERED"] = "1"
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(argv)}\n")
        f.flush()
        child = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=child_env,
                                 stdin=subprocess.DEVNULL)
        try:
            while child.poll() is None:
                display.update(status_line(stage.name, progress(stage), time.time() - t0))
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            child.terminate()
            child.wait()
            raise
    seconds = time.time() - t0
    if child.returncode == 0 and stage.marker:
        tfgan3d_io.write_json({"command": argv, "seconds": round(seconds, 1)}, stage.done)
    if child.returncode != 0 or not stage.done.exists():
        display.update(status_line(stage.name, progress(stage), seconds, "failed"), final=True)
        why = _tail_error(log) or f"exit status {child.returncode}"
        return f"failed: {why} (log: {log})", seconds
    display.update(status_line(stage.name, 1.0, seconds, "done"), final=True)
    return "done", seconds


def _keep_times(out: Path, times: dict) -> None:
    try:
        saved = json.loads((out / "demo.json").read_text())
    except (OSError, ValueError):
        saved = {}
    tfgan3d_io.write_json({**saved, "stage_seconds": times}, out / "demo.json")


def run_demo(out="runs/demo", modes=MODES, seeds=(0,), preset="quick", page=True,
             stream=sys.stdout, env=None) -> dict:
    """Runs the stages not yet done, builds the page; returns the summary (also OUT/demo.json):
    {"stages": [{name, mode, state, seconds, command}], "page": path, "total_seconds"}."""
    out = Path(out)
    stages = plan(out, modes, seeds, preset)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    display = Display(stream)
    try:  # every stage's measured time, from all earlier calls (any MODES)
        saved = json.loads((out / "demo.json").read_text())
        times = dict(saved.get("stage_seconds") or {s["name"]: s["seconds"] for s in
                                                   saved.get("stages", []) if s.get("seconds")})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        times = {}
    t0 = time.time()
    states, summary = {}, []
    for stage in stages:
        if is_done(stage, seeds):
            state, seconds = "reused", times.get(stage.name)
            display.update(status_line(stage.name, 1.0, seconds or 0.0, "reused"), final=True)
        elif any(not states.get(a, "").startswith(("done", "reused")) for a in stage.after):
            state, seconds = "skipped: an earlier stage failed", 0.0
            display.update(status_line(stage.name, 0.0, 0.0, "skipped"), final=True)
        else:
            state, seconds = run_stage(stage, logs, display, env)
        states[stage.name] = state
        if state == "done":   # kept at once, so that an interrupted demo keeps its times
            times[stage.name] = round(seconds, 1)
            _keep_times(out, times)
        summary.append({"name": stage.name, "mode": stage.mode, "state": state,
                        "seconds": None if seconds is None else round(seconds, 1),
                        "result": os.path.relpath(stage.done, out), "folder": str(stage.folder),
                        "command": shown_command(stage)})
    result = {"modes": list(modes), "seeds": list(seeds), "preset": preset, "stages": summary,
              "run_seconds": round(time.time() - t0, 1),
              "total_seconds": round(sum(s["seconds"] or 0 for s in summary), 1),
              "stage_seconds": times}
    if page:
        from tfgan3d.eval import report
        folders = sorted({out / s.folder.relative_to(out).parts[0] for s in stages})
        folders = [f for f in folders if f.exists()]
        result["page"] = str(report.build(folders, out, title="tfgan3d demo",
                                          total_seconds=result["total_seconds"],
                                          demo=result))
    tfgan3d_io.write_json(result, out / "demo.json")
    failed = [s for s in summary if not s["state"].startswith(("done", "reused"))]
    stream.write(f"\n{len(summary) - len(failed)} of {len(summary)} stages finished in "
                 f"{_clock(result['total_seconds'])} (this call: {_clock(result['run_seconds'])})"
                 "\n")
    for s in failed:
        stream.write(f"  {s['name']}: {s['state']}\n")
    if page:
        stream.write(f"page: {result['page']}\n")
    stream.flush()
    return result


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m tfgan3d.tools.demo",
                                description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--preset", choices=PRESETS, default="quick")
    parser.add_argument("--no-page", dest="page", action="store_false")
    args = parser.parse_args(argv)
    modes = [m for m in MODES if m in args.modes]
    result = run_demo(args.out, modes, args.seeds, args.preset, page=args.page)
    return 0 if all(s["state"].startswith(("done", "reused")) for s in result["stages"]) else 1


if __name__ == "__main__":
    sys.exit(main())
