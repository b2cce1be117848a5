"""Off-screen VTK renders of voxel scenes (class labels or the generator's softmax) to PNG.

    python -m tfgan3d.eval.render real.npy -i 3 --out real_3.png
    python -m tfgan3d.eval.render recons.npy --all --out renders/

All voxels of a scene form ONE actor: the labels become cell scalars of a vtkImageData,
vtkThreshold keeps the visible classes and vtkDataSetSurfaceFilter extracts their outer faces,
coloured by class through a vtkLookupTable holding `palette.PALETTE` (the original built one
actor per voxel, tens of thousands per scene). Array axes are (x, height, z): the second axis
points up (VTK's y). Class 0 (empty) is never drawn; the ceiling (1) is hidden by default so
that the camera, above the room at an angle, sees inside.

Off-screen rendering needs an OpenGL driver: without a display VTK uses EGL (Mesa's software
EGL works on any CPU) or, when selected with VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow,
OSMesa.
"""
import argparse
import ctypes.util
import math
import os
import sys
import time

import numpy as np

from tfgan3d import cli
from tfgan3d import render_child
from tfgan3d.io import atomic_write
from tfgan3d.eval.palette import CEILING, EMPTY, NUM_CLASSES, PALETTE

BACKGROUND = (0.92, 0.92, 0.92)
# Camera direction as (azimuth around the height axis from +z towards +x, elevation), degrees.
CAMERAS = {"default": (35.0, 60.0), "top": (0.0, 90.0), "front": (0.0, 15.0),
           "side": (90.0, 15.0)}
LIGHTING = ("default", "flat")

_OFFSCREEN_HELP = (
    "Off-screen rendering needs an OpenGL driver for VTK. Without a display, install EGL with "
    "Mesa (Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri), or OSMesa (libosmesa6) and "
    "set VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow; or run under a virtual X display "
    "(xvfb-run).")


def scene_labels(volume, threshold=None, probs=None):
    """Class labels to draw for one scene.

    Args:
        volume: integer labels (X, H, Z) (floats holding whole numbers are accepted), or class
            probabilities (X, H, Z, C) such as the generator's softmax output.
        threshold: with probabilities (as `volume` or `probs`), drop every voxel whose largest
            non-empty class probability max_{c >= 1} p_c is below `threshold`. Probabilities
            given as `volume` are then labelled argmax_{c >= 1} p_c; without a threshold they
            are labelled argmax_c p_c over all classes (what the original saved as .npy).
        probs: optional (X, H, Z, C) probabilities used only to threshold `volume` labels.
    Returns:
        uint8 array (X, H, Z) of labels in 0..11.
    Raises:
        ValueError: on a bad shape, label value, or a threshold without probabilities.
    """
    volume = np.asarray(volume)
    if volume.ndim == 4:
        if probs is not None:
            raise ValueError("pass probabilities either as the volume or as probs, not both")
        _check_probs(volume, volume.shape[:3])
        if threshold is None:
            return np.argmax(volume, axis=-1).astype(np.uint8)
        labels = (np.argmax(volume[..., 1:], axis=-1) + 1).astype(np.uint8)
        labels[volume[..., 1:].max(axis=-1) < threshold] = EMPTY
        return labels
    if volume.ndim != 3:
        raise ValueError(f"a scene must be labels (X, H, Z) or probabilities (X, H, Z, "
                         f"{NUM_CLASSES}), got shape {volume.shape}")
    if volume.dtype.kind == "f" and not np.array_equal(volume, np.rint(volume)):
        raise ValueError(f"labels (X, H, Z) must be whole numbers, got non-integral "
                         f"{volume.dtype} values; probabilities need a class axis "
                         f"(X, H, Z, {NUM_CLASSES})")
    if volume.dtype.kind not in "fiu" or volume.size == 0:
        raise ValueError(f"labels must be a non-empty numeric array, got dtype {volume.dtype} "
                         f"and shape {volume.shape}")
    low, high = volume.min(), volume.max()
    if low < 0 or high >= NUM_CLASSES:
        raise ValueError(f"labels must be in 0..{NUM_CLASSES - 1}, got values in "
                         f"[{low:g}, {high:g}]")
    labels = volume.astype(np.uint8)
    if threshold is not None:
        if probs is None:
            raise ValueError("threshold applies to probabilities: pass probs (X, H, Z, "
                             f"{NUM_CLASSES}) or a probability volume, not labels only")
        probs = np.asarray(probs)
        _check_probs(probs, labels.shape)
        labels[probs[..., 1:].max(axis=-1) < threshold] = EMPTY
    return labels


def _check_probs(probs, spatial_shape):
    if probs.shape != tuple(spatial_shape) + (NUM_CLASSES,) or probs.dtype.kind != "f":
        raise ValueError(f"probabilities must be a float array of shape "
                         f"{tuple(spatial_shape) + (NUM_CLASSES,)}, got {probs.dtype} "
                         f"{probs.shape}")


def image_is_blank(rgb, background=BACKGROUND):
    """True if an (H, W, 3) uint8 image is one colour or has no pixel off the background.

    A broken OpenGL context gives a uniform image (often black) or only the background. The
    test is deliberately not a minimum area: a scene of a few voxels may cover a few pixels.
    """
    rgb = np.asarray(rgb)[..., :3].astype(np.int16)
    if (rgb == rgb.reshape(-1, 3)[0]).all():
        return True
    background = np.round(np.asarray(background) * 255).astype(np.int16)
    return not np.any(np.abs(rgb - background) > 8)


def offscreen_backend_problem():
    """Why off-screen rendering cannot start here, or None if it looks available.

    A cheap check of the libraries that VTK's render window will load: VTK crashes the process
    instead of raising when, e.g., OSMesa is selected but missing.
    """
    choice = os.environ.get("VTK_DEFAULT_OPENGL_WINDOW", "")
    if sys.platform != "linux":
        return None
    if choice == "vtkOSOpenGLRenderWindow":
        return None if ctypes.util.find_library("OSMesa") else "libOSMesa was not found"
    if choice in ("", "vtkEGLRenderWindow") and not ctypes.util.find_library("EGL"):
        if choice == "" and os.environ.get("DISPLAY"):
            return None
        return "libEGL was not found and no X display is set (DISPLAY)"
    return None


def _import_vtk():
    if sys.platform == "linux" and not os.environ.get("DISPLAY"):
        # VTK's default X window would warn about the missing display before falling back to
        # EGL; choose EGL directly unless the user picked a window class.
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL classes)
        from vtkmodules import vtkCommonCore, vtkCommonDataModel, vtkFiltersCore
        from vtkmodules import vtkFiltersGeometry, vtkIOImage, vtkRenderingCore
        from vtkmodules.util import numpy_support
    except ImportError as error:
        raise RuntimeError(f"VTK with OpenGL rendering is required to render scenes "
                           f"(pip install 'vtk>=9.3'): {error}") from error
    return argparse.Namespace(core=vtkCommonCore, data=vtkCommonDataModel, filters=vtkFiltersCore,
                              geometry=vtkFiltersGeometry, io=vtkIOImage,
                              rendering=vtkRenderingCore, numpy=numpy_support)


class SceneRenderer:
    """An off-screen window, reused to render many scenes of any grid size.

    Args:
        size: image (width, height) in pixels.
        camera: a name in CAMERAS or an (azimuth, elevation) pair in degrees.
        lighting: "default" (a headlight: ambient 0.4 + diffuse 0.6, so faces of different
            orientation get different brightness) or "flat" (ambient only: each class is drawn
            in exactly its palette colour).
        edges: draw the voxel edges in dark grey.
    Raises:
        ValueError: on a bad size, camera or lighting.
        RuntimeError: if the off-screen window cannot be created.
    """

    def __init__(self, size=(640, 480), camera="default", lighting="default", edges=False):
        if len(size) != 2 or min(size) < 1 or any(int(s) != s for s in size):
            raise ValueError(f"size must be (width, height) positive integers, got {size!r}")
        if isinstance(camera, str):
            if camera not in CAMERAS:
                raise ValueError(f"unknown camera {camera!r}; valid: {', '.join(CAMERAS)} or an "
                                 f"(azimuth, elevation) pair in degrees")
            camera = CAMERAS[camera]
        if len(camera) != 2:
            raise ValueError(f"camera must be a name or (azimuth, elevation), got {camera!r}")
        if lighting not in LIGHTING:
            raise ValueError(f"unknown lighting {lighting!r}; valid: {', '.join(LIGHTING)}")
        problem = offscreen_backend_problem()
        if problem:
            raise RuntimeError(f"cannot render off-screen: {problem}. {_OFFSCREEN_HELP}")
        self.size = (int(size[0]), int(size[1]))
        self.azimuth, self.elevation = (float(a) for a in camera)
        self._vtk = vtk = _import_vtk()
        self._errors = []

        self._window = vtk.rendering.vtkRenderWindow()
        if self._window.GetClassName() == "vtkRenderWindow":  # no OpenGL window class loaded
            raise RuntimeError(f"VTK has no OpenGL render window here. {_OFFSCREEN_HELP}")
        self._window.SetOffScreenRendering(1)
        self._window.SetMultiSamples(0)  # exact palette colours with flat lighting
        self._window.SetSize(*self.size)

        def on_error(caller, event, message):
            self._errors.append(str(message))
        on_error.CallDataType = vtk.core.VTK_STRING  # VTK passes the error text
        self._window.AddObserver("ErrorEvent", on_error)
        self._renderer = vtk.rendering.vtkRenderer()
        self._renderer.SetBackground(*BACKGROUND)
        self._window.AddRenderer(self._renderer)

        self._image = vtk.data.vtkImageData()
        self._threshold = vtk.filters.vtkThreshold()
        self._threshold.SetInputData(self._image)
        cells = vtk.data.vtkDataObject.FIELD_ASSOCIATION_CELLS
        self._threshold.SetInputArrayToProcess(0, 0, 0, cells, "label")
        self._threshold.SetThresholdFunction(vtk.filters.vtkThreshold.THRESHOLD_BETWEEN)
        self._threshold.SetLowerThreshold(0.5)
        self._threshold.SetUpperThreshold(NUM_CLASSES - 0.5)
        surface = vtk.geometry.vtkDataSetSurfaceFilter()
        surface.SetInputConnection(self._threshold.GetOutputPort())

        table = vtk.core.vtkLookupTable()
        table.SetNumberOfTableValues(NUM_CLASSES)
        table.SetTableRange(-0.5, NUM_CLASSES - 0.5)  # value c falls in bin c
        for c, rgb in enumerate(PALETTE):
            table.SetTableValue(c, *(rgb / 255.0), 1.0)
        mapper = vtk.rendering.vtkPolyDataMapper()
        mapper.SetInputConnection(surface.GetOutputPort())
        mapper.SetLookupTable(table)
        mapper.SetColorModeToMapScalars()  # uint8 scalars are labels, not colours
        mapper.SetScalarModeToUseCellData()
        mapper.UseLookupTableScalarRangeOn()
        actor = vtk.rendering.vtkActor()
        actor.SetMapper(mapper)
        prop = actor.GetProperty()
        ambient, diffuse, specular = (1.0, 0.0, 0.0) if lighting == "flat" else (0.4, 0.6, 0.05)
        prop.SetAmbient(ambient)
        prop.SetDiffuse(diffuse)
        prop.SetSpecular(specular)
        if edges:
            prop.EdgeVisibilityOn()
            prop.SetEdgeColor(0.25, 0.25, 0.25)
        self._renderer.AddActor(actor)
        self._grabber = None

    def render(self, labels, out_png, threshold=None, probs=None, hide_classes=(EMPTY, CEILING)):
        """Renders one scene to `out_png` (see `render_scene`). Returns the path written."""
        data = self.png(labels, threshold=threshold, probs=probs, hide_classes=hide_classes)
        atomic_write(out_png, data)
        return os.fspath(out_png)

    def png(self, labels, threshold=None, probs=None, hide_classes=(EMPTY, CEILING)) -> bytes:
        """Renders one scene (see `render_scene`) and returns the PNG file's bytes."""
        labels = scene_labels(labels, threshold=threshold, probs=probs)
        hidden = np.isin(labels, list(hide_classes) + [EMPTY])
        if hidden.all():
            raise ValueError(f"nothing to draw: every voxel is empty or of a hidden class "
                             f"{tuple(sorted(set(hide_classes) | {EMPTY}))}"
                             + ("" if threshold is None else f" after threshold {threshold}"))
        visible = np.where(hidden, EMPTY, labels).astype(np.uint8)
        vtk = self._vtk
        x, h, z = visible.shape
        self._image.SetDimensions(x + 1, h + 1, z + 1)  # points; the voxels are its cells
        scalars = vtk.numpy.numpy_to_vtk(visible.ravel(order="F"), deep=1)  # x varies fastest
        scalars.SetName("label")
        self._image.GetCellData().SetScalars(scalars)
        self._image.Modified()
        self._place_camera((0, x, 0, h, 0, z))

        self._errors.clear()
        self._window.Render()
        if self._errors:
            raise RuntimeError(f"VTK could not render off-screen "
                               f"({self._window.GetClassName()}): {'; '.join(self._errors)}. "
                               f"{_OFFSCREEN_HELP}")
        if self._grabber is None:
            self._grabber = vtk.rendering.vtkWindowToImageFilter()
            self._grabber.SetInput(self._window)
            self._grabber.SetInputBufferTypeToRGB()
            self._grabber.ReadFrontBufferOff()
        self._grabber.Modified()
        self._grabber.Update()
        self._check_not_blank(self._grabber.GetOutput())
        return self._png_bytes(self._grabber.GetOutputPort())

    def _place_camera(self, bounds):
        """Looks at the grid's centre from the camera direction, fitting the whole grid."""
        camera = self._renderer.GetActiveCamera()
        centre = [(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)]
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        direction = (math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az))
        camera.SetFocalPoint(*centre)
        camera.SetPosition(*(c + d for c, d in zip(centre, direction)))
        # Looking straight down, "up" on the image is the far side of the room (-z).
        camera.SetViewUp(*((0, 0, -1) if self.elevation > 89 else (0, 1, 0)))
        self._renderer.ResetCamera(bounds)
        camera.Zoom(1.0)
        self._renderer.ResetCameraClippingRange(bounds)

    def _check_not_blank(self, image):
        width, height, _ = image.GetDimensions()
        pixels = self._vtk.numpy.vtk_to_numpy(image.GetPointData().GetScalars())
        if image_is_blank(pixels.reshape(height, width, -1)):
            raise RuntimeError(f"the render is blank (one colour, or nothing but background) "
                               f"although the scene has voxels to draw; window "
                               f"{self._window.GetClassName()}. {_OFFSCREEN_HELP}")

    def _png_bytes(self, port):
        writer = self._vtk.io.vtkPNGWriter()
        writer.WriteToMemoryOn()
        writer.SetInputConnection(port)
        writer.Write()
        result = writer.GetResult()
        if writer.GetErrorCode() or result is None or not result.GetNumberOfTuples():
            raise OSError(f"could not encode the render as PNG (VTK error code "
                          f"{writer.GetErrorCode()})")
        return self._vtk.numpy.vtk_to_numpy(result).tobytes()


def render_scene(labels, out_png, *, size=(640, 480), threshold=None, probs=None,
                 camera="default", hide_classes=(EMPTY, CEILING), lighting="default",
                 edges=False):
    """Renders one voxel scene off-screen to a PNG file.

    Args:
        labels: class labels (X, H, Z), height on the second axis; or probabilities
            (X, H, Z, 12) (see `scene_labels` for how they become labels).
        out_png: output path; written to a temporary name, then renamed.
        size: image (width, height) in pixels.
        threshold: drop voxels whose largest non-empty class probability is below it; needs
            probabilities (as `labels` or `probs`).
        probs: optional (X, H, Z, 12) probabilities to threshold integer `labels` with.
        camera: "default" (above the room at an angle), "top", "front", "side", or an
            (azimuth, elevation) pair in degrees.
        hide_classes: classes not drawn; empty (0) is never drawn. Default hides the ceiling;
            pass (0,) to show it.
        lighting: "default" (shaded) or "flat" (exact palette colours).
        edges: draw voxel edges.
    Returns:
        The path written.
    Raises:
        ValueError: on bad input or a scene with nothing to draw.
        RuntimeError: if off-screen rendering is unavailable or the image comes out blank.
    """
    if "tensorflow" in sys.modules:     # see tfgan3d.render_child
        return render_child.call("render_scene", labels, out_png, size=size,
                                 threshold=threshold, probs=probs, camera=camera,
                                 hide_classes=hide_classes, lighting=lighting, edges=edges)
    renderer = SceneRenderer(size=size, camera=camera, lighting=lighting, edges=edges)
    return renderer.render(labels, out_png, threshold=threshold, probs=probs,
                           hide_classes=hide_classes)


def render_pngs(scenes, size=(640, 480), *, threshold=None, hide_classes=(EMPTY, CEILING),
                camera="default", lighting="default", edges=False):
    """Renders every scene with one SceneRenderer; what `tfgan3d.render_child.render_scenes`
    runs in its child.

    Returns:
        per scene the PNG file's bytes, or the message (str) of why it could not be drawn
        (bad labels, nothing to draw, a blank image).
    Raises:
        RuntimeError: if off-screen rendering cannot start.
    """
    renderer = SceneRenderer(size=size, camera=camera, lighting=lighting, edges=edges)
    results = []
    for scene in scenes:
        try:
            results.append(renderer.png(np.asarray(scene), threshold=threshold,
                                        hide_classes=hide_classes))
        except (ValueError, OSError, RuntimeError) as error:
            results.append(str(error))
    return results


# --- command line -------------------------------------------------------------------------------

def _parse_size(text):
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 640x480, got {text!r}")
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def _parser():
    parser = cli.ArgumentParser(
        prog="tfgan3d-render",
        description="Render voxel scenes of a .npy file (labels (N, X, H, Z) or (X, H, Z), or "
                    "probabilities (N, X, H, Z, 12)) off-screen to PNG.")
    parser.add_argument("file", help=".npy file of scenes")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-i", "--index", type=int, default=1,
                       help="scene to render, ONE-BASED as in the original viewer (default 1)")
    which.add_argument("--all", action="store_true",
                       help="render every scene into the --out folder as scene_0001.png, ...")
    parser.add_argument("-t", "--threshold", type=float, default=None,
                        help="probability files only: hide voxels whose largest non-empty "
                             "class probability is below T")
    parser.add_argument("-o", "--out", default=None,
                        help="output PNG (default FILE_INDEX.png next to FILE), or folder with "
                             "--all (default FILE_renders/)")
    parser.add_argument("--size", type=_parse_size, default=(640, 480), help="WxH (640x480)")
    parser.add_argument("--show-ceiling", action="store_true", help="draw the ceiling too")
    parser.add_argument("--camera", choices=sorted(CAMERAS), default="default")
    parser.add_argument("--lighting", choices=LIGHTING, default="default")
    parser.add_argument("--edges", action="store_true", help="draw voxel edges")
    return parser


def _load_scenes(parser, path):
    """Memory-maps FILE and returns (scenes, is_probability) with scenes shaped (N, ...)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        parser.error(f"cannot read {path}: {error}")
    if array.ndim == 3:
        return array[None], False
    if array.ndim == 4:
        return array, False
    if array.ndim == 5 and array.shape[-1] == NUM_CLASSES:
        return array, True
    parser.error(f"{path} holds shape {array.shape}; expected labels (N, X, H, Z) or (X, H, Z), "
                 f"or probabilities (N, X, H, Z, {NUM_CLASSES})")


def main(argv=None):
    """Command-line entry point; returns the exit status (1 with one `error:` line for an
    unreadable file; --debug for the traceback)."""
    return cli.run(_main, argv)


def _main(argv):
    parser = _parser()
    args = parser.parse_args(argv)
    scenes, is_probability = _load_scenes(parser, args.file)
    count = scenes.shape[0]
    if args.threshold is not None and not is_probability:
        parser.error(f"--threshold applies to probability files (N, X, H, Z, {NUM_CLASSES}); "
                     f"{args.file} holds labels of shape {scenes.shape}")
    stem = os.path.splitext(args.file)[0]
    if args.all:
        folder = args.out or f"{stem}_renders"
        jobs = [(i, os.path.join(folder, f"scene_{i + 1:04d}.png")) for i in range(count)]
    else:
        if not 1 <= args.index <= count:
            parser.error(f"--index {args.index} is out of range: {args.file} holds {count} "
                         f"scene(s), valid indices are 1..{count} (one-based)")
        jobs = [(args.index - 1, args.out or f"{stem}_{args.index:04d}.png")]

    hide = (EMPTY,) if args.show_ceiling else (EMPTY, CEILING)
    settings = dict(size=args.size, camera=args.camera, lighting=args.lighting, edges=args.edges,
                    threshold=args.threshold, hide=hide)
    if "tensorflow" in sys.modules:   # see tfgan3d.render_child
        return render_child.call("render_jobs", np.asarray(scenes), jobs, settings,
                                 capture=False)
    return render_jobs(scenes, jobs, settings)


def render_jobs(scenes, jobs, settings):
    """Renders scenes[index] to out_png for each job; returns the exit status."""
    count = scenes.shape[0]
    try:
        renderer = SceneRenderer(size=settings["size"], camera=settings["camera"],
                                 lighting=settings["lighting"], edges=settings["edges"])
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    failed = 0
    start = time.perf_counter()
    for index, out_png in jobs:
        tick = time.perf_counter()
        try:
            renderer.render(np.asarray(scenes[index]), out_png,
                            threshold=settings["threshold"], hide_classes=settings["hide"])
        except (ValueError, OSError, RuntimeError) as error:
            print(f"error: scene {index + 1}/{count}: {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{out_png}  (scene {index + 1}/{count}, {time.perf_counter() - tick:.2f} s)")
    if len(jobs) > 1:
        elapsed = time.perf_counter() - start
        print(f"rendered {len(jobs) - failed}/{len(jobs)} scenes in {elapsed:.1f} s "
              f"({elapsed / len(jobs):.2f} s per scene)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
