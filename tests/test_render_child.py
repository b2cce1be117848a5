"""Renders in a child process: images and per-scene errors come back, exceptions keep their
type, a child past its time-out is an error here (not a hang)."""
import numpy as np
import pytest

pytest.importorskip("vtkmodules.vtkRenderingOpenGL2")

from tfgan3d import render_child  # noqa: E402
from tfgan3d.eval import render  # noqa: E402
from tfgan3d.eval.palette import PALETTE  # noqa: E402

FLOOR = 2


def test_render_scenes_returns_an_image_per_drawable_scene():
    if render.offscreen_backend_problem():
        pytest.skip(f"no off-screen OpenGL: {render.offscreen_backend_problem()}")
    scenes = np.zeros((2, 8, 4, 8), np.uint8)
    scenes[0, :, 0, :] = FLOOR                     # scene 1 stays empty: nothing to draw
    images, errors = render_child.render_scenes(scenes, (64, 48), lighting="flat",
                                                camera="top", timeout_s=120)
    assert images[0].shape == (48, 64, 3) and images[0].dtype == np.uint8
    assert errors[0] is None
    floor = np.abs(images[0].astype(int) - PALETTE[FLOOR]).max(-1) <= 2
    assert floor.mean() > 0.2                      # the floor seen from above, in its colour
    assert images[1] is None and "nothing to draw" in errors[1]


def test_call_reraises_the_childs_exception_with_its_type():
    with pytest.raises(ValueError, match="labels must be in 0..11"):
        render_child.call("scene_labels", np.full((2, 2, 2), 40), timeout_s=120)


def test_a_child_past_its_time_out_is_a_render_child_error():
    with pytest.raises(render_child.RenderChildError, match="timed out"):
        render_child.call("scene_labels", np.zeros((2, 2, 2)), timeout_s=0.01)
