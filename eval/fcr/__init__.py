"""Evaluate a 3D FCR-alphaGAN run: the original's three evaluation modes (reconstruction,
interpolation, latent noise) in Python 3, metrics over checkpoints, the latent-space map and
the comparison with the baselines (`--variant vae`, `--variant latent1d`).

    python -m tfgan3d.eval fcr recons RUN [--n 200] [--legacy-metrics]
        [--no-baseline] [--baseline-scenes N]
    python -m tfgan3d.eval fcr checkpoints RUN [--n 50]
    python -m tfgan3d.eval fcr interpolate RUN [--pairs 3] [--steps 30] [--no-gif]
    python -m tfgan3d.eval fcr noise RUN [--scenes 2] [--draws 9] [--sigma 1.0]
    python -m tfgan3d.eval fcr latent RUN [--n 200]
    python -m tfgan3d.eval fcr compare RUN_A RUN_B [RUN_C ...] [--n 200]
        [--no-baseline] [--baseline-scenes N]
    python -m tfgan3d.eval fcr renders RUN/eval-recons [--indices 0 1 2 3] [--out PNG]
  every mode but renders also takes [--data SOURCE] [--out DIR] [--batch-size 8]; all but
  checkpoints, compare and renders take [--checkpoint PREFIX] (default: the newest). Also
  `tfgan3d-eval fcr MODE ...` and `python -m tfgan3d.eval.fcr MODE ...`.

Test scenes: the first n of the test split of the run's data (or --data); from a Scenevox
folder, n scenes drawn with the run's seed from the scenes after the first 95%, as the
original drew its 200. Outputs go to OUT (default RUN/eval-<mode>/), every file atomically;
each mode's module docstring lists its files.

One module per mode: recons.py, checkpoints.py, interpolate.py, noise.py, latent.py,
renders.py, compare.py; common.py (run loading, encoding / decoding, shared arguments),
scores.py (SceneScores, the trivial baseline), cli.py (the command line).
"""
