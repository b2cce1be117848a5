"""ONNX export of the bare inference networks: `tfgan3d-export RUN --out DIR --format onnx`.

Writes `DIR/<name>_<network>/<version>/model.onnx` (the model repository layout of Triton
and of most ONNX servers), float32, converted by tf2onnx from the networks the run's
checkpoint restores. The networks are the bare ones, in their own units (images in [-1, 1],
class probabilities, codes); the serving signatures' pre- and post-processing (uint8, metres,
class ids, padding to a multiple of 2**levels) is not in them: `metadata_props` of each file
says what goes in and out.

Each converted network is checked before anything is written: onnxruntime runs it on a batch
of two examples and its outputs must have the Keras network's shapes (a converter that got a
shape wrong is a refused export, not a shipped model) and agree within `TOLERANCE`; a network
with an op the converter cannot take is refused with the op's name. All networks of a run are
written to temporary folders and moved into place together, or not at all.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import tensorflow as tf

from tfgan3d.io import move_all_into_place

OPSET = 17
TOLERANCE = 1e-3        # max |onnxruntime - Keras| / max(1, max |Keras|) over the outputs

# The networks of each mode's inference path (names of its `export_parts`), and what they take
# and give.
NETWORKS = {
    "pix2pix": {"generator": "RGB [B, H, W, 3] in [-1, 1], H and W multiples of 2**n_down "
                             "-> depth [B, H, W, 1] in [-1, 1] (metres: (y + 1) / 2 * "
                             "max_depth)"},
    "simgan": {"refiner": "synthetic images [B, H, W, C] in [-1, 1] -> refined, same shape"},
    "sim2real": {
        "encoder_real": "real-domain RGB [B, H, W, 3] in [-1, 1], H and W multiples of "
                        "2**levels -> (z_mean, z_log_var); the inference code is z_mean",
        "encoder_sim": "sim-domain RGB -> (z_mean, z_log_var)",
        "depth_decoder": "z -> depth [B, H, W, 1] in [-1, 1] (metres: (y + 1) / 2 * max_depth)",
        "seg_decoder": "z -> segmentation logits [B, H, W, C] (class ids: argmax)",
        "decoder_real": "z -> real-domain RGB in [-1, 1] (sim -> real: encoder_sim then this)",
        "decoder_sim": "z -> sim-domain RGB in [-1, 1] (real -> sim: encoder_real then this)"},
    "fcr_alphagan": {
        "encoder": "one-hot scenes [B, X, H, Z, C] float32 -> (z_mean, ...); the code is z_mean",
        "generator": "codes z [B, *latent] -> class probabilities [B, X, H, Z, C]",
        "refiner": "class probabilities [B, X, H, Z, C] -> refined probabilities"},
}


class OnnxRefused(ValueError):
    """A network that cannot be shipped as ONNX (an op the converter lacks, wrong shapes or
    values after conversion)."""


def _probe_inputs(mode: str, parts: dict, config, rng) -> dict:
    """{network: [arrays]}: a batch of two inputs per network, at a size it takes (the
    training size, non-square where the network allows), decoders fed their encoders' codes."""
    if mode == "pix2pix":
        s = config.crop_size
        return {"generator": [rng.uniform(-1, 1, (2, s, 2 * s, 3)).astype(np.float32)]}
    if mode == "simgan":
        channels = parts["refiner"].input_shape[-1]
        return {"refiner": [rng.uniform(-1, 1, (2, *config.image_size, channels))
                            .astype(np.float32)]}
    if mode == "sim2real":
        s = config.image_size
        image = rng.uniform(-1, 1, (2, s, s, 3)).astype(np.float32)
        z = np.asarray(parts["encoder_real"](image, training=False)[0])
        return {"encoder_real": [image], "encoder_sim": [image], "depth_decoder": [z],
                "seg_decoder": [z], "decoder_real": [z], "decoder_sim": [z]}
    if mode == "fcr_alphagan":
        c = config.num_classes
        scenes = np.eye(c, dtype=np.float32)[rng.integers(0, c, (2, *config.grid))]
        latent = parts["generator"].input_shape[1:]
        z = rng.standard_normal((2, *latent)).astype(np.float32)
        probs = np.asarray(parts["generator"](z, training=False))
        return {"encoder": [scenes], "generator": [z], "refiner": [probs]}
    raise ValueError(f"--format onnx: no ONNX export for mode {mode!r}; expected one of "
                     f"{', '.join(NETWORKS)}")


def _as_list(outputs) -> list:
    if isinstance(outputs, dict):
        return [outputs[k] for k in sorted(outputs)]
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def convert(network, inputs: list, name: str):
    """(onnx ModelProto, max relative difference) of a keras network, checked against Keras
    on `inputs` (arrays with a batch axis). Raises OnnxRefused."""
    import onnx
    import onnxruntime as ort
    import tf2onnx
    # Free sizes where the network takes any (its own input shape says which).
    specs = [tf.TensorSpec([None, *shape[1:]], tf.float32, name=f"input_{i}")
             for i, shape in enumerate(_input_shapes(network))]

    @tf.function
    def fn(*x):
        return _as_list(network(list(x) if len(x) > 1 else x[0], training=False))

    try:
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=OPSET)
    except Exception as err:  # noqa: BLE001 - tf2onnx raises plain Exceptions
        raise OnnxRefused(f"--format onnx: {name}: tf2onnx {tf2onnx.__version__} cannot "
                          f"convert it ({str(err).splitlines()[0][:200]}); export a SavedModel "
                          f"instead") from None
    # tf2onnx leaves an op it cannot convert in the graph under its TensorFlow name (and only
    # logs it); such a model does not load anywhere.
    unknown = sorted({n.op_type for n in _all_nodes(proto.graph)
                      if n.domain in ("", "ai.onnx") and not onnx.defs.has(n.op_type)})
    if unknown:
        raise OnnxRefused(f"--format onnx: {name}: tf2onnx {tf2onnx.__version__} cannot "
                          f"convert the TensorFlow op{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(unknown)}; export a SavedModel instead")
    try:
        session = ort.InferenceSession(proto.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime's own error classes
        raise OnnxRefused(f"--format onnx: {name}: onnxruntime cannot load the converted "
                          f"network ({str(err).splitlines()[0][:200]}); not shipped") from None
    feeds = {i.name: x for i, x in zip(session.get_inputs(), inputs)}
    got = session.run(None, feeds)
    want = [np.asarray(y, np.float32) for y in fn(*[tf.constant(x) for x in inputs])]
    if len(got) != len(want):
        raise OnnxRefused(f"--format onnx: {name}: the converted network has {len(got)} "
                          f"outputs, the Keras network {len(want)}; not shipped")
    worst = 0.0
    for k, (g, w, declared) in enumerate(zip(got, want, session.get_outputs())):
        ranks_agree = len(declared.shape) == w.ndim and all(
            not isinstance(d, int) or d == s for d, s in zip(declared.shape, w.shape))
        if g.shape != w.shape or not ranks_agree:
            raise OnnxRefused(f"--format onnx: {name}: output {k} converts with shape "
                              f"{list(g.shape)} (declared {declared.shape}), the Keras "
                              f"network gives {list(w.shape)}; not shipped")
        worst = max(worst, float(np.max(np.abs(g - w))) / max(1.0, float(np.max(np.abs(w)))))
    if not worst <= TOLERANCE:
        raise OnnxRefused(f"--format onnx: {name}: onnxruntime and Keras differ by {worst:.3g} "
                          f"(relative), more than {TOLERANCE}; not shipped")
    return proto, worst


def _all_nodes(graph):
    """The nodes of an ONNX graph and of its subgraphs (If / Loop bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _all_nodes(sub)


def _input_shapes(network) -> list:
    shapes = network.input_shape
    return shapes if isinstance(shapes, list) else [shapes]


def export_run_onnx(run_dir, out_dir, name: str | None = None, version: int | None = None,
                    checkpoint: str | None = None) -> dict:
    """Converts, checks and writes the run's inference networks; returns {network: path of
    model.onnx}."""
    from tfgan3d import export
    config, model, mode = export.load_trained(run_dir, checkpoint)
    name = name or config.mode
    parts = mode.export_parts(model)
    described = NETWORKS.get(mode.name)
    if described is None:
        raise ValueError(f"--format onnx: no ONNX export for mode {mode.name!r}; expected one "
                         f"of {', '.join(NETWORKS)}")
    probes = _probe_inputs(mode.name, parts, config, np.random.default_rng(0))
    converted = {}
    for network, what in described.items():
        proto, diff = convert(parts[network], probes[network], f"{mode.name} {network}")
        meta = {"tfgan3d.mode": mode.name, "tfgan3d.network": network, "tfgan3d.io": what,
                "tfgan3d.parity_max_rel_diff": f"{diff:.3g}",
                "tfgan3d.config": json.dumps(config.to_dict(), sort_keys=True)}
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        converted[f"{name}_{network}"] = (network, proto, diff)
    return _write_all(out_dir, converted, version)


def _write_all(out_dir, converted: dict, version: int | None) -> dict:
    """Writes each model.onnx at out/<full name>/<version>/, all or none."""
    from tfgan3d import export
    staged, finals = {}, {}
    try:
        for full, (_, proto, _) in converted.items():
            final = export._final_path(out_dir, full, version or export._next_version(out_dir,
                                                                                      full))
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            staged[full], finals[full] = tmp, final
            (tmp / "model.onnx").write_bytes(proto.SerializeToString())
        move_all_into_place(staged, finals)
    finally:
        for tmp in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)
    for full, (network, _, diff) in converted.items():
        print(f"{full}: onnxruntime vs Keras max relative difference {diff:.3g}")
    return {network: finals[full] / "model.onnx"
            for full, (network, _, _) in converted.items()}
