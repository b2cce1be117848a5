"""The built-in eye simulator: determinism, labels, geometry, domains and the pupil estimator."""
import numpy as np
import pytest

from tfgan3d.data.eyes import (EYE_DOMAINS, EYE_HEIGHT, EYE_SPLITS, EYE_WIDTH, MAX_PITCH_DEG,
                               MAX_YAW_DEG, pupil_centre, render_eye, render_eyes, render_split)


@pytest.fixture(scope="module")
def batches():
    return {domain: render_eyes(64, domain, seed=0) for domain in EYE_DOMAINS}


def local_texture(images):
    """Median |discrete Laplacian| per image: 0 on flat shading, > 0 with texture and noise."""
    x = images[..., 0]
    lap = (4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2]
           - x[:, 1:-1, 2:])
    return np.median(np.abs(lap), axis=(1, 2))


@pytest.mark.parametrize("domain", EYE_DOMAINS)
def test_same_index_same_eye_and_independent_of_batch(domain):
    first, again = render_eye(5, domain), render_eye(5, domain)
    for key in ("image", "gaze", "pupil"):
        np.testing.assert_array_equal(first[key], again[key])
    batch = render_eyes(3, domain, start=4)
    np.testing.assert_array_equal(batch["image"][1, ..., 0], first["image"])
    np.testing.assert_array_equal(batch["gaze"][1], first["gaze"])
    assert not np.array_equal(first["image"], render_eye(6, domain)["image"])
    assert not np.array_equal(first["gaze"], render_eye(5, domain, seed=1)["gaze"])


@pytest.mark.parametrize("domain", EYE_DOMAINS)
def test_shapes_ranges_and_unit_gaze_within_the_angle_box(batches, domain):
    eyes = batches[domain]
    assert eyes["image"].shape == (64, EYE_HEIGHT, EYE_WIDTH, 1) == (64, 35, 55, 1)
    assert eyes["image"].dtype == eyes["gaze"].dtype == eyes["pupil"].dtype == np.float32
    assert eyes["image"].min() >= 0 and eyes["image"].max() <= 1
    assert eyes["image"].std() > 0.05
    gaze = eyes["gaze"].astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(gaze, axis=1), 1.0, atol=1e-6)
    assert (gaze[:, 2] < 0).all()  # towards the camera
    yaw = np.degrees(np.arctan2(gaze[:, 0], -gaze[:, 2]))
    pitch = np.degrees(np.arcsin(-gaze[:, 1]))
    assert np.abs(yaw).max() <= MAX_YAW_DEG + 1e-4 and np.abs(pitch).max() <= MAX_PITCH_DEG + 1e-4
    assert np.abs(yaw).max() > 15 and np.abs(pitch).max() > 10  # the box is used, not a point
    assert (eyes["pupil"][:, 0] > 10).all() and (eyes["pupil"][:, 0] < 45).all()
    assert (eyes["pupil"][:, 1] > 5).all() and (eyes["pupil"][:, 1] < 30).all()


def test_same_index_same_labels_in_both_domains_but_other_appearance(batches):
    synthetic, real = batches["synthetic"], batches["real-like"]
    np.testing.assert_array_equal(synthetic["gaze"], real["gaze"])
    np.testing.assert_array_equal(synthetic["pupil"], real["pupil"])
    assert np.abs(synthetic["image"] - real["image"]).mean() > 0.02


def test_real_like_has_local_texture_that_synthetic_lacks(batches):
    synthetic = local_texture(batches["synthetic"]["image"])
    real = local_texture(batches["real-like"]["image"])
    assert synthetic.max() < 0.005  # flat shading: the Laplacian vanishes away from edges
    assert real.min() > 0.005


def test_the_renderer_varies_lighting_lashes_and_glints_in_both_domains(batches):
    # What UnityEyes varies is in the synthetic images too: the eyes' brightness spreads
    # over more than the flat materials' range, lashes and glints are drawn.
    synthetic = batches["synthetic"]["image"][..., 0]
    assert np.percentile(synthetic.mean(axis=(1, 2)), 90) / np.percentile(
        synthetic.mean(axis=(1, 2)), 10) > 1.4
    # a corneal glint: a bright spot next to the dark pupil
    y, x = np.mgrid[0:EYE_HEIGHT, 0:EYE_WIDTH]
    pupil = batches["synthetic"]["pupil"]
    near = np.hypot(x - pupil[:, :1, None], y - pupil[:, 1:, None]) < 6
    span = [img[m].max() - img[m].min() for img, m in zip(synthetic, near)]
    assert np.mean(np.array(span) > 0.25) > 0.8
    # the same scene in both domains: real-like brightness follows the synthetic one
    real = batches["real-like"]["image"][..., 0]
    assert np.corrcoef(synthetic.mean(axis=(1, 2)), real.mean(axis=(1, 2)))[0, 1] > 0.8


def test_content_only_is_the_real_like_eye_without_its_random_patterns(batches):
    content = render_eyes(64, "real-like", seed=0, content_only=True)
    real = batches["real-like"]
    np.testing.assert_array_equal(content["gaze"], real["gaze"])
    # no sensor noise, skin texture or iris streaks: only the systematic camera (its blur
    # leaves the image smooth away from edges, up to the 8-bit steps)
    assert local_texture(content["image"]).max() <= 2 / 255 + 1e-6
    assert local_texture(real["image"]).min() >= 3 / 255
    # the systematic part carries the camera's response: levels between black and white
    assert content["image"].min() >= 0.05 and content["image"].max() <= 0.85
    assert np.abs(content["image"] - real["image"]).mean() < 0.05   # the random part is small
    again = render_eyes(2, "real-like", seed=0, start=1, content_only=True)
    np.testing.assert_array_equal(again["image"][0], content["image"][1])
    with pytest.raises(ValueError, match="content_only applies to the real-like domain"):
        render_eyes(2, "synthetic", content_only=True)


@pytest.mark.parametrize("domain", EYE_DOMAINS)
def test_pupil_moves_right_with_yaw_and_up_with_pitch(domain):
    sweep = [render_eye(3, domain, yaw_deg=yaw) for yaw in (-25, -10, 0, 10, 25)]
    label_x = [eye["pupil"][0] for eye in sweep]
    seen_x = [pupil_centre(eye["image"])[0] for eye in sweep]
    assert np.all(np.diff(label_x) > 1.0) and np.all(np.diff(seen_x) > 1.0)
    assert all(eye["gaze"][0] > 0 for eye in sweep[3:])
    sweep = [render_eye(3, domain, pitch_deg=pitch) for pitch in (-15, 0, 15)]
    seen_y = [pupil_centre(eye["image"])[1] for eye in sweep]
    assert np.all(np.diff(seen_y) < -1.0)  # looking up moves the pupil up (y down)


def test_pupil_centre_recovers_the_rendered_pupil_on_synthetic_eyes():
    eyes = render_eyes(300, "synthetic", seed=2)
    error = np.linalg.norm(pupil_centre(eyes["image"]) - eyes["pupil"], axis=1)
    # glints on the pupil and lashes near it (drawn since the renderer gained them) bias the
    # centroid by up to ~2 px; without the closing and opening the coarse step lands on a
    # lash cluster 11-19 px away in 6 of these 300 eyes
    assert error.max() < 2.5 and error.mean() < 0.7


def test_pupil_centre_of_a_drawn_disc_and_shapes():
    y, x = np.mgrid[0:35, 0:55]
    image = np.where((x - 20.0) ** 2 + (y - 12.0) ** 2 <= 6.0, 0.1, 0.5)
    image = np.where((x - 20.0) ** 2 + (y - 12.0) ** 2 <= 30.0, image, 0.9)
    np.testing.assert_allclose(pupil_centre(image), (20.0, 12.0), atol=1e-4)
    assert pupil_centre(image[..., None]).shape == (2,)
    assert pupil_centre(np.stack([image, image])[..., None]).shape == (2, 2)
    with pytest.raises(ValueError, match="got"):
        pupil_centre(np.zeros((2, 3, 4, 5)))


def test_splits_use_disjoint_indices_and_hide_unlabeled_labels():
    starts = sorted((s.start, name) for name, s in EYE_SPLITS.items() if s.domain == "real-like")
    assert starts[1][0] - starts[0][0] >= 10 ** 8
    assert EYE_SPLITS["synthetic-train"].start + 10 ** 8 <= EYE_SPLITS["real-train"].start
    assert not EYE_SPLITS["real-train"].labeled and EYE_SPLITS["real-test"].labeled
    real_train = render_split("real-train", 2)
    assert set(real_train) == {"image"}
    test, clean = render_split("real-test", 2), render_split("synthetic-test", 2)
    np.testing.assert_array_equal(test["gaze"], clean["gaze"])  # same geometry, clean look
    np.testing.assert_array_equal(test["image"][0, ..., 0],
                                  render_eye(EYE_SPLITS["real-test"].start, "real-like")["image"])
    assert not np.array_equal(render_split("synthetic-train", 2)["gaze"], test["gaze"])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown eye domain 'virtual'"):
        render_eye(0, "virtual")
    with pytest.raises(ValueError, match="non-negative"):
        render_eyes(-1, "synthetic")
    with pytest.raises(ValueError, match="real-test"):
        render_split("test", 1)
    assert render_eyes(0, "real-like")["image"].shape == (0, 35, 55, 1)
