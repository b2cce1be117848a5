"""A stand-in for TF Serving, for the tests (no TF Serving binary can be installed here).

    python tests/tf_serving_stand_in.py MODELS_CONFIG REPORT_JSON

Runs where tfgan3d cannot be imported (a meta path finder refuses it), as on a serving host,
and does what tensorflow_model_server does with an export folder:
  1. parses MODELS_CONFIG as a ModelServerConfig text proto and loads the newest version under
     each model's base_path with plain TensorFlow;
  2. replays every warm-up record of each version (assets.extra/tf_serving_warmup_requests:
     PredictionLog protos) through its signature, as TF Serving does at load;
  3. serves the REST API (POST /v1/models/NAME[/versions/V]:predict, GET .../metadata) with
     TF Serving's JSON rules, written here from its documentation (row `instances` and
     columnar `inputs`, named or bare values, {"b64": ...} for strings; `predictions` /
     `outputs` in the reply, bare when the signature has one output), and the gRPC API
     (PredictionService.Predict and GetModelMetadata; request tensors read with
     tf.make_ndarray, reply tensors in the typed value fields, as TF Serving fills them).
It writes REPORT_JSON (ports, models, warm-up counts) once serving, and stops when its standard
input closes. The JSON and proto code is independent of tfgan3d.tools.serve_client: the tests
check the client against it.
"""
import importlib.abc
import sys


class _NoTfgan3d(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tfgan3d":
            raise ImportError("tfgan3d must not be needed to serve the model")


sys.meta_path.insert(0, _NoTfgan3d())

import base64  # noqa: E402
import http.server  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
from concurrent import futures  # noqa: E402
from pathlib import Path  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf import json_format, text_format  # noqa: E402
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import (get_model_metadata_pb2, predict_pb2,  # noqa: E402
                                     prediction_log_pb2, prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2  # noqa: E402


class RequestError(ValueError):
    """What TF Serving answers with INVALID_ARGUMENT (HTTP 400)."""


class Model:
    def __init__(self, name, base_path):
        versions = sorted(int(p.name) for p in Path(base_path).iterdir() if p.name.isdigit())
        if not versions:
            raise RequestError(f"{base_path}: no version folder")
        self.name, self.version = name, versions[-1]
        self.folder = Path(base_path) / str(self.version)
        self.loaded = tf.saved_model.load(str(self.folder))
        saved = saved_model_pb2.SavedModel.FromString((self.folder / "saved_model.pb")
                                                      .read_bytes())
        self.defs = saved.meta_graphs[0].signature_def

    def signature(self, name):
        name = name or "serving_default"
        if name not in self.defs:
            raise RequestError(f"Serving signature name: \"{name}\" not found in signature def")
        return name, self.defs[name]

    def run(self, signature_name, inputs):
        name, sig = self.signature(signature_name)
        if set(inputs) != set(sig.inputs):
            raise RequestError(f"input names {sorted(inputs)} do not match the signature's "
                               f"{sorted(sig.inputs)}")
        fn = self.loaded.signatures[name]
        outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


def load_models(config_path):
    config = text_format.Parse(Path(config_path).read_text(),
                               model_server_config_pb2.ModelServerConfig())
    models = {}
    for entry in config.model_config_list.config:
        if entry.model_platform != "tensorflow":
            raise RequestError(f"{entry.name}: platform {entry.model_platform!r}")
        models[entry.name] = Model(entry.name, entry.base_path)
    return models


# ----------------------------------------------------------------------------- REST rules

def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"}


def _tensor_from_json(value, dtype):
    """A JSON value as a tensor of the signature's dtype (strings: text or {"b64"})."""
    if dtype == tf.string:
        def leaf(v):
            if isinstance(v, list):
                return [leaf(x) for x in v]
            if _is_b64(v):
                return base64.b64decode(v["b64"], validate=True)
            if isinstance(v, str):
                return v.encode()
            raise RequestError(f"expected a string or {{\"b64\": ...}}, got {v!r}")
        return np.array(leaf(value), dtype=object)
    array = np.array(value)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise RequestError("expected a rectangular array of numbers")
    if dtype.is_integer:
        if array.dtype.kind == "f" and not np.all(array == np.round(array)):
            raise RequestError(f"expected integers for {dtype.name}")
        if array.size and (array.min() < dtype.min or array.max() > dtype.max):
            raise RequestError(f"value out of range for {dtype.name}")
    return array.astype(dtype.as_numpy_dtype)


def inputs_from_json(body, sig_def):
    """{input name: array} of a REST predict body, by TF Serving's documented rules."""
    dtypes = {k: tf.as_dtype(v.dtype) for k, v in sig_def.inputs.items()}
    if ("instances" in body) == ("inputs" in body):
        raise RequestError("Missing 'inputs' or 'instances' key (exactly one is required)")
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list):
            raise RequestError("'instances' must be a list")
        if rows and isinstance(rows[0], dict) and not _is_b64(rows[0]):
            names = set(rows[0])
            if any(not isinstance(r, dict) or set(r) != names for r in rows):
                raise RequestError("every instance must name the same inputs")
            if names != set(dtypes):
                raise RequestError(f"instances name {sorted(names)}, the signature takes "
                                   f"{sorted(dtypes)}")
            return {k: _tensor_from_json([r[k] for r in rows], dtypes[k]) for k in names}
        if len(dtypes) != 1:
            raise RequestError("bare instances need a signature with one input")
        (name, dtype), = dtypes.items()
        return {name: _tensor_from_json(rows, dtype)}
    value = body["inputs"]
    if isinstance(value, dict) and not _is_b64(value):
        if set(value) != set(dtypes):
            raise RequestError(f"inputs name {sorted(value)}, the signature takes "
                               f"{sorted(dtypes)}")
        return {k: _tensor_from_json(v, dtypes[k]) for k, v in value.items()}
    if len(dtypes) != 1:
        raise RequestError("a bare 'inputs' value needs a signature with one input")
    (name, dtype), = dtypes.items()
    return {name: _tensor_from_json(value, dtype)}


def _json_from_array(name, array):
    if array.dtype == object:
        def leaf(v):
            if isinstance(v, list):
                return [leaf(x) for x in v]
            if name.endswith("_bytes"):
                return {"b64": base64.b64encode(v).decode()}
            return v.decode("utf-8")
        return leaf(array.tolist())
    return array.tolist()


def json_from_outputs(outputs, row_format):
    """The reply body: `predictions` (rows) or `outputs` (columnar), bare for one output."""
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": _json_from_array(names[0], outputs[names[0]])}
        return {"outputs": {k: _json_from_array(k, outputs[k]) for k in names}}
    sizes = {outputs[k].shape[0] if outputs[k].ndim else None for k in names}
    if len(sizes) != 1 or None in sizes:
        raise RequestError("row format needs outputs with one batch size")
    values = {k: _json_from_array(k, outputs[k]) for k in names}
    n = sizes.pop()
    if len(names) == 1:
        return {"predictions": values[names[0]]}
    return {"predictions": [{k: values[k][i] for k in names} for i in range(n)]}


_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(:predict|/metadata)$")


def make_http_handler(models):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _model(self, verb):
            match = _PATH.match(self.path)
            if not match or match.group(3) != verb:
                raise LookupError(f"Malformed request: {self.command} {self.path}")
            name, version = match.group(1), match.group(2)
            if name not in models or (version and int(version) != models[name].version):
                raise LookupError(f"Servable not found for request: {name} {version}")
            return models[name]

        def do_GET(self):
            try:
                model = self._model("/metadata")
            except LookupError as err:
                return self._reply(404, {"error": str(err)})
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = model.name
            response.model_spec.version.value = model.version
            response.metadata["signature_def"].Pack(
                get_model_metadata_pb2.SignatureDefMap(signature_def=model.defs))
            self._reply(200, json_format.MessageToDict(response,
                                                       preserving_proto_field_name=True))

        def do_POST(self):
            try:
                model = self._model(":predict")
            except LookupError as err:
                return self._reply(404, {"error": str(err)})
            try:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name, sig = model.signature(body.get("signature_name"))
                outputs = model.run(name, inputs_from_json(body, sig))
                self._reply(200, json_from_outputs(outputs, "instances" in body))
            except (RequestError, ValueError, tf.errors.InvalidArgumentError) as err:
                self._reply(400, {"error": str(getattr(err, "message", err))})
    return Handler


# ----------------------------------------------------------------------------- gRPC

def typed_proto(array):
    """A reply TensorProto with the values in the typed field (TF Serving's AsProtoField)."""
    dtype = tf.as_dtype(array.dtype if array.dtype != object else tf.string)
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum,
                                   tensor_shape=tensor_shape_pb2.TensorShapeProto(
                                       dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s)
                                            for s in array.shape]))
    flat = array.reshape(-1)
    if dtype == tf.string:
        proto.string_val.extend(flat.tolist())
    elif dtype in (tf.float32,):
        proto.float_val.extend(flat.tolist())
    elif dtype in (tf.int32, tf.uint8, tf.int16, tf.int8, tf.uint16):
        proto.int_val.extend(int(v) for v in flat)
    elif dtype == tf.int64:
        proto.int64_val.extend(int(v) for v in flat)
    elif dtype == tf.float64:
        proto.double_val.extend(flat.tolist())
    else:
        proto.CopyFrom(tf.make_tensor_proto(array))
    return proto


def predict(models, request):
    """A PredictResponse for a PredictRequest, as the Predict RPC computes it."""
    model = models.get(request.model_spec.name)
    if model is None:
        raise RequestError(f"Servable not found for request: {request.model_spec.name}")
    name, _ = model.signature(request.model_spec.signature_name)
    inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    outputs = model.run(name, inputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = model.name
    response.model_spec.version.value = model.version
    response.model_spec.signature_name = name
    for key, value in outputs.items():
        if not request.output_filter or key in request.output_filter:
            response.outputs[key].CopyFrom(typed_proto(value))
    return response


class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models):
        self.models = models

    def Predict(self, request, context):
        try:
            return predict(self.models, request)
        except (RequestError, tf.errors.InvalidArgumentError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(getattr(err, "message", err)))

    def GetModelMetadata(self, request, context):
        model = self.models.get(request.model_spec.name)
        if model is None or list(request.metadata_field) != ["signature_def"]:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{request.model_spec.name}")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(
            get_model_metadata_pb2.SignatureDefMap(signature_def=model.defs))
        return response


# ----------------------------------------------------------------------------- warm-up

def replay_warmup(models):
    """{model: records replayed}; a record that fails stops the load, as in TF Serving."""
    counts = {}
    for name, model in models.items():
        path = model.folder / "assets.extra" / "tf_serving_warmup_requests"
        counts[name] = 0
        if not path.exists():
            continue
        for raw in tf.data.TFRecordDataset(str(path)):
            log = prediction_log_pb2.PredictionLog.FromString(raw.numpy())
            if log.WhichOneof("log_type") != "predict_log":
                raise RequestError(f"{path}: unsupported log type")
            request = log.predict_log.request
            request.model_spec.name = name          # TF Serving replays it on this model
            predict(models, request)
            counts[name] += 1
    return counts


def main(config_path, report_path):
    models = load_models(config_path)
    warmed = replay_warmup(models)
    http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_http_handler(models))
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[
        ("grpc.max_receive_message_length", 1 << 30), ("grpc.max_send_message_length", 1 << 30)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(models),
                                                                        grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    report = {"rest": f"http://127.0.0.1:{http_server.server_address[1]}",
              "grpc": f"127.0.0.1:{grpc_port}",
              "models": {name: {"folder": str(m.folder), "version": m.version,
                                "signatures": sorted(m.defs), "warmup_records": warmed[name]}
                         for name, m in models.items()}}
    tmp = Path(f"{report_path}.tmp")
    tmp.write_text(json.dumps(report))
    tmp.replace(report_path)
    sys.stdin.read()                 # serve until the test closes our standard input
    http_server.shutdown()
    grpc_server.stop(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
