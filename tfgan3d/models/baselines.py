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


class SimOnlyTwinBaseline(keras.Model):
    """Sim-only with the twin VAE's own networks: E_S -> z -> D_depth, D_seg, trained on sim
    labels alone (no real images, no translation, no MMD): the sim-side terms of the twin VAE's
    stage 2, KL(z_S) + depth MSE(G_D(z_S)) (eq 15) + cross-entropy(G_I(z_S)) (eq 18), with z_S
    reparameterised. At test time E_S encodes the real image to z_mean and both decoders read it.

    Args:
        encoder: image -> (z_mean, z_log_var) (Sim2RealNetworks.encoder_sim).
        depth_decoder: z -> depth in tanh scale 2 d / max_depth - 1.
        seg_decoder: z -> C logits.
        lambda_kl, lambda_depth, lambda_seg, kl_per_unit: as Sim2RealVAE.
    """

    def __init__(self, encoder, depth_decoder, seg_decoder, *, max_depth=10.0, lambda_kl=1.0,
                 lambda_depth=1.0, lambda_seg=1.0, kl_per_unit=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.depth_decoder, self.seg_decoder = encoder, depth_decoder, seg_decoder
        self.max_depth = float(max_depth)
        self.lambdas = (float(lambda_kl), float(lambda_depth), float(lambda_seg))
        self.kl_per_unit = kl_per_unit
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "kl_loss",
                                                                 "depth_loss", "seg_loss")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def trainable_networks_variables(self):
        seen, out = set(), []
        for net in (self.encoder, self.depth_decoder, self.seg_decoder):
            for v in net.trainable_variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    def call(self, image, training=False):
        z = self.encoder(image, training=training)[0]
        depth = (tf.cast(self.depth_decoder(z, training=training), tf.float32) + 1.0) \
            * 0.5 * self.max_depth
        return depth, tf.cast(self.seg_decoder(z, training=training), tf.float32)

    def compute_losses(self, batch, training):
        z_mean, z_log_var = self.encoder(batch["image"], training=training)
        eps = keras.random.normal(tf.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        z = z_mean + tf.exp(0.5 * z_log_var) * eps
        kl = losses.kl_divergence_log_var(z_mean, z_log_var, per_unit=self.kl_per_unit)
        target = 2.0 * tf.clip_by_value(tf.cast(batch["depth"], tf.float32) / self.max_depth,
                                        0.0, 1.0) - 1.0
        depth_loss = losses.mse_loss(target, self.depth_decoder(z, training=training),
                                     batch.get("depth_valid"))
        logits = self.seg_decoder(z, training=training)
        labels = tf.cast(batch["labels"], tf.int32)
        labelled = (labels >= 0) & (labels < tf.shape(logits)[-1])
        seg_loss = losses.pixelwise_cross_entropy(tf.where(labelled, labels, 0), logits,
                                                  labelled)
        w_kl, w_depth, w_seg = self.lambdas
        return w_kl * kl + w_depth * depth_loss + w_seg * seg_loss, kl, depth_loss, seg_loss

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            total, kl, depth_loss, seg_loss = self.compute_losses(batch, training=True)
        variables = self.trainable_networks_variables()
        self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        for name, value in (("loss", total), ("kl_loss", kl), ("depth_loss", depth_loss),
                            ("seg_loss", seg_loss)):
            self.trackers[name].update_state(value)
        return {m.name: m.result() for m in self.metrics}


def train_sim_only_twin(train_ds, networks, optimizer, *, steps, max_depth=10.0,
                        lambda_kl=1.0, lambda_depth=1.0, lambda_seg=1.0, kl_per_unit=True,
                        seed=0, log_every=None):
    """Trains a SimOnlyTwinBaseline on a repeating labelled sim stream.

    Args:
        train_ds: batches of {"image", "depth", "depth_valid", "labels"} of the sim domain.
        networks: freshly built Sim2RealNetworks of the twin VAE's spec (its encoder_sim,
            depth_decoder and seg_decoder are trained; the others are unused).
        optimizer: the twin VAE's stage-2 optimizer settings (e.g. make_optimizers(config)).
        steps: optimizer steps (rounded up to whole multiples of log_every).
    Returns:
        (predict_fn, history) as `train_supervised_baseline`.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    model = SimOnlyTwinBaseline(networks.encoder_sim, networks.depth_decoder,
                                networks.seg_decoder, max_depth=max_depth, lambda_kl=lambda_kl,
                                lambda_depth=lambda_depth, lambda_seg=lambda_seg,
                                kl_per_unit=kl_per_unit, seed=seed, name="sim_only_twin")
    model.compile(optimizer=optimizer, jit_compile=False)
    chunk = log_every or max(1, steps // 10)
    fit = model.fit(train_ds, epochs=math.ceil(steps / chunk), steps_per_epoch=chunk,
                    shuffle=False, verbose=0)
    predict = tf.function(lambda image: model(image, training=False), reduce_retracing=True)
    return predict, {k: [float(v) for v in fit.history[k]] for k in model.trackers}
