"""The supervised baselines (the sim2real evaluation's bounds): a few steps lower the loss, the
prediction has the asked shapes and depth range, and the U-Net depth follows the image size."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.models.baselines import baseline_n_down, train_supervised_baseline


def tiny_labelled_batch(size=16, classes=3):
    """Depth and labels that follow the image: learnable by a few steps of a U-Net."""
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    depth = (2.0 + 3.0 * (image[..., :1] + 1)).astype(np.float32)
    labels = np.digitize(image[..., 1], [-0.3, 0.3]).astype(np.int32)
    labels[:, 0] = 255
    return {"image": image, "depth": depth, "depth_valid": np.ones_like(depth),
            "labels": labels}


def test_supervised_baseline_lowers_its_loss():
    ds = tf.data.Dataset.from_tensors(tiny_labelled_batch()).repeat()
    predict, history = train_supervised_baseline(ds, steps=40, num_classes=3, ngf=8, n_down=2,
                                                lr=2e-3, log_every=10)
    assert len(history["loss"]) == 4
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["seg_loss"][-1] < history["seg_loss"][0]
    depth, logits = predict(tiny_labelled_batch()["image"])
    assert depth.shape == (2, 16, 16, 1) and logits.shape == (2, 16, 16, 3)
    assert 0.0 <= float(tf.reduce_min(depth)) and float(tf.reduce_max(depth)) <= 10.0


def test_baseline_n_down_is_the_deepest_dividing_level():
    assert baseline_n_down(256) == 8
    assert baseline_n_down((48, 64)) == 4          # 48 = 3 * 16
    with pytest.raises(ValueError, match="divisible by 4"):
        baseline_n_down((6, 8))
