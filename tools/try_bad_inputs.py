"""Tries bad inputs on the command-line programs and tabulates what each one did.

    python -m tfgan3d.tools.try_bad_inputs --out runs/bad-inputs [--only WORD]

Each case runs one command (train on the tiny presets, eval, export, render, make_dataset) in
a subprocess on small data sets written under OUT, and is classified from its exit status and
output: "error" (non-zero exit, an `error: ...` line, no traceback), "traceback" (a Python
traceback), "crash" (killed by a signal) or "accepted" (exit 0: the bad input went through).
Train cases also record whether a run folder was left behind. Prints a Markdown table and
writes it to OUT/table.md (the closing note of issue 13 quotes it).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

PY = sys.executable


def _run(args, cwd=None, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run([PY, "-m", *args], capture_output=True, text=True, cwd=cwd,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return -999, "", "timeout"
    return done.returncode, done.stdout, done.stderr


def _verdict(rc, out, err):
    text = out + err
    if rc < 0 or rc in (134, 139):
        return "crash"
    if "Traceback (most recent call last)" in text:
        return "traceback"
    if rc == 0:
        return "accepted"
    lines = [l for l in err.splitlines() if l.startswith("error:") or ": error:" in l]
    return "error" if lines else "other"


def _error_line(err):
    lines = [l for l in err.splitlines() if l.startswith("error:") or ": error:" in l]
    return (lines[-1] if lines else (err.strip().splitlines() or [""])[-1])[:150]


# ----------------------------------------------------------------------------- data sets

def _png(path, array):
    from PIL import Image
    Image.fromarray(array).save(path)


def make_data(out: Path) -> dict:
    """Small data sets: a good pix2pix folder set and its damaged copies."""
    d = {}
    good = out / "data" / "good"
    if not good.exists():
        rc, _, err = _run(["tfgan3d.tools.make_dataset", "--domain", "virtual", "--n-train",
                           "8", "--n-test", "2", "--size", "32", "--layout", "folders",
                           "--out", str(good)])
        assert rc == 0, err
    d["good"] = good

    def copy(name):
        path = out / "data" / name
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(good, path)
        d[name] = path
        return path

    first = sorted((good / "train" / "rgb").iterdir())[0].name
    p = copy("truncated-train-png")
    rgb = p / "train" / "rgb" / sorted((p / "train" / "rgb").iterdir())[-1].name
    rgb.write_bytes(rgb.read_bytes()[:60])
    p = copy("corrupt-test-png")
    rgb = p / "test" / "rgb" / sorted((p / "test" / "rgb").iterdir())[0].name
    rgb.write_bytes(rgb.read_bytes()[:60])
    p = copy("nan-depth")
    for f in (p / "train" / "depth").iterdir():
        f.unlink()
        np.save(f.with_suffix(".npy"), np.full((32, 32), np.nan, np.float32))
    for f in (p / "test" / "depth").iterdir():
        f.unlink()
        np.save(f.with_suffix(".npy"), np.full((32, 32), 2.0, np.float32))
    meta = json.loads((good / "dataset.json").read_text())
    (p / "dataset.json").write_text(json.dumps(
        {k: v for k, v in meta.items() if k != "depth_encoding"}))
    p = copy("declared-png16-got-8bit")
    for split in ("train", "test"):
        for f in (p / split / "depth").iterdir():
            _png(f, np.full((32, 32), 100, np.uint8))
    (p / "dataset.json").write_text(json.dumps({**meta, "depth_encoding": "png16"}))
    p = copy("label-200")
    lab = p / "train" / "labels" / first
    if lab.exists():
        _png(lab, np.full((32, 32), 200, np.uint8))
    p = copy("sim-8bit-depth")
    for split in ("train", "test"):
        for f in (p / split / "depth").iterdir():
            _png(f, np.full((32, 32), 100, np.uint8))
    meta8 = {k: v for k, v in meta.items() if k not in ("depth_encoding",)}
    (p / "dataset.json").write_text(json.dumps(meta8))
    p = copy("bad-dataset-json")
    (p / "dataset.json").write_text("{not json")
    empty = out / "data" / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    d["empty"] = empty
    return d


# ----------------------------------------------------------------------------- cases

def train_cases(d):
    cache = ["--cache-dir", str(d["good"].parent / "cache")]
    p2p = ["tfgan3d.train", "--mode", "pix2pix", "--preset", "tiny", "--steps", "1", *cache]
    s2r = ["tfgan3d.train", "--mode", "sim2real", "--preset", "tiny", "--stage1-steps", "1",
           "--stage2-steps", "0", *cache]
    fcr = ["tfgan3d.train", "--mode", "fcr_alphagan", "--preset", "tiny", "--steps", "1", *cache]
    sg = ["tfgan3d.train", "--mode", "simgan", "--preset", "tiny", "--steps", "1", *cache]
    return [
        ("train: unknown mode", ["tfgan3d.train", "--mode", "nope"]),
        ("train: unknown flag", [*p2p, "--bogus", "1"]),
        ("train: --preset bogus", [*p2p, "--preset", "bogus"]),
        ("train: --lr -1", [*p2p, "--lr", "-1"]),
        ("train: --lr nan", [*p2p, "--lr", "nan"]),
        ("train: --beta1 5", [*p2p, "--beta1", "5"]),
        ("train: --ngf 0", [*p2p, "--ngf", "0"]),
        ("train: --steps 0", [*p2p, "--steps", "0"]),
        ("train: unsorted --lr-boundaries", [*p2p, "--lr-schedule", "piecewise",
                                             "--lr-boundaries", "20", "10", "--lr-factors",
                                             "1", "0.5", "0.1"]),
        ("train: --crop-size not a multiple", [*p2p, "--crop-size", "30"]),
        ("train: --batch-size 100000 on 8 pairs", [*p2p, "--data", str(d["good"]),
                                                  "--batch-size", "100000"]),
        ("train: --data missing folder", [*p2p, "--data", str(d["good"]) + "-nowhere"]),
        ("train: --data empty folder", [*p2p, "--data", str(d["empty"])]),
        ("train: --test-data missing", [*p2p, "--data", str(d["good"]), "--test-data",
                                        str(d["good"]) + "-nowhere"]),
        ("train: corrupt test PNG", [*p2p, "--data", str(d["corrupt-test-png"])]),
        ("train: truncated train PNG", [*p2p, "--data", str(d["truncated-train-png"])]),
        ("train: all-NaN depth", [*p2p, "--data", str(d["nan-depth"]),
                                  "--max-invalid-fraction", "1"]),
        ("train: png16 declared, 8-bit files", [*p2p, "--data",
                                                str(d["declared-png16-got-8bit"])]),
        ("train: label 200 (dataset.json classes)", [*p2p, "--data", str(d["label-200"])]),
        ("train: garbled dataset.json", [*p2p, "--data", str(d["bad-dataset-json"])]),
        ("train: sim2real 8-bit sim depth", [*s2r, "--sim-data", str(d["sim-8bit-depth"]),
                                             "--real-data", str(d["good"])]),
        ("train: sim2real --sim-data missing", [*s2r, "--sim-data", "/nowhere"]),
        ("train: sim2real --num-classes 0", [*s2r, "--num-classes", "0"]),
        ("train: fcr --num-classes 5 (labels to 11)", [*fcr, "--num-classes", "5"]),
        ("train: fcr --widths 0 8", [*fcr, "--widths", "0", "8"]),
        ("train: simgan --buffer-size 0", [*sg, "--buffer-size", "0"]),
        ("train: simgan --data missing", [*sg, "--data", "/nowhere"]),
        ("train: --resume missing folder", [*p2p, "--resume", "/nowhere"]),
    ]


def resume_cases(out, d):
    """A trained tiny pix2pix run, then resumes of damaged copies."""
    base = out / "trained"
    cache = ["--cache-dir", str(d["good"].parent / "cache")]
    if not base.exists():
        rc, _, err = _run(["tfgan3d.train", "--mode", "pix2pix", "--preset", "tiny", "--steps",
                           "4", "--checkpoint-every", "2", "--log-every", "2", "--run-dir",
                           str(base), *cache])
        assert rc == 0, err[-2000:]
    run = next(base.iterdir())
    cases = []
    for name, how in (("resume: every checkpoint zeroed", "zero"),
                      ("resume: --ngf 16 changes shapes", "ngf")):
        copy = out / "resume" / how / run.name
        shutil.rmtree(copy.parent, ignore_errors=True)
        shutil.copytree(run, copy)
        extra = []
        if how == "zero":
            for f in (copy / "checkpoints").glob("ckpt-*.data-*"):
                f.write_bytes(bytes(f.stat().st_size))
        else:
            extra = ["--ngf", "16"]
        cases.append((name, ["tfgan3d.train", "--mode", "pix2pix", "--resume", str(copy),
                             *extra, *cache]))
    return cases, run


def other_cases(out, run):
    npy = out / "scenes.npy"
    np.save(npy, np.zeros((2, 8, 8, 8), np.uint8))
    bad_npy = out / "bad.npy"
    bad_npy.write_bytes(b"not a npy")
    export_out = out / "serving"
    return [
        ("export: missing run", ["tfgan3d.export", "/nowhere", "--out", str(export_out)]),
        ("export: --version 0", ["tfgan3d.export", str(run), "--out", str(export_out),
                                 "--version", "0"]),
        ("export: --checkpoint missing", ["tfgan3d.export", str(run), "--out", str(export_out),
                                          "--checkpoint", "/nowhere/ckpt-1"]),
        ("eval: unknown program", ["tfgan3d.eval", "nope"]),
        ("eval: pix2pix missing run", ["tfgan3d.eval", "pix2pix", "/nowhere"]),
        ("eval: render missing file", ["tfgan3d.eval", "render", "/nowhere.npy"]),
        ("eval: render corrupt .npy", ["tfgan3d.eval", "render", str(bad_npy)]),
        ("eval: render --index 9 of 2", ["tfgan3d.eval", "render", str(npy), "-i", "9"]),
        ("tools: make_dataset --n-train -1", ["tfgan3d.tools.make_dataset", "--domain",
                                              "virtual", "--n-train", "-1", "--out",
                                              str(out / "md")]),
        ("tools: make_dataset unknown domain", ["tfgan3d.tools.make_dataset", "--domain",
                                                "mars", "--out", str(out / "md")]),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="try_bad_inputs", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", help="run the cases whose name holds this word")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    d = make_data(out)
    resumes, run = resume_cases(out, d)
    cases = train_cases(d) + resumes + other_cases(out, run)
    if args.only:
        cases = [c for c in cases if args.only in c[0]]
    rows = []
    for name, cmd in cases:
        run_dir = out / "case-runs" / name.replace(" ", "_").replace("/", "_")
        shutil.rmtree(run_dir, ignore_errors=True)
        if cmd[0] == "tfgan3d.train" and "--resume" not in cmd:
            cmd = [*cmd, "--run-dir", str(run_dir)]
        rc, stdout, stderr = _run(cmd)
        verdict = _verdict(rc, stdout, stderr)
        left = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
        rows.append((name, verdict, rc, ", ".join(left) or "-", _error_line(stderr)))
        print(f"{verdict:9s} rc={rc:4d} {name}: {rows[-1][4]}", flush=True)
    counts = {v: sum(r[1] == v for r in rows) for v in
              ("error", "traceback", "crash", "accepted", "other")}
    table = ["| input | result | exit | run folder left | message |", "|---|---|---|---|---|"]
    table += [f"| {n} | {v} | {rc} | {left} | {m.replace('|', '/')} |"
              for n, v, rc, left, m in rows]
    table.append("")
    table.append(f"{len(rows)} tried: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    text = "\n".join(table) + "\n"
    (out / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
