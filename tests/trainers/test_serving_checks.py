"""Serving signatures check what they get: every bad request to an exported model (wrong
rank, channels, grid, latent shape, labels, values) is an InvalidArgumentError naming what was
expected, and the serving process stays alive (a rank-3 image used to abort it in a oneDNN
convolution). The models are the tiny presets' networks after two training steps (the
session's shared export): the checks do not depend on the weights. Multi-part exports are all
or nothing."""
import os
import subprocess
import sys

import pytest
from run_helpers import serving_script

from tfgan3d import config as config_lib
from tfgan3d import export, registry


TINY = {
    "pix2pix": {"max_depth": 10.0},  # a run records the resolved value (dataset.json or 10)
    "simgan": {"image_size": (35, 55)},
    "sim2real": {"num_classes": 3},
    "fcr_alphagan": {},
}


def tiny_model(mode):
    mode_def = registry.get_mode(mode)
    config = config_lib.resolve_config(mode_def.config, mode, {"preset": "tiny", **TINY[mode]})
    return config, mode_def.build_model(config), mode_def


@pytest.fixture(scope="module")
def exported(shared_tiny):
    """{model: SavedModel folder}: the session's shared export of every mode's tiny run
    (tests/shared_tiny.py), as `tfgan3d-export` writes it."""
    names = ("pix2pix", "simgan", "sim2real", "fcr_alphagan_encoder",
             "fcr_alphagan_generator", "fcr_alphagan_autoencoder")
    return {name: str(shared_tiny.model(name)) for name in names}


# (model, signature input, bad request as numpy code, words the error must hold), then a
# good request; all in one serving process.
REQUESTS = [
    ("pix2pix", "rgb", "np.zeros([32, 32, 3], np.uint8)", "[?,?,?,3]"),
    ("pix2pix", "rgb", "np.zeros([1, 32, 32, 1], np.uint8)", "[?,?,?,3]"),
    ("pix2pix", "rgb", "np.zeros([1, 0, 32, 3], np.uint8)", "positive height and width"),
    ("sim2real", "rgb", "np.zeros([16, 16, 3], np.uint8)", "[?,?,?,3]"),
    ("sim2real", "rgb", "np.zeros([1, 0, 16, 3], np.uint8)", "positive height and width"),
    ("simgan", "synthetic", "np.zeros([35, 55, 1], np.float32)", "[?,?,?,1]"),
    ("simgan", "synthetic", "np.full([1, 35, 55, 1], 3.0, np.float32)", "[-1.0, 1.0]"),
    ("simgan", "synthetic", "np.full([1, 35, 55, 1], np.nan, np.float32)", "finite"),
    ("fcr_alphagan_encoder", "voxels", "np.zeros([1, 8, 8, 8], np.int32)", "voxels"),
    ("fcr_alphagan_encoder", "voxels", "np.zeros(GRID, np.int32)", "voxels"),
    ("fcr_alphagan_encoder", "voxels", "np.full([1, *GRID], 20, np.int32)", "[0, 11]"),
    ("fcr_alphagan_autoencoder", "voxels", "np.full([1, *GRID], -1, np.int32)", "[0, 11]"),
    ("fcr_alphagan_autoencoder", "voxels", "np.zeros([1, GRID[0], GRID[1], 2 * GRID[2]], np.int32)",
     "voxels"),
    ("fcr_alphagan_generator", "z", "np.zeros([1, 3], np.float32)", "z"),
    ("fcr_alphagan_generator", "z", "np.full([1, *LATENT], np.inf, np.float32)", "finite"),
    ("fcr_alphagan_generator", "z", "np.full([1, *LATENT], 1e30, np.float32)",
     "[-1000.0, 1000.0]"),
]

GOOD = {"pix2pix": ("rgb", "np.zeros([1, 32, 32, 3], np.uint8)"),
        "sim2real": ("rgb", "np.zeros([1, 16, 16, 3], np.uint8)"),
        "simgan": ("synthetic", "np.zeros([1, 35, 55, 1], np.float32)"),
        "fcr_alphagan_encoder": ("voxels", "np.zeros([1, *GRID], np.int32)"),
        "fcr_alphagan_autoencoder": ("voxels", "np.zeros([1, *GRID], np.int32)"),
        "fcr_alphagan_generator": ("z", "np.zeros([1, *LATENT], np.float32)")}


# Any size, an empty batch and 1-pixel images: (model, signature, input, numpy dtype, channels).
# Every mode gives outputs of the input's size, and empty outputs for a batch of 0 (simgan's
# refiner used to fail in MirrorPad on both, the others only on sizes that were not multiples).
EDGES = [("pix2pix", "serving_default", "rgb", "np.uint8", 3),
         ("sim2real", "serving_default", "rgb", "np.uint8", 3),
         ("sim2real", "sim_domain", "rgb", "np.uint8", 3),
         ("sim2real", "real_to_sim", "rgb", "np.uint8", 3),
         ("simgan", "serving_default", "synthetic", "np.float32", 1),
         ("simgan", "refine_uint8", "image", "np.uint8", 1)]
EDGE_SIZES = [(2, 37, 23), (0, 37, 23), (1, 1, 1)]
FCR_EMPTY = [("fcr_alphagan_generator", "generate_uint8", "z", "np.zeros([0, *LATENT], np.float32)"),
             ("fcr_alphagan_encoder", "serving_default", "voxels", "np.zeros([0, *GRID], np.int32)"),
             ("fcr_alphagan_autoencoder", "autoencode_uint8", "voxels",
              "np.zeros([0, *GRID], np.int32)")]
# Encoded images: bytes that are no image, and two sizes in one request.
ENCODED_BAD = [("pix2pix", "[b'not an image']", "image_bytes: expected PNG, JPEG"),
               ("sim2real", "[png(np.zeros([5, 5, 3], np.uint8)), png(np.zeros([6, 5, 3], "
                            "np.uint8))]", "images of one size")]


def test_bad_requests_are_errors_and_the_server_stays_alive(exported):
    config, model, _ = tiny_model("fcr_alphagan")
    lines = [f"GRID = {list(config.grid)}", f"LATENT = {list(model.latent_shape)}",
             f"PATHS = {exported!r}",
             "sigs = {k: tf.saved_model.load(v).signatures for k, v in PATHS.items()}",
             "fns = {k: v['serving_default'] for k, v in sigs.items()}"]
    for i, (name, arg, request, words) in enumerate(REQUESTS):
        lines += [
            "try:",
            f"    fns[{name!r}](**{{{arg!r}: tf.constant({request})}})",
            f"    print('ACCEPTED {i}')",
            "except tf.errors.InvalidArgumentError as e:",
            f"    print('ERROR {i}', {words!r} in str(e))"]
    for name, (arg, request) in GOOD.items():
        lines.append(f"print('GOOD', {name!r}, sorted(fns[{name!r}](**{{{arg!r}: "
                     f"tf.constant({request})}})))")
    for name, signature, arg, dtype, channels in EDGES:
        for shape in EDGE_SIZES:
            lines.append(f"out = sigs[{name!r}][{signature!r}](**{{{arg!r}: tf.constant("
                         f"np.zeros({[*shape, channels]}, {dtype}))}})")
            lines.append(f"print('EDGE', {name!r}, {signature!r}, {list(shape)}, "
                         f"sorted((k, v.shape[:3].as_list()) for k, v in out.items()))")
    for name, signature, arg, request in FCR_EMPTY:
        lines.append(f"out = sigs[{name!r}][{signature!r}](**{{{arg!r}: tf.constant({request})}})")
        lines.append(f"print('EMPTY', {name!r}, {signature!r}, "
                     f"sorted((k, v.shape[0]) for k, v in out.items()))")
    lines += ["import io", "from PIL import Image",
              "def png(a):", "    b = io.BytesIO(); Image.fromarray(a).save(b, 'PNG')",
              "    return b.getvalue()"]
    for i, (name, request, words) in enumerate(ENCODED_BAD):
        lines += [
            "try:",
            f"    sigs[{name!r}]['serving_encoded'](image_bytes=tf.constant({request}))",
            f"    print('ACCEPTED encoded {i}')",
            "except tf.errors.InvalidArgumentError as e:",
            f"    print('ERROR encoded {i}', {words!r} in str(e))"]
    script = serving_script("\n".join(lines) + "\n")
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, f"serving process died ({done.returncode}): {done.stderr[-1500:]}"
    out = done.stdout.splitlines()
    for i, request in enumerate(REQUESTS):
        assert f"ERROR {i} True" in out, (request, [l for l in out if f" {i}" in l])
    assert sum(l.startswith("GOOD") for l in out) == len(GOOD), out
    edges = [l for l in out if l.startswith("EDGE")]
    assert len(edges) == len(EDGES) * len(EDGE_SIZES), (edges, done.stderr[-1500:])
    for line in edges:
        shape = eval(line[line.index("["):line.index("]") + 1])
        for _, out_shape in eval(line[line.index("] ") + 2:]):
            assert out_shape == shape, line
    empties = [l for l in out if l.startswith("EMPTY")]
    assert len(empties) == len(FCR_EMPTY), empties
    assert all(eval(l[l.index("[("):]) and all(n == 0 for _, n in eval(l[l.index("[("):]))
               for l in empties), empties
    for i, bad in enumerate(ENCODED_BAD):
        assert f"ERROR encoded {i} True" in out, (bad, [l for l in out if "encoded" in l])


def test_multi_part_export_is_all_or_nothing(tmp_path, monkeypatch):
    config, model, module = tiny_model("fcr_alphagan")
    models = {f"m_{p}": e for p, e in module.serving(model, config).items()}
    tracked = list(module.export_parts(model).values())
    real = export._write_archive
    calls = []

    def fail_on_third(endpoints, tracked, folder):
        calls.append(folder)
        if len(calls) == 3:
            raise OSError(f"{folder}: disk full")
        return real(endpoints, tracked, folder)

    monkeypatch.setattr(export, "_write_archive", fail_on_third)
    with pytest.raises(OSError, match="disk full"):
        export.export_together(models, tracked, tmp_path, {k: 1 for k in models})
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert not [p for p in left if p.count(os.sep) >= 1], left   # no version folder, no temp
