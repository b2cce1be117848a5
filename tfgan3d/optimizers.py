"""Optimizers with fused TensorFlow kernels, the learning-rate switch and mixed precision.

`keras.optimizers.Adam` updates each variable with about ten element-wise ops (subtract,
multiply, square, sqrt, divide and three assignments), each a pass over memory. For the pix2pix
generator (54 M weights) that is a fifth of a CPU training step. `Adam` here computes the same
update with TensorFlow's `ResourceApplyAdam` kernel, one pass per variable:

    m <- m + (g - m) (1 - beta_1)
    v <- v + (g^2 - v) (1 - beta_2)
    w <- w - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

which is Keras' formula term for term (t counts from 1), so checkpoints, slot names and results
are interchangeable with `keras.optimizers.Adam`. AMSGrad, sparse gradients and variables
that are not TensorFlow resource variables take Keras' own path.

`learning_rate` is every mode's switch from the config's --lr-schedule to a rate or schedule;
`for_precision` wraps an optimizer in loss scaling under float16.
"""
from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfgan3d")
class Adam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose dense update is one fused kernel per variable."""

    def update_step(self, gradient, variable, learning_rate):
        if (self.amsgrad or keras.backend.backend() != "tensorflow"
                or isinstance(gradient, tf.IndexedSlices) or not hasattr(variable, "handle")):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))


def for_precision(optimizer, config):
    """Wrap `optimizer` in dynamic loss scaling when the run uses float16 on a GPU (bfloat16
    on CPU keeps float32's exponent range and needs none)."""
    if getattr(config, "mixed_precision", False) and tf.config.list_physical_devices("GPU"):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


@keras.saving.register_keras_serializable("tfgan3d")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant `initial` until `decay_start`, then linear to zero at `decay_end` (pix2pix's
    `niter` + `niter_decay` epochs, counted here in optimizer steps)."""

    def __init__(self, initial: float, decay_start: int, decay_end: int):
        if decay_end <= decay_start:
            raise ValueError(f"LinearDecay: decay_end ({decay_end}) must exceed decay_start "
                             f"({decay_start})")
        self.initial, self.decay_start, self.decay_end = initial, decay_start, decay_end

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        frac = (step - self.decay_start) / float(self.decay_end - self.decay_start)
        return self.initial * tf.clip_by_value(1.0 - frac, 0.0, 1.0)

    def get_config(self):
        return {"initial": self.initial, "decay_start": self.decay_start,
                "decay_end": self.decay_end}


def learning_rate(config, base_lr: float, total_steps: int,
                  updates: int | Callable[[int], int] = 1):
    """The learning rate (a float or a schedule) of one optimizer, from the config's
    lr_schedule ("constant", "linear": from lr_decay_start of the run to zero at its end,
    "piecewise": lr_factors between lr_boundaries).

    Schedules are functions of the optimizer's own update counter, which checkpoints restore,
    so a resumed run continues on the same curve. The run's iterations (total_steps,
    lr_boundaries, lr_decay_start) are converted to updates by `updates`: an int k for an
    optimizer stepped k times per iteration, or a function iterations -> updates for one
    stepped on a schedule of its own (SimGAN's players).
    """
    count = (lambda t: t * updates) if isinstance(updates, int) else updates
    if config.lr_schedule == "constant":
        return base_lr
    if config.lr_schedule == "linear":
        start = count(int(round(config.lr_decay_start * total_steps)))
        return LinearDecay(base_lr, start, max(count(total_steps), start + 1))
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [count(b) for b in config.lr_boundaries], [base_lr * f for f in config.lr_factors])
