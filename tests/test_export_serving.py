"""The serving export deploys as it is, checked without a TF Serving binary (none can be
installed here): each mode's tiny run (2 steps) is exported with --warmup into one folder; a
stand-in server (tests/tf_serving_stand_in.py: a process that cannot import tfgan3d) reads its
models.config as a ModelServerConfig, loads every model with plain TensorFlow, replays every
warm-up record, and serves TF Serving's REST and gRPC APIs by their documented rules. The
client (tfgan3d.tools.serve_client) is run against it, its REST path in a process where
TensorFlow and tfgan3d's model code cannot be imported, and what it writes is compared with
the mode's `predict` on the restored model. ONNX: each mode's inference networks converted and
compared with Keras in onnxruntime."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("tensorflow_serving", reason="tensorflow-serving-api is not installed "
                    "(pip install --no-deps -r requirements-serving.txt)")

from tfgan3d import export, warmup  # noqa: E402
from tfgan3d.io import from_uint8, save_npy, save_png  # noqa: E402
from tfgan3d.tools import serve_client  # noqa: E402
from shared_tiny import WARMUP  # noqa: E402

MODES = ("pix2pix", "simgan", "sim2real", "fcr_alphagan")
STAND_IN = Path(__file__).parent / "tf_serving_stand_in.py"


def _rng_image(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_tiny):
    """{"runs": {mode: run folder}, "out": export folder, "report": the stand-in's report,
    "files": {model: input file}}; the stand-in serves until the module ends. The runs and
    their export (--warmup 2, one folder) are the session's shared ones (tests/shared_tiny.py),
    which test_predict reads too."""
    root = tmp_path_factory.mktemp("serving")
    runs = {mode: shared_tiny.run(mode) for mode in MODES}
    out = shared_tiny.export()
    files = _input_files(root / "inputs")
    report_path, log = root / "report.json", open(root / "stand_in.log", "wb")
    proc = subprocess.Popen([sys.executable, str(STAND_IN), str(out / "models.config"),
                             str(report_path)], stdin=subprocess.PIPE, stdout=log, stderr=log,
                            env={**os.environ, "PYTHONPATH": ""})
    deadline = time.time() + 600
    while not report_path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    if not report_path.exists():
        proc.kill()
        pytest.fail(f"the stand-in server did not start: "
                    f"{(root / 'stand_in.log').read_text()[-3000:]}")
    yield {"runs": runs, "out": out, "root": root, "files": files,
           "report": json.loads(report_path.read_text())}
    proc.stdin.close()
    proc.wait(timeout=60)
    log.close()


def _input_files(folder):
    """Inputs at sizes the networks do not take as they are (not multiples of 2**n_down)."""
    rgb = _rng_image((37, 45, 3), 0)
    scenes = np.random.default_rng(1).integers(0, 12, (2, 16, 16, 16)).astype(np.int32)
    z = np.random.default_rng(2).standard_normal((2, 1, 1, 1, 4)).astype(np.float32)
    return {"pix2pix": save_png(folder / "photo.png", rgb),
            "sim2real": save_png(folder / "room.png", rgb[:20, :27]),
            "simgan": save_png(folder / "eye.png", _rng_image((33, 50), 3)),
            "fcr_alphagan_autoencoder": save_npy(folder / "scenes.npy", scenes),
            "fcr_alphagan_encoder": save_npy(folder / "scenes.npy", scenes),
            "fcr_alphagan_generator": save_npy(folder / "z.npy", z)}


def _cases(report):
    """(model, signature, columnar) for every signature that takes inputs."""
    cases = []
    for model, info in sorted(report["models"].items()):
        for i, signature in enumerate(info["signatures"]):
            if signature != "tfgan3d_info" and not signature.startswith("__"):
                cases.append((model, signature, i % 2 == 1))
    return cases


def _read_outputs(folder, stem):
    return {p.stem[len(stem) + 1:]: np.load(p) for p in Path(folder).glob(f"{stem}_*.npy")}


def _references(served):
    """{(model, signature): {output: array}} from the restored model in this process: the
    mode's `predict` (and its uint8 and generator endpoints' in-process functions)."""
    refs = {}
    files = served["files"]
    for mode in MODES:
        config, model, mode_def = export.load_trained(served["runs"][mode])
        if mode == "sim2real":      # the networks an export tracks: every one of the scheme's
            assert set(mode_def.export_parts(model)) == {
                "encoder_sim", "encoder_real", "decoder_sim", "decoder_real", "depth_decoder",
                "seg_decoder"}
        if mode in ("pix2pix", "sim2real", "simgan"):
            pixels = np.asarray(serve_client._read_image(files[mode], 1 if mode == "simgan"
                                                         else 3))[None]
            out = {k: np.asarray(v) for k, v in
                   mode_def.predict(model, tf.constant(from_uint8(pixels)), config).items()}
        if mode == "pix2pix":
            refs[("pix2pix", "serving_default")] = {"depth": out["depth"][0]}
            refs[("pix2pix", "serving_encoded")] = refs[("pix2pix", "serving_default")]
        elif mode == "sim2real":
            refs[("sim2real", "serving_default")] = {"depth": out["depth"][0],
                                                     "segmentation": out["segmentation"][0]}
            refs[("sim2real", "serving_encoded")] = refs[("sim2real", "serving_default")]
        elif mode == "simgan":
            refs[("simgan", "serving_default")] = {"refined": out["refined"][0]}
            refs[("simgan", "refine_uint8")] = {"refined": np.clip(np.round(
                (out["refined"][0] + 1) * 127.5), 0, 255).astype(np.uint8)}
            # The encoded endpoint answers as the uint8 one (PNG in, PNG-ready out).
            refs[("simgan", "serving_encoded")] = refs[("simgan", "refine_uint8")]
        else:
            scenes = np.load(files["fcr_alphagan_autoencoder"])
            out = {k: np.asarray(v) for k, v in
                   mode_def.predict(model, tf.constant(scenes), config).items()}
            refs[("fcr_alphagan_autoencoder", "serving_default")] = out
            refs[("fcr_alphagan_autoencoder", "autoencode_uint8")] = {
                k: out[k].astype(np.uint8) for k in ("reconstruction", "refined")}
            refs[("fcr_alphagan_encoder", "serving_default")] = {"z": np.asarray(model.encode(
                tf.one_hot(scenes, config.num_classes)))}
            z = tf.constant(np.load(files["fcr_alphagan_generator"]))
            generator = mode_def.serving(model, config)["generator"]
            for signature, (fn, _) in generator.items():
                if signature != "tfgan3d_info":
                    refs[("fcr_alphagan_generator", signature)] = {
                        k: np.asarray(v) for k, v in fn(z).items()}
    return refs


def _compare(got, want, what):
    assert sorted(got) == sorted(want), what
    worst = 0.0
    for name, value in want.items():
        assert got[name].shape == value.shape, (what, name, got[name].shape, value.shape)
        assert got[name].dtype == value.dtype, (what, name, got[name].dtype, value.dtype)
        if value.dtype.kind == "f":
            np.testing.assert_allclose(got[name], value, atol=1e-4, rtol=1e-4,
                                       err_msg=f"{what} {name}")
            worst = max(worst, float(np.max(np.abs(got[name] - value))))
        else:                      # class ids, uint8 pixels: argmax / rounding may tip
            assert np.mean(got[name] != value) <= 0.001, (what, name)
    return worst


# The REST client run where TensorFlow, keras, gRPC and tfgan3d's model code cannot be
# imported (tfgan3d.io and tfgan3d.cli write files and errors; both are TensorFlow-free).
REST_CLIENT = textwrap.dedent("""
    import importlib.abc, json, sys
    ALLOWED = {"tfgan3d", "tfgan3d.io", "tfgan3d.cli", "tfgan3d.tools",
               "tfgan3d.tools.serve_client"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in ("tensorflow", "keras", "grpc", "tensorflow_serving") or (
                    top == "tfgan3d" and name not in ALLOWED):
                raise ImportError(f"the REST client must not need {name}")
    sys.meta_path.insert(0, Block())
    from tfgan3d.tools import serve_client
    for argv in json.loads(sys.argv[1]):
        assert serve_client.main(argv) == 0, argv
    assert not any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules)
    print(sorted(m for m in sys.modules if m.startswith("tfgan3d")))
""")


def _client_argv(where, address, case, files, out):
    model, signature, columnar = case
    argv = [f"--{where}", address, "--model", model, "--signature", signature,
            "--input", str(files[model] if model in files else files[model.split("_")[0]]),
            "--out", str(out / f"{model}-{signature}")]
    return argv + (["--columnar"] if columnar and where == "url" else [])


def test_models_config_and_warmup_records(served):
    report, out = served["report"], served["out"]
    # The stand-in parsed models.config as a ModelServerConfig and loaded each base path.
    assert sorted(report["models"]) == ["fcr_alphagan_autoencoder", "fcr_alphagan_encoder",
                                        "fcr_alphagan_generator", "pix2pix", "sim2real",
                                        "simgan"]
    for name, info in report["models"].items():
        assert Path(info["folder"]) == out / name / "1"
        with_inputs = [s for s in info["signatures"]
                       if s != "tfgan3d_info" and not s.startswith("__")]
        # Every record parsed and ran through its signature (the stand-in stops otherwise).
        assert info["warmup_records"] == WARMUP * len(with_inputs), name
        assert len(warmup.read_records(out / name / "1")) == info["warmup_records"]
    # --base-path: the paths a container sees, still a valid ModelServerConfig.
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2
    text = export.models_config_text(out, "/models/")
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    assert {c.name: c.base_path for c in parsed.model_config_list.config}["pix2pix"] == \
        "/models/pix2pix"


def test_clients_decoded_as_tf_serving_give_predict(served):
    """REST (rows and columns, b64 for encoded images; no TensorFlow in the client) and gRPC
    requests of every signature, answered by the stand-in, equal `predict` in process; the
    encoded-image endpoint equals the tensor endpoint; REST equals gRPC everywhere."""
    report, files, root = served["report"], served["files"], served["root"]
    cases = _cases(report)
    rest_argv = [_client_argv("url", report["rest"], c, files, root / "rest") for c in cases]
    done = subprocess.run([sys.executable, "-c", REST_CLIENT, json.dumps(rest_argv)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for case in cases:
        assert serve_client.main(_client_argv("grpc", report["grpc"], case, files,
                                              root / "grpc")) == 0
    refs = _references(served)
    worst = {}
    for model, signature, _ in cases:
        stem = Path(files[model] if model in files else files[model.split("_")[0]]).stem
        rest = _read_outputs(root / "rest" / f"{model}-{signature}", stem)
        grpc_out = _read_outputs(root / "grpc" / f"{model}-{signature}", stem)
        assert rest and sorted(rest) == sorted(grpc_out), (model, signature)
        for name in rest:
            np.testing.assert_array_equal(rest[name], grpc_out[name], err_msg=name)
        if (model, signature) in refs:
            worst[(model, signature)] = _compare(rest, refs[(model, signature)],
                                                 f"{model} {signature}")
    # Every mode's default signature was compared with predict, and the encoded endpoints.
    for model in report["models"]:
        assert (model, "serving_default") in worst, model
    for model in ("pix2pix", "sim2real"):
        if "serving_encoded" in report["models"][model]["signatures"]:
            assert (model, "serving_encoded") in worst
    print("max |served - predict|:", {f"{m} {s}": f"{w:.2g}" for (m, s), w in worst.items()})
    # The input's size (37 x 45: mirrored out in the graph, cropped back).
    depth = np.load(root / "rest" / "pix2pix-serving_default" / "photo_depth.npy")
    assert depth.shape == (37, 45, 1)
    index = json.loads((root / "rest" / "pix2pix-serving_default" / "predictions.json")
                       .read_text())
    assert index["files"][0]["input"] == str(files["pix2pix"])


def test_client_errors_are_one_line(served, tmp_path, capsys):
    files, report = served["files"], served["report"]
    argv = ["--model", "pix2pix", "--input", str(files["pix2pix"]), "--out", str(tmp_path)]
    assert serve_client.main(["--url", "http://127.0.0.1:9", *argv]) == 1
    assert serve_client.main(["--url", report["rest"], *argv, "--signature", "nope"]) == 1
    assert serve_client.main(["--url", report["rest"], "--model", "simgan", "--input",
                              str(files["fcr_alphagan_generator"]), "--out",
                              str(tmp_path)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines), lines
    assert "could not reach it" in lines[0] and "the model has" in lines[1]
    assert "z.npy: input synthetic takes images" in lines[2]


def test_warmup_from_a_file_the_model_refuses(served, tmp_path, capsys):
    """--warmup-from a scene of another grid: one error line naming the file, and none of
    fcr's three models is written."""
    bad = save_npy(tmp_path / "small.npy", np.zeros((8, 8, 8), np.int32))
    out = tmp_path / "export"
    assert export.main([str(served["runs"]["fcr_alphagan"]), "--out", str(out),
                        "--warmup-from", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: warm-up scene ") and "small.npy" in err[0]
    assert "expects voxels [16, 16, 16], found [8, 8, 8]" in err[0]
    assert not list(out.rglob("saved_model.pb")) and not (out / "models.config").exists()


def test_onnx_parity_per_mode(served, tmp_path):
    """Each mode's inference networks as ONNX files; each file, run by onnxruntime on inputs
    the export did not check with, equals the Keras network of the restored run."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed "
                              "(requirements-dev.txt)")
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed (requirements-dev.txt)")
    from tfgan3d import onnx_export
    # Converted as a user converts them, in a fresh process (`tfgan3d-export --format onnx`
    # does the same); one process for the four runs.
    script = ("import json, sys\nfrom tfgan3d import onnx_export\n"
              "print(json.dumps({m: {k: str(v) for k, v in onnx_export.export_run_onnx(r, "
              "sys.argv[2]).items()} for m, r in json.loads(sys.argv[1]).items()}))")
    done = subprocess.run([sys.executable, "-c", script,
                           json.dumps({m: str(served["runs"][m]) for m in MODES}), str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    converted = json.loads(done.stdout.strip().splitlines()[-1])
    diffs = {}
    for mode in MODES:
        paths = {k: Path(v) for k, v in converted[mode].items()}
        assert sorted(paths) == sorted(onnx_export.NETWORKS[mode])
        config, model, mode_def = export.load_trained(served["runs"][mode])
        parts = mode_def.export_parts(model)
        probes = onnx_export._probe_inputs(mode, parts, config, np.random.default_rng(7))
        for network, path in paths.items():
            assert path == tmp_path / f"{mode}_{network}" / "1" / "model.onnx"
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            meta = session.get_modelmeta().custom_metadata_map
            assert meta["tfgan3d.mode"] == mode and meta["tfgan3d.network"] == network
            x = probes[network][0]
            if mode == "pix2pix":             # another size than the export's check
                x = np.concatenate([x, x[:, ::-1]], axis=1)
            got = session.run(None, {session.get_inputs()[0].name: x})
            want = onnx_export._as_list(parts[network](x, training=False))
            assert len(got) == len(want)
            for g, w in zip(got, want):
                w = np.asarray(w)
                assert g.shape == w.shape, (mode, network)
                diffs[f"{mode} {network}"] = float(np.max(np.abs(g - w)))
                np.testing.assert_allclose(g, w, atol=1e-4 * max(1, np.abs(w).max()),
                                           err_msg=f"{mode} {network}")
    print("onnxruntime vs Keras, max abs difference:", diffs)


def _small_network(fn, shape=(6, 5, 2)):
    import keras
    x = keras.Input(shape)
    return keras.Model(x, keras.layers.Lambda(fn)(x))


def test_onnx_refuses_an_op_the_converter_lacks():
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed (requirements-dev.txt)")
    from tfgan3d import onnx_export
    x = np.random.default_rng(0).uniform(0.5, 2, (2, 6, 5, 2)).astype(np.float32)
    with pytest.raises(onnx_export.OnnxRefused, match=r"TensorFlow op Lgamma; export a "
                                                      r"SavedModel"):
        onnx_export.convert(_small_network(tf.math.lgamma), [x], "lgamma net")
    _, diff = onnx_export.convert(_small_network(tf.math.exp), [x], "exp net")
    assert diff <= onnx_export.TOLERANCE


def test_onnx_refuses_a_conversion_with_other_shapes(monkeypatch):
    """A converter that drops a row (as tf2onnx does for some 3D transposed convolutions) is
    caught by the shape check, not shipped."""
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed (requirements-dev.txt)")
    import tf2onnx
    from tfgan3d import onnx_export
    x = np.random.default_rng(0).uniform(-1, 1, (2, 6, 5, 2)).astype(np.float32)
    real = tf2onnx.convert.from_function

    def off_by_one(fn, input_signature, opset):
        return real(tf.function(lambda v: [tf.math.exp(v)[:, :-1]]),
                    input_signature=input_signature, opset=opset)
    monkeypatch.setattr(tf2onnx.convert, "from_function", off_by_one)
    with pytest.raises(onnx_export.OnnxRefused, match=r"shape \[2, 5, 5, 2\].*gives "
                                                      r"\[2, 6, 5, 2\]; not shipped"):
        onnx_export.convert(_small_network(tf.math.exp), [x], "exp net")


def test_models_config_keeps_one_the_user_wrote(tmp_path, capsys):
    """models.config lists the folders holding a SavedModel version; a models.config written
    by hand is kept and the list goes beside it."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2
    for name in ("b_model", "a_model"):
        (tmp_path / name / "3").mkdir(parents=True)
        (tmp_path / name / "3" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "empty" / "1").mkdir(parents=True)          # no saved_model.pb: not served
    (tmp_path / ".a_model.tmp-1").mkdir()                    # an export in progress
    path = export.write_models_config(tmp_path)
    parsed = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    assert [(c.name, c.base_path) for c in parsed.model_config_list.config] == [
        ("a_model", str(tmp_path.resolve() / "a_model")),
        ("b_model", str(tmp_path.resolve() / "b_model"))]
    mine = "model_config_list { config { name: 'x' base_path: '/srv/x' } }\n"
    path.write_text(mine)
    assert export.write_models_config(tmp_path, "/models") == tmp_path / "models.config.tfgan3d"
    assert path.read_text() == mine
    assert "was not written by tfgan3d-export" in capsys.readouterr().err
    assert '"/models/b_model"' in (tmp_path / "models.config.tfgan3d").read_text()
