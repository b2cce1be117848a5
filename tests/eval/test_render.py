"""Off-screen VTK renders: image size, palette colours, hidden ceiling, thresholds and the CLI."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("vtkmodules.vtkRenderingOpenGL2")

from tfgan3d.eval import render  # noqa: E402
from tfgan3d.eval.palette import PALETTE  # noqa: E402

pytestmark = pytest.mark.skipif(render.offscreen_backend_problem() is not None,
                                reason=f"no off-screen OpenGL: "
                                       f"{render.offscreen_backend_problem()}")

FLOOR, WALL, CHAIR, CEILING = 2, 3, 5, 1
SMALL = (160, 120)


def _room():
    """A 40x24x40 room: floor slab, two far walls, a chair-class box and a ceiling."""
    labels = np.zeros((40, 24, 40), np.int64)
    labels[:, 0, :] = FLOOR
    labels[0, :, :] = WALL
    labels[:, :, 0] = WALL
    labels[15:25, 1:9, 15:25] = CHAIR
    labels[:, 23, :] = CEILING
    return labels


def _fraction_of(image, class_id):
    """Fraction of pixels drawn in exactly the class's palette colour (flat lighting)."""
    return np.mean(np.abs(image.astype(int) - PALETTE[class_id]).max(axis=-1) <= 2)


def _read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_render_scene_draws_the_palette_colours(tmp_path):
    out = render.render_scene(_room(), tmp_path / "room.png", size=SMALL, lighting="flat")
    assert out == os.fspath(tmp_path / "room.png")
    assert Image.open(out).size == SMALL
    image = _read(out)
    assert not render.image_is_blank(image)
    for class_id in (FLOOR, WALL, CHAIR):
        assert _fraction_of(image, class_id) > 0.005, class_id
    assert _fraction_of(image, CEILING) == 0  # hidden by default
    assert sorted(os.listdir(tmp_path)) == ["room.png"]  # no temporary file left


def test_show_ceiling_covers_the_room(tmp_path):
    out = render.render_scene(_room(), tmp_path / "room.png", size=SMALL, lighting="flat",
                              hide_classes=(0,))
    assert _fraction_of(_read(out), CEILING) > 0.2


def test_top_view_puts_height_up_x_right_and_z_down(tmp_path):
    labels = np.zeros((40, 24, 32), np.int64)  # X != Z: a transposed layout cannot pass
    labels[:, 0, :] = FLOOR
    labels[30:38, 1:5, 2:10] = CHAIR  # high x, low z
    out = render.render_scene(labels, tmp_path / "top.png", size=SMALL, camera="top",
                              lighting="flat")
    image = _read(out)
    assert _fraction_of(image, FLOOR) > 0.2  # seen from above, the floor slab fills the view
    rows, cols = np.nonzero(np.abs(image.astype(int) - PALETTE[CHAIR]).max(axis=-1) <= 2)
    assert cols.mean() > 0.6 * SMALL[0] and rows.mean() < 0.4 * SMALL[1]


def test_default_lighting_shades_the_faces(tmp_path):
    out = render.render_scene(_room(), tmp_path / "room.png", size=SMALL)
    image = _read(out)
    assert not render.image_is_blank(image)
    # Headlight shading: the chair's three visible faces get three different brightnesses.
    assert len(np.unique(image.reshape(-1, 3), axis=0)) >= 6


def test_nothing_to_draw_is_an_error(tmp_path):
    labels = np.zeros((8, 6, 8), np.int64)
    labels[:, 5, :] = CEILING
    with pytest.raises(ValueError, match="nothing to draw"):
        render.render_scene(labels, tmp_path / "empty.png", size=SMALL)
    assert not (tmp_path / "empty.png").exists()


def test_image_is_blank():
    background = np.full((4, 4, 3), 235, np.uint8)
    assert render.image_is_blank(background)
    assert render.image_is_blank(np.zeros((4, 4, 3), np.uint8))
    drawn = background.copy()
    drawn[1, 2] = PALETTE[CHAIR]
    assert not render.image_is_blank(drawn)


def test_scene_labels_threshold_uses_the_largest_non_empty_probability():
    probs = np.zeros((2, 1, 1, 12), np.float32)
    probs[0, 0, 0, [0, 2, 5]] = [0.5, 0.2, 0.3]  # argmax empty; best object chair at 0.3
    probs[1, 0, 0, [0, 3]] = [0.1, 0.9]
    assert render.scene_labels(probs).ravel().tolist() == [0, WALL]
    assert render.scene_labels(probs, threshold=0.25).ravel().tolist() == [CHAIR, WALL]
    assert render.scene_labels(probs, threshold=0.5).ravel().tolist() == [0, WALL]
    labels = np.array([FLOOR, WALL]).reshape(2, 1, 1)
    assert render.scene_labels(labels, 0.5, probs).ravel().tolist() == [0, WALL]
    with pytest.raises(ValueError, match="threshold applies to probabilities"):
        render.scene_labels(labels, threshold=0.5)
    with pytest.raises(ValueError, match=r"0\.\.11.*\[0, 12\]"):
        render.scene_labels(np.array([0, 12]).reshape(2, 1, 1))


@pytest.fixture
def scenes_file(tmp_path):
    path = tmp_path / "real.npy"
    np.save(path, np.stack([_room(), np.roll(_room(), 5, axis=0)]).astype(np.float32))
    return path


def test_cli_renders_one_scene_with_a_one_based_index(scenes_file, tmp_path, capfd):
    # capfd: with TensorFlow loaded in the test process the rendering runs in a child.
    out = tmp_path / "out" / "second.png"
    assert render.main([str(scenes_file), "-i", "2", "--out", str(out), "--size", "96x64"]) == 0
    assert Image.open(out).size == (96, 64)
    assert str(out) in capfd.readouterr().out


@pytest.mark.parametrize("index", [0, 3])
def test_cli_rejects_an_index_out_of_range(scenes_file, index, capsys):
    with pytest.raises(SystemExit) as exit_info:
        render.main([str(scenes_file), "-i", str(index)])
    assert exit_info.value.code == 1
    assert "valid indices are 1..2" in capsys.readouterr().err


def test_cli_all_writes_one_file_per_scene(scenes_file, tmp_path):
    folder = tmp_path / "renders"
    assert render.main([str(scenes_file), "--all", "--out", str(folder), "--size", "64x48"]) == 0
    assert sorted(os.listdir(folder)) == ["scene_0001.png", "scene_0002.png"]


def test_cli_rejects_threshold_on_labels(scenes_file, capsys):
    with pytest.raises(SystemExit):
        render.main([str(scenes_file), "--threshold", "0.5"])
    assert "probability files" in capsys.readouterr().err


def test_module_runs_as_a_program(tmp_path):
    probs = np.zeros((1, 12, 6, 12, 12), np.float32)
    probs[..., 0] = 1.0
    probs[0, :, 0, :, 0], probs[0, :, 0, :, FLOOR] = 0.4, 0.6
    probs[0, 4:8, 1:3, 4:8, 0], probs[0, 4:8, 1:3, 4:8, CHAIR] = 0.7, 0.3  # dropped at 0.5
    path = tmp_path / "generate.npy"
    np.save(path, probs)
    result = subprocess.run(
        [sys.executable, "-m", "tfgan3d.eval.render", str(path), "-i", "1", "--threshold", "0.5",
         "--size", "64x48", "--lighting", "flat", "--camera", "top"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    image = _read(tmp_path / "generate_0001.png")
    assert _fraction_of(image, FLOOR) > 0.1
    assert _fraction_of(image, CHAIR) == 0
