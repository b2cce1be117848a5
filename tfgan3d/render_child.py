"""VTK renders in a child process: the one way tfgan3d renders voxel scenes from a process
that has TensorFlow loaded (training samples, evaluation figures, `render_scene` in a notebook).

An EGL context created in a process that has imported TensorFlow crashes that process
(segmentation fault, seen with vtk 9.7 and TF 2.21 on Mesa's EGL with llvmpipe or softpipe),
and no `try` can catch that. So the render runs in a fresh interpreter that never imports
TensorFlow:

    python -m tfgan3d.render_child REQUEST REPLY

reads (function, args, kwargs) pickled in REQUEST, calls that function of `tfgan3d.eval.render`
(which the child imports; this process never does) and pickles (True, result) or (False,
exception) into REPLY. `call` does the round trip and re-raises the child's exception with its
type; a child that dies (a crashed GL context) or runs past its time-out raises
RenderChildError here instead of ending the caller. `render_scenes` renders label scenes to
images and checks that every render is a PNG of the asked size that is not blank.
"""
from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np

RENDERER = "tfgan3d.eval.render"
_CHILD_FLAG = "TFGAN3D_RENDER_CHILD"    # set in the child: a render there never spawns again


class RenderChildError(RuntimeError):
    """The render child could not give a result: it died, timed out or returned a bad PNG."""


def call(function: str, *args, timeout_s=None, capture=True, **kwargs):
    """`tfgan3d.eval.render.<function>(*args, **kwargs)` in a child process; returns its result.

    Args:
        function: a function name of tfgan3d.eval.render.
        timeout_s: seconds before the child is killed (None: no limit).
        capture: keep the child's stdout / stderr (the last stderr line goes into a
            RenderChildError); False lets it print to this process's streams.
    Raises:
        whatever the function raised, with its type; RenderChildError when no result came.
    """
    if os.environ.get(_CHILD_FLAG):
        raise RenderChildError(f"{function}: already in a render child that imported "
                               f"TensorFlow; it cannot render")
    with tempfile.TemporaryDirectory(prefix="tfgan3d-render-") as tmp:
        request, reply = os.path.join(tmp, "request.pkl"), os.path.join(tmp, "reply.pkl")
        with open(request, "wb") as f:
            pickle.dump((function, args, kwargs), f)
        env = {**os.environ, _CHILD_FLAG: "1"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        command = [sys.executable, "-m", "tfgan3d.render_child", request, reply]
        try:
            done = subprocess.run(command, capture_output=capture, text=True, env=env,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RenderChildError(f"the renderer timed out ({timeout_s} s)") from None
        if not os.path.exists(reply):
            tail = (done.stderr or "").strip().splitlines()[-1:] or [""]
            raise RenderChildError(f"the renderer exited with status {done.returncode}"
                                   f"{': ' + tail[0] if tail[0] else ''}")
        with open(reply, "rb") as f:
            ok, value = pickle.load(f)
    if ok:
        return value
    raise value


def render_scenes(scenes, size=(320, 240), *, timeout_s=None, **options):
    """VTK renders of label scenes, made in a child process.

    Args:
        scenes: class labels (N, X, H, Z).
        size: (width, height) of each render.
        timeout_s: limit for the child (None: no limit).
        **options: camera, lighting, edges, threshold, hide_classes of
            `tfgan3d.eval.render.SceneRenderer` / `render`.
    Returns:
        (images, errors): per scene a uint8 RGB image (height, width, 3) and None, or None and
        the message of why it was not drawn (e.g. "nothing to draw" for an empty scene).
    Raises:
        RuntimeError: off-screen rendering cannot start here (the message says what to install).
        RenderChildError: the child died or timed out, or a render is not a non-blank PNG of
            `size`.
    """
    from PIL import Image

    size = (int(size[0]), int(size[1]))
    results = call("render_pngs", np.asarray(scenes), size, timeout_s=timeout_s, **options)
    images, errors = [], []
    for i, result in enumerate(results):
        if isinstance(result, str):
            images.append(None)
            errors.append(result)
            continue
        try:
            with Image.open(io.BytesIO(result)) as png:
                image = np.asarray(png.convert("RGB"))
        except (OSError, ValueError) as error:
            raise RenderChildError(f"scene {i}: the render is not a PNG ({error})") from None
        if image.shape[:2] != (size[1], size[0]):
            raise RenderChildError(f"scene {i}: a render of {image.shape[1]}x{image.shape[0]} "
                                   f"pixels, expected {size[0]}x{size[1]}")
        if (image == image.reshape(-1, 3)[0]).all():
            raise RenderChildError(f"scene {i}: the render is blank (one colour)")
        images.append(image)
        errors.append(None)
    return images, errors


def _serve(request, reply):
    """The child's side: one call of tfgan3d.eval.render, its outcome pickled into `reply`."""
    import importlib

    from tfgan3d.io import atomic_write

    with open(request, "rb") as f:
        function, args, kwargs = pickle.load(f)
    try:
        outcome = (True, getattr(importlib.import_module(RENDERER), function)(*args, **kwargs))
    except Exception as error:                     # noqa: BLE001  (re-raised by the parent)
        outcome = (False, error)
    try:
        data = pickle.dumps(outcome)
    except Exception as error:                     # noqa: BLE001  (an unpicklable exception)
        data = pickle.dumps((False, RuntimeError(f"{type(outcome[1]).__name__}: "
                                                 f"{outcome[1]}; {error}")))
    atomic_write(reply, data)                      # the parent sees a whole reply or none
    return 0


if __name__ == "__main__":
    sys.exit(_serve(*sys.argv[1:3]))
