"""pix2pix (Isola et al. 2017) for monocular depth: RGB -> depth.

Symbols of the paper -> names here:
  x        real_a    RGB input in [-1, 1]
  y        real_b    depth target, 2 * d / max_depth - 1
  G(x)     fake_b    generated depth
  D(x, y)  d_real    PatchGAN logits of the real pair
  D(x, G)  d_fake    PatchGAN logits of the generated pair
  lambda   lambda_l1
Objective: G* = arg min_G max_D L_cGAN(G, D) + lambda * L_L1(G); the L1 term is taken over
valid depth pixels only (invalid sensor depth carries no target).

With `mask_d` the discriminator judges only what the sensor measured: D sees
  fake_b_seen = valid * G(x) + (1 - valid) * y
in place of G(x), so both pairs hold the sensor's own value (-1) at invalid pixels and G gets
no adversarial gradient there. Without it, holes are black (-1) in every real pair and D
rewards a generator that paints them (an extension beyond the paper, which filtered faulty
depth maps out of its training set by hand).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfgan3d import losses
from tfgan3d.models.steps import SchemeModel, apply_step, step_logs

D_UPDATES = ("alternating", "simultaneous")


class Pix2Pix(SchemeModel):
    """Conditional GAN wrapper around a generator and a PatchGAN discriminator.

    Args:
        generator: keras.Model real_a -> fake_b.
        discriminator: keras.Model [real_a, b] -> patch logits.
        lambda_l1: weight of the L1 term (100 in the paper).
        d_update: "alternating" = the paper's schedule (a D step, then a G step that sees the
            updated D: D runs once more on the fake pair); "simultaneous" = both players'
            gradients from one forward pass (the TensorFlow tutorial's variant, cheaper).
        mask_invalid: take L1 over valid target pixels only.
        mask_d: show D the generated depth with the target's invalid pixels replaced by the
            target's values, as in the real pair (needs "valid_b" in the batch).
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *,
                 lambda_l1: float = 100.0, d_update: str = "alternating",
                 mask_invalid: bool = True, mask_d: bool = False, **kwargs):
        super().__init__(**kwargs)
        if d_update not in D_UPDATES:
            raise ValueError(f"d_update: expected one of {', '.join(D_UPDATES)}, got {d_update!r}")
        self.generator = generator
        self.discriminator = discriminator
        self.lambda_l1 = float(lambda_l1)
        self.d_update = d_update
        self.mask_invalid = mask_invalid
        self.mask_d = bool(mask_d)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("g_loss", "g_gan_loss", "g_l1_loss", "d_loss", "d_real_acc",
                          "d_fake_acc")}
        self.built = True  # the networks are built; nothing is created on the first call

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(optimizer=None, **kwargs)  # players have their own optimizers
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Create the slots now, so that a checkpoint can be restored before the first step.
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def call(self, real_a, training=False):
        return self.generator(real_a, training=training)

    def _g_loss(self, real_b, fake_b, d_fake, mask):
        g_gan = losses.gan_generator_loss(d_fake)
        g_l1 = losses.masked_l1_loss(real_b, fake_b, mask)
        return g_gan + self.lambda_l1 * g_l1, g_gan, g_l1

    def seen_by_d(self, fake_b, real_b, valid_b):
        """What D is shown of fake_b: fake_b itself, or with `mask_d` the target's values at
        the target's invalid pixels (no gradient reaches G there)."""
        if not self.mask_d:
            return fake_b
        if valid_b is None:
            raise ValueError("mask_d needs the batch's 'valid_b' mask of valid target pixels")
        valid = tf.cast(valid_b, fake_b.dtype)
        return valid * fake_b + (1.0 - valid) * tf.cast(real_b, fake_b.dtype)

    def train_step(self, batch):
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        real_a, real_b = batch["real_a"], batch["real_b"]
        mask = batch.get("valid_b") if self.mask_invalid else None
        D = self.discriminator
        # 1. fake_b = G(real_a); with mask_d, D sees it masked as the target is
        # 2. D step: min 1/2 [BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)]
        # 3. G step: min BCE(D(x, G(x)), 1) + lambda * |y - G(x)|_1 over valid pixels
        if self.d_update == "alternating":
            with tf.GradientTape() as g_tape:
                fake_b = self.generator(real_a, training=True)
                fake_seen = self.seen_by_d(fake_b, real_b, batch.get("valid_b"))
            with tf.GradientTape() as d_tape:
                d_real = D([real_a, real_b], training=True)
                d_fake = D([real_a, tf.stop_gradient(fake_seen)], training=True)
                d_loss = 0.5 * losses.gan_discriminator_loss(d_real, d_fake)
            apply_step(self.d_optimizer, d_tape, d_loss, D.trainable_variables)
            with g_tape:  # the same tape records on: G's step sees the updated D
                d_fake_for_g = D([real_a, fake_seen], training=True)
                g_loss, g_gan, g_l1 = self._g_loss(real_b, fake_b, d_fake_for_g, mask)
        else:
            with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
                fake_b = self.generator(real_a, training=True)
                d_real = D([real_a, real_b], training=True)
                d_fake = D([real_a, self.seen_by_d(fake_b, real_b, batch.get("valid_b"))],
                           training=True)
                d_loss = 0.5 * losses.gan_discriminator_loss(d_real, d_fake)
                g_loss, g_gan, g_l1 = self._g_loss(real_b, fake_b, d_fake, mask)
            apply_step(self.d_optimizer, d_tape, d_loss, D.trainable_variables)
        apply_step(self.g_optimizer, g_tape, g_loss, self.generator.trainable_variables)

        values = {"g_loss": g_loss, "g_gan_loss": g_gan, "g_l1_loss": g_l1, "d_loss": d_loss,
                  "d_real_acc": tf.reduce_mean(tf.cast(d_real > 0, tf.float32)),
                  "d_fake_acc": tf.reduce_mean(tf.cast(d_fake < 0, tf.float32))}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return step_logs({m.name: m.result() for m in self.metrics})
