"""`tfgan3d-eval PROGRAM [args]` (or `python -m tfgan3d.eval PROGRAM`): the evaluation programs.

  pix2pix   metrics, .npy predictions and grids of a pix2pix run on a test set
  domains   the seed's 2x2 virtual / real-like train-test experiment
  report    one HTML page from experiment and run folders (tables, verdicts, pictures)
  render    VTK renders of voxel scenes in a .npy file
  fcr       fcr_alphagan: recons | checkpoints | interpolate | noise | latent | compare
  sim2real  depth / segmentation metrics of a sim2real run against sim-only and real-supervised baselines
  sim2real_curve  a sim2real run's twin VAE at each stage-2 checkpoint, sim vs real-like test, beside the prior
  sim2real_finding  Sim2Real's question over seeds: twin VAE vs sim-only (same networks), budget check
  simgan    SimGAN section 3.1: gaze estimation on synthetic vs refined eyes, pupil shift, realism
  eye_gap   the built-in eyes' domain gap: estimators on synthetic, real-like (oracle), content-only
"""
import importlib
import sys

import tfgan3d
from tfgan3d import cli

PROGRAMS = {
    "pix2pix": "tfgan3d.eval.pix2pix_eval",
    "domains": "tfgan3d.eval.pix2pix_domains",
    "report": "tfgan3d.eval.report",
    "render": "tfgan3d.eval.render",
    "fcr": "tfgan3d.eval.fcr.cli",
    "sim2real": "tfgan3d.eval.sim2real_eval",
    "sim2real_curve": "tfgan3d.eval.sim2real_curve",
    "sim2real_finding": "tfgan3d.eval.sim2real_finding",
    "simgan": "tfgan3d.eval.simgan_eval",
    "eye_gap": "tfgan3d.eval.eye_gap",
}


# The mode whose speed settings a program's process takes (see tfgan3d.prefer_onednn_for).
PROGRAM_MODES = {"pix2pix": "pix2pix", "domains": "pix2pix", "fcr": "fcr_alphagan",
                 "sim2real": "sim2real", "sim2real_curve": "sim2real",
                 "sim2real_finding": "sim2real", "simgan": "simgan", "eye_gap": "simgan"}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    if argv[0] not in PROGRAMS:
        sys.exit(f"error: unknown program {argv[0]!r}; valid: {', '.join(PROGRAMS)}")
    if argv[0] in PROGRAM_MODES:
        tfgan3d.prefer_onednn_for(PROGRAM_MODES[argv[0]])
    program = importlib.import_module(PROGRAMS[argv[0]])
    # One `error:` line and status 1 for a user error; --debug for the traceback.
    return cli.run(program.main, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
