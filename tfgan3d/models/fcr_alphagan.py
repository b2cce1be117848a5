"""3D FCR-alphaGAN: fully convolutional refined auto-encoding GAN for voxel scenes.

An alphaGAN (Rosca et al. 2017) on 80 x 48 x 80 x 12 one-hot scenes with a 5 x 3 x 5 x 16
latent, trained in two phases: (1) encoder, generator, discriminator and code discriminator;
(2) a SimGAN-style refiner (Shrivastava et al. 2017) against the discriminator, with the
encoder and generator frozen. Facts of the original: shared/reference/fcr_alphagan.md.

Symbols (paper -> code):
    x                   real                one-hot scenes (B, X, H, Z, C)
    E                   encoder             x -> [z_mean, z_log_sigma]
    G                   generator           code -> class probabilities
    D                   discriminator       scene -> logit
    C                   code_discriminator  code -> logit
    R                   refiner             probabilities -> refined probabilities
    z ~ N(0, I)         z                   prior sample of `latent_shape`
    z_hat = E(x)        z_hat               z_mean; vae: z_mean + exp(z_log_sigma) * eps
    x_rec = G(z_hat)    rec
    x_gen = G(z)        fake
    R(x_rec), R(x_gen)  refined_rec, refined_fake

Variants: "alphagan" (the paper's model), "vae" (KL term instead of the code discriminator:
no C, encoder loss recons + kl_weight * KL), "latent1d" (the 1-D 1200-value latent baseline,
alphaGAN losses), "vae1d" (the 1-D latent with the VAE's losses: the seed's 1-D baseline,
which differs from "vae" only in the shape of the latent).

Batch norm, one rule everywhere: G's moving statistics are those of the reconstruction path
G(E(x)). In training, G(z) normalises with its own batch statistics (as the original always
did) and leaves the moving statistics as they were, so that a prior batch (std 1) never mixes
with the codes E(x) (std about 0.08 early on) in one set of averages. Everything that runs G
outside training (phase 2, evaluation, samples, export) uses these moving statistics: it
decodes as the reconstructions were decoded in training. E sees only real scenes, so its
moving statistics are one path's anyway. The code discriminator C sees z and E(x) in ONE
call: its batch norm then standardises them together and keeps the scale gap visible (two
calls would standardise each away and leave C at chance).

Phase 2: the refiner starts as the identity (tfgan3d.networks.voxel) and D sees refined
scenes as straight-through one-hot samples (`refiner_d_input="straight_through"`: the forward
value is one_hot(argmax R), the gradient that of R), so D cannot win by telling soft from
one-hot; "soft" gives D the probabilities as before. `gan_loss="legacy"` reproduces the
original's swapped GAN losses (tfgan3d.losses.GAN_LOSSES) for users who want its dynamics.

How one phase-1 iteration differs from the original's sequence of separate updates (each of
which recomputed its whole forward graph: 716.7 GFLOP per sample at the paper's shapes):
  - Each (encoder step, generator step) pair shares one forward pass x -> E -> G -> D. Both
    gradients come from it, then both updates are applied. The original's generator step saw
    G(E'(x)) with E' the just-updated encoder; ours sees G(E(x)) from before that update.
    The two differ by one Adam step of E (lr 1e-4), i.e. the generator update is computed
    one encoder update earlier, as in simultaneous-gradient GAN training.
  - The discriminator and code-discriminator steps reuse the last pair's forward pass: the
    fakes G(z), G(E(x)) and codes E(x) are those from before that pair's updates (the
    original recomputed them after). D and C had not changed since, so their gradients are
    exact for those inputs. Only D(x) is an extra forward pass (C(z) is part of every pair's
    joint call C([z, E(x)])).
  - One prior draw z per iteration serves every step.
With the paper's two pairs this is about 495 GFLOP per sample (`eg_steps=2`); one pair per
iteration (`eg_steps=1`, the schedule of shared/bench's "minimal" port) is about 292
(tools/bench_fcr.py counts them). Phase 2 likewise takes the refiner's and the
discriminator's gradients from one forward pass.
"""
import keras
import tensorflow as tf
from keras import ops

from tfgan3d.losses import GAN_LOSSES, kl_divergence_log_sigma, voxel_reconstruction_loss
from tfgan3d.models.steps import SchemeModel, apply_updates, gradients, step_logs
from tfgan3d.networks.voxel import FCRNetworks, VoxelNetSpec, build_fcr_networks

VARIANTS = ("alphagan", "vae", "latent1d", "vae1d")
VAE_VARIANTS = ("vae", "vae1d")          # KL term, no code discriminator
LATENT1D_VARIANTS = ("latent1d", "vae1d")
REFINER_D_INPUTS = ("straight_through", "soft")


@keras.saving.register_keras_serializable(package="tfgan3d")
class FCRAlphaGAN(SchemeModel):
    """3D FCR-alphaGAN and its baselines, trained by `fit` in two phases (see `set_phase`).

    Args:
        networks: E, G, D, C and R from `tfgan3d.networks.voxel.build_fcr_networks`, with the
            variant's latent (`spec.latent1d` for latent1d / vae1d) and no C for vae / vae1d.
        variant: "alphagan", "vae", "latent1d" or "vae1d".
        gamma: weight of the positive term of the reconstruction loss.
        kl_weight: weight of the KL term (vae only).
        eg_steps: (encoder step, generator step) pairs per phase-1 iteration (paper: 2).
        gan_loss: "bce" (intended sigmoid cross-entropy) or "legacy" (the original's swap).
        refiner_d_input: what D sees of the refined scenes in phase 2: "straight_through"
            (one-hot forward, soft gradient) or "soft" (the probabilities).
        seed: seeds the noise (and, in `from_config`, the weights).
    Raises:
        ValueError: for an unknown variant, gan_loss or refiner_d_input, eg_steps < 1, or
            networks that do not fit the variant.
    """

    def __init__(self, networks: FCRNetworks, *, variant="alphagan", gamma=0.97,
                 kl_weight=1.0, eg_steps=2, gan_loss="bce", refiner_d_input="straight_through",
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}")
        if gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {tuple(GAN_LOSSES)}; got {gan_loss!r}")
        if refiner_d_input not in REFINER_D_INPUTS:
            raise ValueError(f"refiner_d_input must be one of {REFINER_D_INPUTS}; got "
                             f"{refiner_d_input!r}")
        self.gan_loss, self.refiner_d_input = gan_loss, refiner_d_input
        if int(eg_steps) < 1:
            raise ValueError(f"eg_steps must be >= 1; got {eg_steps}")
        if networks.spec.latent1d != (variant in LATENT1D_VARIANTS):
            raise ValueError(f"variant {variant!r} needs networks built with latent1d="
                             f"{variant in LATENT1D_VARIANTS}; got latent1d="
                             f"{networks.spec.latent1d}")
        if (networks.code_discriminator is None) != (variant in VAE_VARIANTS):
            raise ValueError(f"variant {variant!r} " + (
                "has no code discriminator: build the networks with code_discriminator=False"
                if variant in VAE_VARIANTS else "trains a code discriminator: got None"))
        self.spec = networks.spec
        self.variant, self.gamma, self.kl_weight = variant, float(gamma), float(kl_weight)
        self.eg_steps, self.seed = int(eg_steps), int(seed)
        self.encoder, self.generator = networks.encoder, networks.generator
        self.discriminator = networks.discriminator
        self.code_discriminator = networks.code_discriminator
        self.refiner = networks.refiner
        self.noise = keras.random.SeedGenerator(seed)
        self.phase_trackers = {
            1: ("recons_loss", "e_loss", "g_loss", "d_loss",
                "kl_loss" if variant in VAE_VARIANTS else "c_loss", "code_mean", "code_std"),
            2: ("r_recons_loss", "r_loss", "d_refined_loss"),
        }
        self._trackers = {name: keras.metrics.Mean(name=name)
                          for names in self.phase_trackers.values() for name in names}
        self._phase = 1
        self.built = True                      # every network was built above

    # ------------------------------------------------------------------ set-up
    def compile(self, *, e_optimizer, g_optimizer, d_optimizer, c_optimizer=None,
                r_optimizer=None, **kwargs):
        """Takes one optimizer per network (c_optimizer unused by vae; r_optimizer: phase 2).

        XLA stays off unless `jit_compile=True` is passed: on CPU it makes these 3D
        convolutions tens of times slower.
        """
        given = [o for o in (e_optimizer, g_optimizer, d_optimizer, c_optimizer, r_optimizer)
                 if o is not None]
        if len({id(o) for o in given}) != len(given):
            raise ValueError("each network needs its own optimizer instance; got one instance "
                             "for several")
        if self.code_discriminator is not None and c_optimizer is None:
            raise ValueError(f"variant {self.variant!r} trains a code discriminator: pass "
                             "c_optimizer")
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=None, **kwargs)  # players have their own optimizers
        self.e_optimizer, self.g_optimizer, self.d_optimizer = e_optimizer, g_optimizer, d_optimizer
        self.c_optimizer, self.r_optimizer = c_optimizer, r_optimizer
        for optimizer, network in ((e_optimizer, self.encoder), (g_optimizer, self.generator),
                                   (d_optimizer, self.discriminator),
                                   (c_optimizer, self.code_discriminator),
                                   (r_optimizer, self.refiner)):
            if optimizer is not None and network is not None and not optimizer.built:
                optimizer.build(network.trainable_variables)

    @property
    def metrics(self):
        return list(self._trackers.values())

    @property
    def phase(self):
        """1: encoder, generator, discriminators; 2: refiner and discriminator."""
        return self._phase

    def set_phase(self, phase):
        """Switches the training phase; the next `fit` / `train_on_batch` retraces train_step."""
        if phase not in (1, 2):
            raise ValueError(f"phase must be 1 or 2; got {phase!r}")
        if phase == 2 and getattr(self, "r_optimizer", None) is None and self.compiled:
            raise ValueError("phase 2 trains the refiner: compile with r_optimizer")
        self._phase = phase
        self.train_function = None

    # ------------------------------------------------------------------ helpers
    @property
    def latent_shape(self):
        """Shape of one code, e.g. (5, 3, 5, 16) or (1200,) for latent1d."""
        return self.spec.latent_shape

    def sample_z(self, n):
        """n prior samples z ~ N(0, I) of `latent_shape`."""
        return keras.random.normal((n, *self.latent_shape), seed=self.noise)

    def encode(self, x, training=False):
        """z_hat: the code of one-hot scenes x (the mean, for every variant)."""
        return self.encoder(x, training=training)[0]

    def decode(self, z, training=False):
        """Class probabilities G(z)."""
        return self.generator(z, training=training)

    def refine(self, probs, training=False):
        """Refined class probabilities R(probs)."""
        return self.refiner(probs, training=training)

    def call(self, x, training=False):
        """Reconstruction G(E(x)) of one-hot scenes (or integer class labels)."""
        return self.decode(self.encode(self._one_hot(x), training), training)

    SPEC_FIELDS = ("grid", "num_classes", "widths", "latent_channels", "kernel",
                   "refiner_channels", "refiner_blocks", "code_d_units", "use_bias")

    def get_config(self):
        return {**super().get_config(),
                **{name: getattr(self.spec, name) for name in self.SPEC_FIELDS},
                "variant": self.variant, "gamma": self.gamma, "kl_weight": self.kl_weight,
                "eg_steps": self.eg_steps, "gan_loss": self.gan_loss,
                "refiner_d_input": self.refiner_d_input, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        """The model with fresh networks of the config's sizes, seeded by its seed."""
        config = dict(config)
        sizes = {name: config.pop(name) for name in cls.SPEC_FIELDS if name in config}
        variant = config.get("variant", "alphagan")
        spec = VoxelNetSpec(**sizes, latent1d=variant in LATENT1D_VARIANTS)
        networks = build_fcr_networks(spec, seed=config.get("seed", 0),
                                      code_discriminator=variant not in VAE_VARIANTS)
        return cls(networks, **config)

    # ------------------------------------------------------------------ training
    def _one_hot(self, scenes):
        """float32 one-hot scenes from one-hot scenes or integer labels (B, X, H, Z)."""
        if "int" in keras.backend.standardize_dtype(scenes.dtype):
            scenes = ops.one_hot(scenes, self.spec.num_classes)
        return ops.cast(scenes, "float32")

    @staticmethod
    def _update(tape, loss, network, optimizer):
        """One player's update (steps.gradients) on its own weights; weights the loss does not
        reach (alphaGAN's z_log_sigma head) are left out."""
        return optimizer, gradients(optimizer, tape, loss, network.trainable_variables)

    def _track(self, **values):
        for name, value in values.items():
            self._trackers[name].update_state(value)
        return step_logs({name: self._trackers[name].result()
                          for name in self.phase_trackers[self.phase]})

    def train_step(self, data):
        real = self._one_hot(keras.utils.unpack_x_y_sample_weight(data)[0])
        if self.phase == 1:
            return self._phase1_step(real)
        return self._phase2_step(real)

    def _decode_prior(self, z):
        """G(z) in training mode, normalised with its own batch statistics, leaving G's moving
        statistics those of the reconstruction path (module docstring)."""
        moving = self.generator.non_trainable_variables
        saved = [tf.identity(v.value) for v in moving]
        fake = self.generator(z, training=True)
        with tf.control_dependencies([fake]):
            for v, value in zip(moving, saved):
                v.assign(value)
        return fake

    def code_logits(self, z, z_hat):
        """C's logits (real, fake) of prior codes z and codes E(x), from ONE call on both, so
        that C's batch norm cannot standardise their difference away."""
        logits = self.code_discriminator(ops.concatenate([z, z_hat], 0), training=True)
        return ops.split(logits, 2)

    def _phase1_step(self, real):
        # 1. z ~ N(0, I), one draw for the iteration.
        # 2. eg_steps times: one forward x -> E -> z_hat -> G -> x_rec, z -> G -> x_gen
        #    (batch statistics, moving ones untouched), D(x_gen), D(x_rec), C([z, z_hat]);
        #    encoder step on recons + code loss (vae: + KL), generator step on recons + GAN
        #    loss of D(x_gen) and D(x_rec).
        # 3. On the last pass also D(x): discriminator step (x real; x_gen, x_rec fake) and
        #    code-discriminator step (z real, z_hat fake).
        batch = ops.shape(real)[0]
        z = self.sample_z(batch)
        vae = self.variant in VAE_VARIANTS
        gan = GAN_LOSSES[self.gan_loss]
        for step in range(self.eg_steps):
            last = step == self.eg_steps - 1
            with tf.GradientTape() as e_tape, tf.GradientTape() as g_tape, \
                    tf.GradientTape() as d_tape, tf.GradientTape() as c_tape:
                z_mean, z_log_sigma = self.encoder(real, training=True)
                if vae:
                    eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype,
                                             seed=self.noise)
                    z_hat = z_mean + ops.exp(z_log_sigma) * eps
                else:
                    z_hat = z_mean
                rec = self.generator(z_hat, training=True)
                fake = self._decode_prior(z)
                # D normalises per sample, so one call on both kinds of fakes is two calls.
                fake_logits, rec_logits = ops.split(
                    self.discriminator(ops.concatenate([fake, rec], 0), training=True), 2)
                recons_loss = voxel_reconstruction_loss(real, rec, self.gamma)
                g_loss = recons_loss + gan["generator"](fake_logits, rec_logits)
                if vae:
                    kl_loss = kl_divergence_log_sigma(z_mean, z_log_sigma)
                    e_loss = recons_loss + self.kl_weight * kl_loss
                else:
                    code_real_logits, code_fake_logits = self.code_logits(z, z_hat)
                    e_loss = gan["code_encoder"](code_fake_logits) + recons_loss
                if last:
                    real_logits = self.discriminator(real, training=True)
                    d_loss = gan["discriminator"](real_logits, fake_logits, rec_logits)
                    if not vae:
                        c_loss = gan["code_discriminator"](code_real_logits, code_fake_logits)
            updates = [self._update(e_tape, e_loss, self.encoder, self.e_optimizer),
                       self._update(g_tape, g_loss, self.generator, self.g_optimizer)]
            if last:
                updates.append(self._update(d_tape, d_loss, self.discriminator,
                                            self.d_optimizer))
                if not vae:
                    updates.append(self._update(c_tape, c_loss, self.code_discriminator,
                                                self.c_optimizer))
            apply_updates(updates)
            codes = ops.cast(z_mean, "float32")
            self._track(recons_loss=recons_loss, e_loss=e_loss, g_loss=g_loss,
                        code_mean=ops.mean(codes), code_std=ops.std(codes),
                        **({"kl_loss": kl_loss} if vae else {}))
        return self._track(d_loss=d_loss, **({} if vae else {"c_loss": c_loss}))

    def _d_view(self, refined):
        """What D sees of refined scenes: one_hot(argmax) forward with R's gradient
        (straight-through), or the probabilities themselves ("soft")."""
        if self.refiner_d_input == "soft":
            return refined
        hard = ops.one_hot(ops.argmax(refined, -1), self.spec.num_classes, dtype=refined.dtype)
        return refined + ops.stop_gradient(hard - refined)

    def _phase2_step(self, real):
        # 1. x_rec = G(E(x)), x_gen = G(z) from the frozen E and G, in inference mode (the
        #    moving statistics of the reconstruction path, as evaluation decodes).
        # 2. One forward R(x_rec), R(x_gen) -> D (straight-through one-hot by default), and
        #    D(x): refiner step on recons of R(x_rec) + GAN loss of both refined kinds;
        #    discriminator step with them as fakes (from before the refiner's update; D had
        #    not changed since).
        batch = ops.shape(real)[0]
        rec = self.decode(self.encode(real))
        fake = self.decode(self.sample_z(batch))
        gan = GAN_LOSSES[self.gan_loss]
        with tf.GradientTape() as r_tape, tf.GradientTape() as d_tape:
            # R has no batch statistics, so one call on both kinds is two calls.
            refined = self.refiner(ops.concatenate([rec, fake], 0), training=True)
            refined_rec = ops.split(refined, 2)[0]
            rec_logits, fake_logits = ops.split(
                self.discriminator(self._d_view(refined), training=True), 2)
            r_recons_loss = voxel_reconstruction_loss(real, refined_rec, self.gamma)
            r_loss = r_recons_loss + gan["generator"](fake_logits, rec_logits)
            real_logits = self.discriminator(real, training=True)
            d_loss = gan["discriminator"](real_logits, fake_logits, rec_logits)
        apply_updates([self._update(r_tape, r_loss, self.refiner, self.r_optimizer),
                       self._update(d_tape, d_loss, self.discriminator, self.d_optimizer)])
        return self._track(r_recons_loss=r_recons_loss, r_loss=r_loss, d_refined_loss=d_loss)
