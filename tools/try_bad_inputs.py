"""Tries bad inputs on the command-line programs and tabulates what each one did.

    python -m tfgan3d.tools.try_bad_inputs --out runs/bad-inputs [--only WORD]

Each case runs one command (train on the tiny presets, eval, export, render, make_dataset) in
a subprocess on small data sets written under OUT, and is classified from its exit status and
output: "error" (non-zero exit, an `error: ...` line, no traceback), "traceback" (a Python
traceback), "crash" (killed by a signal), "warned" (exit 0 with a `warning: ...` line) or
"accepted" (exit 0 without a word: the bad input went through). The table also gives the
lines the program wrote to stderr (TensorFlow's start-up log left out: one for a single
`error:` line), and for train cases whether a run folder was left behind. Cases added for
issue 29 end in "[29]" (`--only [29]` runs them). Prints a Markdown table and writes it to
OUT/table.md (the closing notes of issues 13 and 29 quote it). `--jobs N` runs N cases at once.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from tfgan3d import cli

PY = sys.executable


def _run(args, cwd=None, timeout=1200):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run([PY, "-m", *args], capture_output=True, text=True, cwd=cwd,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return -999, "", "timeout"
    return done.returncode, done.stdout, done.stderr


# TensorFlow's and absl's start-up log on stderr, not the program's words.
_LOG_NOISE = ("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ",
              "To enable the following instructions", "oneDNN custom operations")


def _stderr_lines(err):
    return [l for l in err.splitlines() if l.strip() and not l.startswith(_LOG_NOISE)
            and "cpu_feature_guard" not in l]


def _verdict(rc, out, err):
    text = out + err
    if rc < 0 or rc in (134, 139):
        return "crash"
    if "Traceback (most recent call last)" in text:
        return "traceback"
    if rc == 0:
        return "warned" if any(l.startswith("warning:") for l in err.splitlines()) \
            else "accepted"
    lines = [l for l in err.splitlines() if l.startswith("error:") or ": error:" in l]
    return "error" if lines else "other"


def _error_line(rc, err):
    said = "warning:" if rc == 0 else "error:"
    lines = [l for l in err.splitlines() if l.startswith(said) or f": {said}" in l]
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
    # [29] depth .npy in metres x 1e6; 20 % of the pixels at 50 m; every train RGB truncated;
    # a depth file missing its RGB partner.
    for name, scale, far in (("npy-depth-x1e6", 1e6, 0), ("npy-depth-20pc-far", 1.0, 0.2)):
        p = copy(name)
        for f in (p / "train" / "depth").iterdir():
            from PIL import Image
            metres = np.asarray(Image.open(f), np.float32) * meta["depth_scale"] * scale
            if far:
                metres.reshape(-1)[:int(far * metres.size)] = 50.0
            f.unlink()
            np.save(f.with_suffix(".npy"), metres)
        (p / "dataset.json").write_text(json.dumps(
            {k: v for k, v in meta.items() if k != "depth_encoding"}))
    p = copy("all-train-png-truncated")
    for f in (p / "train" / "rgb").iterdir():
        f.write_bytes(f.read_bytes()[:60])
    p = copy("unpaired-depth")
    sorted((p / "train" / "rgb").iterdir())[0].unlink()
    vox = out / "data" / "empty-voxels" / "Scenevox"
    if not vox.exists():
        for i in range(8):
            (vox / f"s{i}").mkdir(parents=True)
            np.save(vox / f"s{i}" / "m0.npy", np.zeros((16, 16, 16), np.uint8))
    d["empty-voxels"] = vox.parent
    vox = out / "data" / "voxels-label-11" / "Scenevox"
    if not vox.exists():
        for i in range(8):
            (vox / f"s{i}").mkdir(parents=True)
            scene = np.zeros((16, 16, 16), np.uint8)
            scene[:, 0] = 1
            scene[4:8, 1:4, 4:8] = 11 if i == 5 else 3
            np.save(vox / f"s{i}" / "m0.npy", scene)
    d["voxels-label-11"] = vox.parent
    blocker = out / "data" / "a-file"
    blocker.write_text("")
    d["a-file"] = blocker
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
        # issue 29
        ("train: --steps abc [29]", [*p2p, "--steps", "abc"]),
        ("train: --seed x1 [29]", [*p2p, "--seed", "x1"]),
        ("train: typo --stpes 3 [29]", [*p2p, "--stpes", "3"]),
        ("train: .npy depth in metres x 1e6 [29]", [*p2p, "--data", str(d["npy-depth-x1e6"])]),
        ("train: 20% of depth beyond --max-depth [29]", [*p2p, "--data",
                                                         str(d["npy-depth-20pc-far"])]),
        ("train: sim2real .npy sim depth x 1e6 [29]", [*s2r, "--sim-data",
                                                      str(d["npy-depth-x1e6"]), "--real-data",
                                                      str(d["good"])]),
        ("train: sim2real --batch-size 64 on 8 [29]", [*s2r, "--sim-data", str(d["good"]),
                                                       "--real-data", str(d["good"]),
                                                       "--batch-size", "64"]),
        ("train: fcr every voxel scene empty [29]", [*fcr, "--data", str(d["empty-voxels"])]),
        ("train: fcr --num-classes 5, a label 11 [29]", [*fcr, "--data",
                                                         str(d["voxels-label-11"]),
                                                         "--num-classes", "5"]),
        ("train: every train PNG truncated [29]", [*p2p, "--data",
                                                   str(d["all-train-png-truncated"])]),
        ("train: a depth file without its RGB [29]", [*p2p, "--data", str(d["unpaired-depth"])]),
        ("train: simgan folder, no --real-data [29]", [*sg, "--data", str(d["good"])]),
        ("train: sim2real --image-size 18 [29]", [*s2r, "--image-size", "18"]),
        ("train: sim2real --num-classes 4 of 6 [29]", [*s2r, "--sim-data", str(d["good"]),
                                                       "--real-data", str(d["good"]),
                                                       "--num-classes", "4"]),
        ("train: --run-dir under a file [29]", [*p2p, "--run-dir", str(d["a-file"] / "runs")]),
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
        # issue 29: malformed values and unknown flags in the other programs
        ("export: --version abc [29]", ["tfgan3d.export", str(run), "--out", str(export_out),
                                        "--version", "abc"]),
        ("eval: pix2pix --batch-size abc [29]", ["tfgan3d.eval", "pix2pix", str(run),
                                                 "--batch-size", "abc"]),
        ("eval: fcr recons unknown flag [29]", ["tfgan3d.eval", "fcr", "recons", str(run),
                                                "--bogus"]),
        ("eval: render --size abc [29]", ["tfgan3d.eval", "render", str(npy), "--size", "abc"]),
        ("tools: make_dataset --n-train abc [29]", ["tfgan3d.tools.make_dataset", "--domain",
                                                    "virtual", "--n-train", "abc", "--out",
                                                    str(out / "md")]),
        ("tools: voxel_data unknown flag [29]", ["tfgan3d.tools.voxel_data", "stats",
                                                 str(npy), "--bogus"]),
    ]


def main(argv=None):
    parser = cli.ArgumentParser(prog="try_bad_inputs", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", help="run the cases whose name holds this word")
    parser.add_argument("--jobs", type=int, default=1, help="cases run at once")
    parser.add_argument("--first", help="run the cases whose name holds this word first")
    parser.add_argument("--skip", help="leave out the cases whose name holds this word")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    d = make_data(out)
    resumes, run = resume_cases(out, d)
    cases = train_cases(d) + resumes + other_cases(out, run)
    if args.only:
        cases = [c for c in cases if args.only in c[0]]
    if args.skip:
        cases = [c for c in cases if args.skip not in c[0]]
    if args.first:
        cases = sorted(cases, key=lambda c: args.first not in c[0])   # stable: order kept
    partial = out / "rows.md"                       # each row as it comes (a run cut short)
    partial.write_text("")

    def one(case):
        name, cmd = case
        run_dir = out / "case-runs" / name.replace(" ", "_").replace("/", "_")
        shutil.rmtree(run_dir, ignore_errors=True)
        if cmd[0] == "tfgan3d.train" and "--resume" not in cmd and "--run-dir" not in cmd:
            cmd = [*cmd, "--run-dir", str(run_dir)]
        rc, stdout, stderr = _run(cmd)
        verdict = _verdict(rc, stdout, stderr)
        left = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
        row = (name, verdict, rc, len(_stderr_lines(stderr)), ", ".join(left) or "-",
               _error_line(rc, stderr))
        print(f"{verdict:9s} rc={rc:4d} {name}: {row[-1]}", flush=True)
        with open(partial, "a") as f:
            f.write("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |\n")
        return row

    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        rows = list(pool.map(one, cases))
    counts = {v: sum(r[1] == v for r in rows) for v in
              ("error", "traceback", "crash", "warned", "accepted", "other")}
    table = ["| input | result | exit | stderr lines | run folder left | message |",
             "|---|---|---|---|---|---|"]
    table += [f"| {n} | {v} | {rc} | {k} | {left} | {m.replace('|', '/')} |"
              for n, v, rc, k, left, m in rows]
    table.append("")
    table.append(f"{len(rows)} tried: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    text = "\n".join(table) + "\n"
    (out / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
