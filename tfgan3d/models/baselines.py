"""Supervised baselines: networks trained directly on labelled images, the bounds an
adaptation scheme is compared with (eval/sim2real_eval.py trains two: on simulation only, the
lower bound, and on the real set's own labels, the upper bound).

`SupervisedBaseline` is the scheme (a keras.Model with its own train_step);
`build_baseline_network` its U-Net; `train_supervised_baseline` the recipe that trains one on
a repeating labelled stream and returns its prediction function.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfgan3d import losses
from tfgan3d.networks.pix2pix import build_unet_generator


def baseline_n_down(size, most=8):
    """The deepest U-Net (<= most levels) whose strides divide both sides of `size`."""
    h, w = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    for n in range(most, 1, -1):
        if h % 2 ** n == 0 and w % 2 ** n == 0:
            return n
    raise ValueError(f"image size {h}x{w}: the baseline U-Net needs sides divisible by 4")


def build_baseline_network(num_classes, *, n_down, ngf=32, name="baseline"):
    """pix2pix's U-Net (instance norm, no dropout) with 1 + C linear outputs: depth, logits."""
    unet = build_unet_generator(3, 1 + num_classes, size=(None, None), n_down=n_down, ngf=ngf,
                                norm="instance", bottleneck_norm=False, dropout=0.0, name=name)
    return keras.Model(unet.input, unet.get_layer("out_deconv").output, name=name)


class SupervisedBaseline(keras.Model):
    """Depth and segmentation supervised on one domain, with the losses of the sim2real model:
    depth MSE in the tanh scale 2 d / max_depth - 1 over valid pixels (eqs 15-16), pixel-wise
    cross-entropy over labelled pixels (eqs 18-19).

    Args:
        network: image -> (B, H, W, 1 + C) raw outputs.
        max_depth: metres at tanh = +1.
    """

    def __init__(self, network, *, max_depth=10.0, depth_weight=1.0, seg_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.max_depth = float(max_depth)
        self.depth_weight, self.seg_weight = float(depth_weight), float(seg_weight)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "depth_loss",
                                                                 "seg_loss")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, image, training=False):
        raw = tf.cast(self.network(image, training=training), tf.float32)
        depth = (tf.tanh(raw[..., :1]) + 1.0) * 0.5 * self.max_depth
        return depth, raw[..., 1:]

    def compute_losses(self, batch, training):
        raw = tf.cast(self.network(batch["image"], training=training), tf.float32)
        target = 2.0 * tf.clip_by_value(batch["depth"] / self.max_depth, 0.0, 1.0) - 1.0
        depth_loss = losses.mse_loss(target, tf.tanh(raw[..., :1]), batch["depth_valid"])
        labels = tf.cast(batch["labels"], tf.int32)
        labelled = (labels >= 0) & (labels < raw.shape[-1] - 1)
        seg_loss = losses.pixelwise_cross_entropy(tf.where(labelled, labels, 0), raw[..., 1:],
                                                  labelled)
        return self.depth_weight * depth_loss + self.seg_weight * seg_loss, depth_loss, seg_loss

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            total, depth_loss, seg_loss = self.compute_losses(batch, training=True)
        variables = self.network.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        for name, value in (("loss", total), ("depth_loss", depth_loss),
                            ("seg_loss", seg_loss)):
            self.trackers[name].update_state(value)
        return {m.name: m.result() for m in self.metrics}


def train_supervised_baseline(train_ds, *, steps, num_classes, max_depth=10.0, ngf=32,
                              n_down=None, lr=2e-4, beta1=0.5, seed=0, log_every=None,
                              name="baseline"):
    """Trains a SupervisedBaseline U-Net on a repeating labelled stream.

    Args:
        train_ds: batches of {"image", "depth", "depth_valid", "labels"} (255 ignored), e.g.
            `sim2real_data.make_labelled_dataset(..., training=True)`.
        steps: optimizer steps (rounded up to whole multiples of log_every).
        n_down: U-Net levels; None: the deepest that divides the image size (at most 8).
        log_every: steps per history entry; None: steps / 10.
    Returns:
        (predict_fn, history): predict_fn(image [-1, 1]) -> (depth metres [B, H, W, 1],
        logits [B, H, W, C]); history {"loss", "depth_loss", "seg_loss"}: one mean per
        log_every steps.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    size = train_ds.element_spec["image"].shape[1:3]
    keras.utils.set_random_seed(seed)
    network = build_baseline_network(num_classes, n_down=n_down or baseline_n_down(size),
                                     ngf=ngf, name=name)
    model = SupervisedBaseline(network, max_depth=max_depth, name=f"{name}_model")
    model.compile(optimizer=keras.optimizers.Adam(lr, beta_1=beta1), jit_compile=False)
    chunk = log_every or max(1, steps // 10)
    fit = model.fit(train_ds, epochs=math.ceil(steps / chunk), steps_per_epoch=chunk,
                    shuffle=False, verbose=0)
    predict = tf.function(lambda image: model(image, training=False), reduce_retracing=True)
    return predict, {k: [float(v) for v in fit.history[k]] for k in model.trackers}
