"""SimGAN (Shrivastava et al. 2017): refine synthetic images with unlabeled real ones.

Symbols of the paper -> names here:
  x                     synthetic        simulator images in [-1, 1], (B, H, W, C)
  y                     real             unlabeled real images in [-1, 1]
  R_theta               refiner          fully convolutional ResNet, x -> x_tilde
  D_phi                 discriminator    patch logits (real, refined), (B, h, w, 2)
  x_tilde = R(x)        refined
  lambda                lambda_reg       weight of the self-regularisation term
  psi                   self_reg_feature identity | mean | gradient
  B, b                  buffer.capacity, the batch size
  K_g, K_d              k_g, k_d         refiner / discriminator updates per iteration
Refiner loss (eq. 4): L_R = l_real(R(x)) + lambda * ||psi(R(x)) - psi(x)||_1, l_real summed over
the patches; discriminator loss (eq. 2): cross-entropy of D on y (label real) and on a mix of
current and past refined images (label refined; section 2.3).

Schedule. One training step is one update of one network, so that every update takes a fresh
mini-batch as in Algorithm 1 ("sample a mini-batch" inside each of the K_g and K_d loops). The
model's `iteration` counter (a variable, saved with the model) picks the update, so one keras
`fit` runs every phase and a resumed run continues where it stopped:
  t < P_R                         refiner step on lambda * l_reg only        (phase 0)
  P_R <= t < P_R + P_D            discriminator step                          (phase 1)
  afterwards, cycles of K_g + K_d: K_g refiner steps on L_R, then K_d
                                  discriminator steps                         (phase 2)
with P_R = pretrain_r_steps and P_D = pretrain_d_steps. The pick is made on the host, between
steps: the model compiles two distributed steps, one per player (`refiner_train_step`,
`discriminator_train_step`), and its train function calls the one whose turn it is
(`refiner_turn(t)`). Each compiled step holds one optimizer update that every replica takes,
so tf.distribute synchronises it as any other model's (a switch inside the graph could not
be: an all-reduce inside one branch of a tf.cond). One code path for one device and many.
(While pretraining, the refiner step still evaluates D, with weight 0: one refiner step.)

History buffer on several replicas: one buffer of the global batch, gathered. In a
discriminator step every replica all-gathers the current refined images of all replicas (the
global batch, in replica order: the order of the global batch the strategy split), mixes that
global batch with the one buffer exactly as one device would (same stateless draws), keeps
its own slice of the mixed batch, and stores the same images in its copy of the buffer. The
copies are mirrored variables updated from the first replica (ONLY_FIRST_REPLICA), so every
replica holds the same buffer, a checkpoint holds it once, and it restores under any strategy
(one device, mirrored, multi-worker, or a different one from the run that saved it). Hence a
discriminator step on N replicas is the single-device step on the global batch. The cost is
one all-gather of the refined batch per discriminator step, and the global batch must split
evenly across the replicas.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfgan3d import losses
from tfgan3d.models.steps import SchemeModel, apply_step, step_logs

ADVERSARIAL = ("local", "global")


def count_updates(iterations: int, *, pretrain_r_steps: int, pretrain_d_steps: int, k_g: int,
                  k_d: int) -> tuple[int, int]:
    """(refiner updates, discriminator updates) in the first `iterations` train steps."""
    t = max(int(iterations), 0)
    r = min(t, pretrain_r_steps)
    d = min(max(t - pretrain_r_steps, 0), pretrain_d_steps)
    cycles, rest = divmod(max(t - pretrain_r_steps - pretrain_d_steps, 0), k_g + k_d)
    return r + cycles * k_g + min(rest, k_g), d + cycles * k_d + max(rest - k_g, 0)


class HistoryBuffer(tf.Module):
    """A fixed-size buffer of past refined images for the discriminator (section 2.3).

    Each discriminator mini-batch of b refined images holds the b - b//2 first current refined
    images and b//2 images drawn from the buffer without replacement; afterwards b//2 current
    images (the first ones) replace b//2 random buffer entries. While the buffer fills, new
    images are appended instead, and until it holds b//2 images the discriminator sees the b
    current images only. Draws are stateless random ops seeded by (seed, number of calls), and
    the images, the fill count and the call count are variables: tf.train.Checkpoint saves and
    restores the buffer, and a restored buffer draws as the original would have.

    Args:
        capacity: B, images held.
        image_shape: (H, W, C) of one image.
        seed: integer seed of the draws.
    Raises:
        ValueError: capacity < 1.
    """

    def __init__(self, capacity: int, image_shape, seed: int = 0, name: str = "history_buffer"):
        super().__init__(name=name)
        if int(capacity) < 1:
            raise ValueError(f"history buffer capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.seed = int(seed)
        # Under a strategy every replica computes the same update from the gathered global
        # batch (module docstring); the first replica's is kept.
        first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.images = tf.Variable(tf.zeros((self.capacity, *self.image_shape)),
                                  trainable=False, name="images", aggregation=first)
        self.filled = tf.Variable(0, dtype=tf.int64, trainable=False, name="filled",
                                  aggregation=first)
        self.calls = tf.Variable(0, dtype=tf.int64, trainable=False, name="calls",
                                 aggregation=first)

    def _order(self, salt):
        """A random order of the filled indices [0, filled), then the empty ones."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), 2 * self.calls + salt])
        keys = tf.random.stateless_uniform([self.capacity], seed=seed)
        keys = tf.where(tf.range(self.capacity, dtype=tf.int64) < self.filled, keys, 2.0)
        return tf.argsort(keys)

    def mix(self, refined):
        """The refined part of a discriminator mini-batch; updates the buffer.

        Args:
            refined: current refined images, (b, H, W, C) with b // 2 <= capacity.
        Returns:
            (b, H, W, C) float32: refined[:b - b//2] then b//2 buffer images (once the buffer
            holds b//2 images; `refined` itself before).
        """
        refined = tf.cast(refined, self.images.dtype)
        b = tf.shape(refined, out_type=tf.int64)[0]
        half = b // 2
        tf.debugging.assert_less_equal(half, tf.constant(self.capacity, tf.int64), message=(
            f"history buffer: half the batch must fit in its {self.capacity} images"))
        # 1. b//2 past images, without replacement, drawn before this batch is stored
        past = tf.gather(self.images, self._order(0)[:half])
        mixed = tf.where(self.filled >= half,
                         tf.concat([refined[:b - half], past], axis=0), refined)
        # 2. store b//2 current images: append while filling, else overwrite random entries
        slots = self.filled + tf.range(half)
        random_slots = tf.gather(self._order(1), tf.maximum(slots - self.capacity, 0))
        slots = tf.where(slots < self.capacity, slots, tf.cast(random_slots, tf.int64))
        # (scatter_update: the scatter that mirrored variables support; slots are distinct)
        self.images.scatter_update(tf.IndexedSlices(refined[:half], slots))
        self.filled.assign(tf.minimum(self.filled + half, self.capacity))
        self.calls.assign_add(1)
        return mixed


class _Last(keras.metrics.Metric):
    """The last value seen (the phase of the latest step)."""

    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)
        # Every replica sees the same value: the first one's, not their sum.
        self.value = self.add_variable(shape=(), initializer="zeros", name="value",
                                       aggregation="only_first_replica")

    def update_state(self, value):
        self.value.assign(tf.cast(value, self.value.dtype))

    def result(self):
        return self.value

    def reset_state(self):
        self.value.assign(0.0)


class SimGAN(SchemeModel):
    """Refiner and local discriminator trained by Algorithm 1 with the pretraining schedule.

    Args:
        refiner: keras.Model x -> x_tilde, same shape.
        discriminator: keras.Model image -> logits (B, h, w, 2) ("local") or (B, 2) ("global").
        lambda_reg: lambda of eq. 4.
        self_reg_feature: psi: "identity" (the paper's default), "mean" or "gradient".
        adversarial: "local" (section 2.2) or "global" (the ablation, one pair per image).
        use_history: mix past refined images into D's batches (section 2.3); False is the
            ablation.
        history_size: B, images in the buffer.
        pretrain_r_steps, pretrain_d_steps: P_R, P_D of the schedule above.
        k_g, k_d: K_g, K_d of Algorithm 1.
        seed: seeds the history buffer's draws.
    Raises:
        ValueError: unknown options, counts out of range, or a discriminator whose output does
            not match `adversarial`.
    """

    def __init__(self, refiner: keras.Model, discriminator: keras.Model, *,
                 lambda_reg: float = 0.1, self_reg_feature: str = "identity",
                 adversarial: str = "local", use_history: bool = True,
                 history_size: int = 25600, pretrain_r_steps: int = 1000,
                 pretrain_d_steps: int = 200, k_g: int = 50, k_d: int = 1, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        if adversarial not in ADVERSARIAL:
            raise ValueError(f"adversarial: expected one of {', '.join(ADVERSARIAL)}, "
                             f"got {adversarial!r}")
        if self_reg_feature not in losses.SELF_REG_FEATURES:
            raise ValueError(f"self_reg_feature: expected one of "
                             f"{', '.join(losses.SELF_REG_FEATURES)}, got {self_reg_feature!r}")
        for name, value, low in (("pretrain_r_steps", pretrain_r_steps, 0),
                                 ("pretrain_d_steps", pretrain_d_steps, 0),
                                 ("k_g", k_g, 1), ("k_d", k_d, 1)):
            if int(value) < low:
                raise ValueError(f"{name}: expected >= {low}, got {value}")
        rank = len(discriminator.output_shape)
        if (adversarial == "local") != (rank == 4) or rank not in (2, 4):
            raise ValueError(f"adversarial={adversarial!r} needs a discriminator with "
                             f"{'(B, h, w, 2)' if adversarial == 'local' else '(B, 2)'} "
                             f"logits, got output shape {discriminator.output_shape}")
        self.refiner = refiner
        self.discriminator = discriminator
        self.lambda_reg = float(lambda_reg)
        self.self_reg_feature = self_reg_feature
        self.adversarial = adversarial
        self.pretrain_r_steps, self.pretrain_d_steps = int(pretrain_r_steps), int(pretrain_d_steps)
        self.k_g, self.k_d = int(k_g), int(k_d)
        self.buffer = (HistoryBuffer(history_size, discriminator.input_shape[1:], seed)
                       if use_history else None)
        if adversarial == "local":
            self._d_loss_fn = losses.local_adversarial_discriminator_loss
            self._r_adv_loss_fn = losses.local_adversarial_refiner_loss
        else:
            self._d_loss_fn = losses.global_adversarial_discriminator_loss
            self._r_adv_loss_fn = losses.global_adversarial_refiner_loss
        # Every replica counts the same steps: one count, kept from the first replica.
        self.iteration = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                         trainable=False, name="iteration",
                                         aggregation="only_first_replica")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("r_loss", "r_adv_loss", "r_reg_loss", "d_loss", "d_acc_real",
                          "d_acc_refined")}
        self.trackers["phase"] = _Last("phase")
        self.built = True  # the networks are built; nothing is created on the first call

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, r_optimizer, d_optimizer, **kwargs):
        if kwargs.get("steps_per_execution", 1) != 1:
            raise ValueError(f"SimGAN picks the player of each step on the host: "
                             f"steps_per_execution must be 1, got "
                             f"{kwargs['steps_per_execution']}")
        super().compile(optimizer=None, **kwargs)  # players have their own optimizers
        self.r_optimizer = r_optimizer
        self.d_optimizer = d_optimizer
        # Create the slots now, so that a checkpoint can be restored before the first step.
        r_optimizer.build(self.refiner.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def call(self, synthetic, training=False):
        return self.refiner(synthetic, training=training)

    def phase_of(self, t: int) -> tuple[int, bool]:
        """(phase, refiner_turn) of iteration `t` (a Python int, read on the host): phase 0, 1
        or 2 as in the module docstring; refiner_turn is True for a refiner update, False for
        a discriminator update."""
        t = int(t)
        start = self.pretrain_r_steps + self.pretrain_d_steps
        phase = 0 if t < self.pretrain_r_steps else 1 if t < start else 2
        refiner_turn = phase == 0 or (phase == 2 and (t - start) % (self.k_g + self.k_d)
                                      < self.k_g)
        return phase, refiner_turn

    def _phase(self):
        """The phase of the current iteration, in the graph (the logged `phase`)."""
        t = self.iteration
        return tf.where(t < self.pretrain_r_steps, 0,
                        tf.where(t < self.pretrain_r_steps + self.pretrain_d_steps, 1, 2))

    def refiner_train_step(self, batch):
        """R step: theta <- step on L_R = l_real(D(R(x))) + lambda ||psi(R(x)) - psi(x)||_1
        (eq. 4; l_real weighted 0 while pretraining, phase 0), phi fixed."""
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        synthetic = batch["synthetic"]
        phase = self._phase()
        adversarial = tf.cast(phase == 2, tf.float32)
        R = self.refiner
        with tf.GradientTape() as tape:
            refined = R(synthetic, training=True)
            r_reg = losses.self_regularization_loss(refined, synthetic, self.self_reg_feature)
            r_adv = self._r_adv_loss_fn(self.discriminator(refined, training=True))
            r_loss = adversarial * r_adv + self.lambda_reg * r_reg
        apply_step(self.r_optimizer, tape, r_loss, R.trainable_variables)
        self.trackers["r_loss"].update_state(r_loss)
        self.trackers["r_reg_loss"].update_state(r_reg)
        self.trackers["r_adv_loss"].update_state(r_adv, sample_weight=adversarial)
        return self._end_step(phase)

    def discriminator_train_step(self, batch):
        """D step: x_tilde = R(x), half of the global batch's refined images swapped for
        buffer images (section 2.3); phi <- step on L_D = CE(D(y), real) + CE(D(x_tilde),
        refined) (eq. 2)."""
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        synthetic, real = batch["synthetic"], batch["real"]
        phase = self._phase()
        D = self.discriminator
        refined = tf.stop_gradient(self.refiner(synthetic, training=True))
        if self.buffer is not None:
            refined = self._mix_global(refined)
        with tf.GradientTape() as tape:
            real_logits = D(real, training=True)
            refined_logits = D(refined, training=True)
            d_loss = self._d_loss_fn(real_logits, refined_logits)
        apply_step(self.d_optimizer, tape, d_loss, D.trainable_variables)
        self.trackers["d_loss"].update_state(d_loss)
        self.trackers["d_acc_real"].update_state(
            tf.cast(real_logits[..., 0] > real_logits[..., 1], tf.float32))
        self.trackers["d_acc_refined"].update_state(
            tf.cast(refined_logits[..., 1] > refined_logits[..., 0], tf.float32))
        return self._end_step(phase)

    def _mix_global(self, refined):
        """This replica's share of the buffer-mixed global batch (module docstring)."""
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return self.buffer.mix(refined)
        everyone = context.all_gather(refined, axis=0)
        mixed = self.buffer.mix(everyone)
        size = tf.shape(refined)[0]
        first = tf.cast(context.replica_id_in_sync_group, tf.int32) * size
        return mixed[first:first + size]

    def _end_step(self, phase):
        self.trackers["phase"].update_state(phase)
        self.iteration.assign_add(1)
        return step_logs({m.name: m.result() for m in self.metrics})

    def train_step(self, batch):
        """The step of the player whose turn it is at the current iteration (eager callers;
        `fit` picks between the two compiled steps, see make_train_function)."""
        _, refiner_turn = self.phase_of(int(self.iteration.numpy()))
        return (self.refiner_train_step if refiner_turn else
                self.discriminator_train_step)(batch)

    def make_train_function(self, force=False):
        """Keras' train function: one compiled distributed step per player (Keras' own
        wrapper of a step: strategy.run, reduction of the logs, jit_compile), the player
        picked on the host from the iteration counter before each step."""
        if self.train_function is not None and not force:
            return self.train_function
        steps = {True: self._make_function(self.refiner_train_step),
                 False: self._make_function(self.discriminator_train_step)}

        def function(iterator):
            _, refiner_turn = self.phase_of(int(self.iteration.numpy()))
            return steps[refiner_turn](iterator)

        self.train_function = function
        return function
