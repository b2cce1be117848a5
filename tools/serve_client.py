"""A client of the exported models on TF Serving (python -m tfgan3d.tools.serve_client).

    python -m tfgan3d.tools.serve_client --url http://localhost:8501 --model pix2pix \
        --input photos/ --out depth/                      # REST, the model's serving_default
    python -m tfgan3d.tools.serve_client --url http://localhost:8501 --model pix2pix \
        --signature serving_encoded --input photos/ --out depth/    # PNG / JPEG sent as b64
    python -m tfgan3d.tools.serve_client --grpc localhost:8500 --model fcr_alphagan_autoencoder \
        --signature autoencode_uint8 --input scenes.npy --out rec/  # gRPC

The client asks the server for the signature (REST `GET /v1/models/NAME/metadata`, gRPC
`GetModelMetadata`) and builds each request from the files by the signature's input types:
string inputs get the encoded file bytes ({"b64": ...} in JSON), uint8 images the decoded
pixels, float32 images the pixels in [-1, 1], integer and fixed-shape float inputs the arrays of
.npy files. It writes each output of each input file as OUT/<stem>_<output>.npy (and .png for
uint8 and class-id images) and an index, OUT/predictions.json.

The REST path needs numpy and Pillow only: no TensorFlow and no tfgan3d model code. The gRPC
path needs grpcio and tensorflow-serving-api (whose protos import TensorFlow). The functions
that build and read the requests (`rest_body`, `grpc_request`, `parse_rest_response`,
`arrays_from_response`, ...) are importable on their own.
"""
from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from tfgan3d import cli
from tfgan3d import io as tio

# TensorFlow's DataType enum (tensorflow/core/framework/types.proto) and numpy's types.
DTYPES = {"DT_FLOAT": (1, np.float32), "DT_DOUBLE": (2, np.float64), "DT_INT32": (3, np.int32),
          "DT_UINT8": (4, np.uint8), "DT_INT16": (5, np.int16), "DT_INT8": (6, np.int8),
          "DT_STRING": (7, object), "DT_INT64": (9, np.int64), "DT_BOOL": (10, np.bool_),
          "DT_UINT16": (17, np.uint16), "DT_HALF": (19, np.float16)}
_BY_ENUM = {enum: (name, np_type) for name, (enum, np_type) in DTYPES.items()}
# The TensorProto field that holds each type's values when tensor_content is not used.
_VAL_FIELD = {"DT_FLOAT": "float_val", "DT_DOUBLE": "double_val", "DT_INT32": "int_val",
              "DT_UINT8": "int_val", "DT_INT16": "int_val", "DT_INT8": "int_val",
              "DT_UINT16": "int_val", "DT_INT64": "int64_val", "DT_BOOL": "bool_val",
              "DT_STRING": "string_val", "DT_HALF": "half_val"}
ENCODED_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp"}
IMAGE_SUFFIXES = ENCODED_SUFFIXES | {".tif", ".tiff", ".webp"}


class ClientError(ValueError):
    """A request that cannot be built from the files, or a server that refused it."""


# ----------------------------------------------------------------------------- REST (JSON)

def json_value(array):
    """An array as TF Serving's JSON: nested lists, bytes as {"b64": ...}."""
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        def encode(v):
            if isinstance(v, list):
                return [encode(x) for x in v]
            v = v if isinstance(v, bytes) else str(v).encode()
            return {"b64": base64.b64encode(v).decode("ascii")}
        return encode(array.tolist())
    return array.tolist()


def rest_body(inputs: dict, signature_name: str = "serving_default",
              columnar: bool = False) -> dict:
    """The JSON body of a REST predict request with named inputs {name: array [B, ...]}.

    Row format (`instances`): one object per example, {name: value}, every input sharing the
    batch size B. Columnar (`inputs`): {name: the whole batch}."""
    if columnar:
        return {"signature_name": signature_name,
                "inputs": {k: json_value(v) for k, v in inputs.items()}}
    sizes = {k: len(v) for k, v in inputs.items()}
    if len(set(sizes.values())) > 1:
        raise ClientError(f"row format: every input needs the same batch size, got {sizes}; "
                          f"use the columnar format")
    n = next(iter(sizes.values()), 0)
    values = {k: json_value(v) for k, v in inputs.items()}
    return {"signature_name": signature_name,
            "instances": [{k: values[k][i] for k in values} for i in range(n)]}


def rest_url(url: str, model: str, version: int | None = None, verb: str = ":predict") -> str:
    """http://HOST:PORT/v1/models/MODEL[/versions/V]:predict (or /metadata) from the server's
    address; a url that already names the model's path is used as it is."""
    if "/v1/models/" in url:
        return url
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "")
    return url.rstrip("/") + path + verb


def _decode_json(value, np_type):
    def unb64(v):
        if isinstance(v, list):
            return [unb64(x) for x in v]
        if isinstance(v, dict) and set(v) == {"b64"}:
            return base64.b64decode(v["b64"])
        return v.encode() if isinstance(v, str) else v
    if np_type is object:
        return np.array(unb64(value), dtype=object)
    return np.asarray(value, dtype=np_type)


def parse_rest_response(body: dict, outputs: dict) -> dict:
    """{name: array} of a REST predict response, read by TF Serving's rules: `predictions`
    (row format: per example a value, or {name: value} when there are several outputs) or
    `outputs` (columnar: a value, or {name: value}). `outputs` is the signature's {name:
    (dtype name, shape)}; an unnamed value belongs to its only output."""
    if "error" in body:
        raise ClientError(f"server: {body['error']}")
    names = sorted(outputs)
    types = {k: DTYPES.get(outputs[k][0], (0, None))[1] for k in names}
    if "outputs" in body:
        got = body["outputs"]
        named = got if isinstance(got, dict) and set(got) <= set(names) and len(names) > 1 \
            else {names[0]: got}
        return {k: _decode_json(v, types[k]) for k, v in named.items()}
    if "predictions" not in body:
        raise ClientError(f"server: expected 'predictions' or 'outputs' in the response, "
                          f"got {sorted(body)}")
    rows = body["predictions"]
    if len(names) > 1:
        return {k: _decode_json([row[k] for row in rows], types[k]) for k in names}
    return {names[0]: _decode_json(rows, types[names[0]])}


def _http_json(url: str, body: dict | None, timeout: float) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        try:
            text = json.loads(text).get("error", text)
        except ValueError:
            pass
        raise ClientError(f"{url}: HTTP {err.code}: {text.strip()[:300]}") from None
    except (urllib.error.URLError, OSError) as err:
        raise ClientError(f"{url}: expected a TF Serving REST server, could not reach it "
                          f"({getattr(err, 'reason', err)})") from None


def signature_from_metadata(metadata: dict, signature: str) -> dict:
    """{"inputs": {name: (dtype, shape)}, "outputs": {...}} of `signature` in a model metadata
    response (REST JSON, the SignatureDefMap as TF Serving prints it); shape: -1 for free."""
    try:
        defs = metadata["metadata"]["signature_def"]["signature_def"]
    except (KeyError, TypeError):
        raise ClientError("server metadata: expected metadata.signature_def.signature_def, "
                          "found none") from None
    if signature not in defs:
        raise ClientError(f"--signature {signature}: the model has {', '.join(sorted(defs))}")

    def tensors(infos):
        return {name: (info.get("dtype", "DT_INVALID"),
                       [int(d.get("size", -1)) for d in
                        info.get("tensor_shape", {}).get("dim", [])])
                for name, info in infos.items()}
    found = defs[signature]
    return {"inputs": tensors(found.get("inputs", {})),
            "outputs": tensors(found.get("outputs", {}))}


# ----------------------------------------------------------------------------- gRPC

def tensor_proto(array):
    """A TensorProto of a numpy array (string arrays: object arrays of bytes), built from the
    proto fields directly (what tf.make_tensor_proto gives for these types)."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        name = "DT_STRING"
    else:
        matches = [k for k, (_, t) in DTYPES.items() if t is not object and np.dtype(t) ==
                   array.dtype]
        if not matches:
            raise ClientError(f"no TensorFlow type for numpy {array.dtype}")
        name = matches[0]
    proto = tensor_pb2.TensorProto(
        dtype=DTYPES[name][0], tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in array.shape]))
    if name == "DT_STRING":
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode()
                                for v in array.reshape(-1))
    else:
        proto.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")
                                                    ).tobytes()
    return proto


def array_from_proto(proto) -> np.ndarray:
    """A numpy array of a TensorProto, from tensor_content or the typed value field (TF Serving
    fills the latter); a single value fills the shape, as TensorFlow reads it."""
    name, np_type = _BY_ENUM.get(proto.dtype, (None, None))
    if name is None:
        raise ClientError(f"unsupported tensor type {proto.dtype} in the response")
    shape = [d.size for d in proto.tensor_shape.dim]
    count = int(np.prod(shape)) if shape else 1
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, np.dtype(np_type).newbyteorder("<")
                             ).astype(np_type).reshape(shape)
    values = list(getattr(proto, _VAL_FIELD[name]))
    if name == "DT_HALF":
        values = np.array(values, np.uint16).view(np.float16)
    array = np.array(values, dtype=np_type)
    if array.size == 1 and count != 1:
        array = np.full(count, array[0], dtype=np_type)
    elif array.size == 0 and count:
        array = np.zeros(count, dtype=np_type)
    return array.reshape(shape)


def grpc_request(inputs: dict, model: str, signature_name: str = "serving_default",
                 version: int | None = None):
    """A tensorflow_serving PredictRequest with named inputs {name: array}."""
    from tensorflow_serving.apis import predict_pb2
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tensor_proto(value))
    return request


def arrays_from_response(response) -> dict:
    """{name: array} of a PredictResponse."""
    return {name: array_from_proto(proto) for name, proto in response.outputs.items()}


def _grpc_stub(target: str):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    channel = grpc.insecure_channel(target, options=[
        ("grpc.max_send_message_length", 1 << 30), ("grpc.max_receive_message_length", 1 << 30)])
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _grpc_call(call, request, target, timeout):
    import grpc
    try:
        return call(request, timeout=timeout)
    except grpc.RpcError as err:
        raise ClientError(f"{target}: {err.code().name}: {err.details()}") from None


def grpc_signature(target: str, model: str, signature: str, version=None,
                   timeout: float = 30) -> dict:
    """The signature's {"inputs", "outputs"} from GetModelMetadata."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = model
    if version:
        request.model_spec.version.value = int(version)
    response = _grpc_call(_grpc_stub(target).GetModelMetadata, request, target, timeout)
    defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(defs)
    as_json = {"metadata": {"signature_def": json_format.MessageToDict(
        defs, preserving_proto_field_name=True)}}
    return signature_from_metadata(as_json, signature)


# ----------------------------------------------------------------------------- files

def _read_image(path: Path, channels: int) -> np.ndarray:
    """uint8 [H, W, channels] as tf.io.decode_image gives it (16-bit cut to the high byte,
    alpha dropped, grey repeated, colour to grey by the ITU-R 601 weights)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                pixels = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
                image = Image.fromarray(pixels, "L")
            image = image.convert("L" if channels == 1 else "RGB")
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError) as err:
        raise ClientError(f"{path}: expected an image, could not read it ({err})") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _encoded(path: Path) -> bytes:
    if path.suffix.lower() in ENCODED_SUFFIXES:
        return path.read_bytes()
    return tio.png_bytes(_read_image(path, 3))


def request_inputs(path: Path, inputs: dict) -> dict:
    """{input name: array [B, ...]} for one file, by the signature's input types."""
    arrays = {}
    for name, (dtype, shape) in inputs.items():
        is_image = path.suffix.lower() in IMAGE_SUFFIXES
        if dtype == "DT_STRING" and len(shape) == 1:
            if not is_image:
                raise ClientError(f"{path}: input {name} takes encoded images, expected an "
                                  f"image file")
            arrays[name] = np.array([_encoded(path)], dtype=object)
        elif len(shape) == 4 and shape[1] == -1 and dtype in ("DT_UINT8", "DT_FLOAT"):
            if not is_image:
                raise ClientError(f"{path}: input {name} takes images, expected an image file")
            pixels = _read_image(path, shape[3] if shape[3] > 0 else 3)[None]
            arrays[name] = pixels if dtype == "DT_UINT8" else tio.from_uint8(pixels)
        else:
            if path.suffix.lower() != ".npy":
                raise ClientError(f"{path}: input {name} takes {dtype} {shape}, expected a "
                                  f".npy file")
            array = np.load(path, allow_pickle=False)
            if array.ndim == len(shape) - 1:
                array = array[None]
            want = [d for d in shape[1:]]
            if array.ndim != len(shape) or any(w not in (-1, s) for w, s in
                                               zip(want, array.shape[1:])):
                raise ClientError(f"{path}: input {name} takes [B, {', '.join(map(str, want))}]"
                                  f", found {list(array.shape)}")
            arrays[name] = array.astype(DTYPES[dtype][1])
    return arrays


def find_inputs(paths) -> list[Path]:
    """Files in sorted order; folders give their image and .npy files, sorted."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and
                                p.suffix.lower() in IMAGE_SUFFIXES | {".npy"}))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"--input {path}: expected a file or a folder, found none")
    if not found:
        raise ClientError(f"--input {' '.join(map(str, paths))}: no image or .npy files")
    return found


def write_outputs(out_dir: Path, source: Path, outputs: dict) -> dict:
    """Writes OUT/<stem>_<output>.npy for each output (the batch axis dropped for one example)
    and a PNG beside it for uint8 images and class ids below 256; {output: [files]}."""
    written = {}
    for name, array in sorted(outputs.items()):
        array = array[0] if array.ndim and array.shape[0] == 1 else array
        files = [tio.save_npy(out_dir / f"{source.stem}_{name}.npy", array)]
        image = array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array
        is_image = image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))
        if is_image and array.dtype.kind in "iu" and image.size and 0 <= image.min() \
                and image.max() < 256:
            files.append(tio.save_png(out_dir / f"{source.stem}_{name}.png",
                                      image.astype(np.uint8)))
        written[name] = [str(f) for f in files]
    return written


# ----------------------------------------------------------------------------- the program

def main(argv=None):
    return cli.run(_main, argv)


def _main(argv):
    parser = cli.ArgumentParser(prog="python -m tfgan3d.tools.serve_client",
                                description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="REST address of TF Serving, e.g. http://localhost:8501")
    where.add_argument("--grpc", help="gRPC address of TF Serving, e.g. localhost:8500")
    parser.add_argument("--model", required=True, help="model name (as in models.config)")
    parser.add_argument("--version", type=int, help="model version (default: the served one)")
    parser.add_argument("--signature", default="serving_default", help="signature name")
    parser.add_argument("--input", nargs="+", required=True, help="files or folders")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--columnar", action="store_true",
                        help="REST: send the columnar `inputs` format (default: `instances`)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    files = find_inputs(args.input)
    if args.url:
        meta = _http_json(rest_url(args.url, args.model, args.version, "/metadata"), None,
                          args.timeout)
        signature = signature_from_metadata(meta, args.signature)
    else:
        signature = grpc_signature(args.grpc, args.model, args.signature, args.version,
                                   args.timeout)
    out = Path(args.out)
    index = []
    for path in files:
        inputs = request_inputs(path, signature["inputs"])
        if args.url:
            body = rest_body(inputs, args.signature, args.columnar)
            reply = _http_json(rest_url(args.url, args.model, args.version), body,
                               args.timeout)
            outputs = parse_rest_response(reply, signature["outputs"])
        else:
            request = grpc_request(inputs, args.model, args.signature, args.version)
            reply = _grpc_call(_grpc_stub(args.grpc).Predict, request, args.grpc, args.timeout)
            outputs = arrays_from_response(reply)
        index.append({"input": str(path), "outputs": write_outputs(out, path, outputs)})
        tio.write_json({"model": args.model, "signature": args.signature, "files": index},
                       out / "predictions.json")
        print(f"{path} -> {', '.join(sorted(outputs))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
