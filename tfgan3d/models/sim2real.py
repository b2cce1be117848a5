"""Sim2Real twin VAE with a shared latent space and auxiliary depth / segmentation decoders
(Raghavan, Chakravarty & Shrivastava, "Sim2Real for Self-Supervised Monocular Depth and
Segmentation").

Symbols of the paper -> names here:
  x_S, x_R            sim, real            RGB images of the two domains, in [-1, 1]
  E_S, E_R            encoder_sim, encoder_real   -> (z_mean, z_log_var)
  G_S, G_R            decoder_sim, decoder_real   z -> image
  shared layers       shared_encoder (row 10, inside E_S and E_R),
                      shared_decoder (row 11, inside G_S and G_R)
  z_S, z_R            z_sim, z_real        z = z_mean + exp(z_log_var / 2) * eps, every pass
  a ~ N(0, I)         prior_sim, prior_real
  x'_R = G_R(z_S)     sim_to_real          a sim image translated to the real domain
  x'_S = G_S(z_R)     real_to_sim
  z'_R = E_R(x'_R)    z_trans              (stage 2)
  z'_S = E_S(x'_S)    z_back               (stage 2)
  G_D  (D_depth)      depth_decoder        z -> depth in [-1, 1] = 2 d / max_depth - 1
  G_I  (D_seg)        seg_decoder          z -> C class logits
  d_T, labels         depth_target, labels paired sim ground truth

Stage 1 (eqs 1-10), unpaired x_S and x_R, trains E_S, E_R, G_S, G_R by default:
  L = lambda_kl (KL_S + KL_R) + lambda_rec (MSE_S + MSE_R) + lambda_mmd (MMD_S + MMD_R)
      + lambda_cycle (CC_S + CC_R)
  The expected log-likelihood inside eqs 2-3 is, for a Gaussian decoder of fixed variance,
  the squared error of eqs 4-5 up to scale; it is counted once, as the MSE terms. Eq 10 lists
  "eight functions" and names MMD_R and CC_S twice by a typo; all eight are summed here.
Stage 2 (eqs 11-20), paired sim (depth, labels) and unpaired real, trains E_S, E_R, D_depth,
D_seg by default (G_S and G_R translate, frozen):
  L = lambda_kl (KL(z'_R) + KL(z_S)) + lambda_rec2 (|x'_R - G_R(z'_R)|^2 + |x_S - G_S(z_S)|^2)
      + lambda_mmd (MMD(z_S, z'_R) + MMD(z'_S, z_R))
      + lambda_depth (MSE(d_T, G_D(z_S)) + MSE(d_T, G_D(z'_R)))
      + lambda_seg (CE(labels, G_I(z_S)) + CE(labels, G_I(z'_R)))
  Eqs 17 and 20 share their KL and MMD terms; they are counted once. Depth MSE is taken over
  valid depth pixels in the [-1, 1] scale of the tanh output; labels outside 0..C-1 (the
  data's 255 = ignore) carry no loss.
Option `mmd_pairing="unpaired"` (not the paper's; default "paper"): both stages add
lambda_mmd * MMD_u(z_S, z_R), the unbiased MMD (losses.mmd_rbf_unbiased) between the codes of
the unpaired sim and real batches E_S(x_S), E_R(x_R), beside the paper's terms; logged as
mmd_unpaired_loss. The paper's MMD terms only compare a code with the code of its own
translation (or with N(0, I)); this one pulls the two domains' codes of real images together.
Recipe options (not the paper's; issue 28). The defaults of this class are the paper's
(`RECIPES["paper"]`); the trainer's `--recipe transfer` picks other values (RECIPES):
  stage2_real "anchor"   stage 2 keeps stage 1's real-image terms: + lambda_kl KL(E_R(x_R))
                         + lambda_rec |x_R - G_R(z_R)|^2 + lambda_mmd MMD(z_R, a ~ N(0, I))
                         (logged kl_real_loss, rec_real_loss, mmd_real_loss). In the paper's
                         stage 2 the only term that sees a real image is eq 14, whose paired
                         V-statistic is lowest when E_R gives every image one narrow code.
  eq14                   "paper": MMD(z'_S, z_R) on samples (V-statistic); "unbiased_means":
                         MMD_u(mean of E_S(x'_S), mean of E_R(x_R)); "off": not counted
                         (mmd_r2s_loss logged as 0).
  align_means            "stage2" / "both": + lambda_mmd MMD_u(mean E_S(x_S), mean E_R(x_R))
                         (logged mmd_align_loss) in stage 2 / in both stages: the codes of real
                         images pulled to where E_S puts sim images, on the means the decoders
                         read at test.
  aux_input "mean"       D_depth and D_seg are trained on z_mean (and z'_R's mean), what they
                         read at test, instead of reparameterised samples.
  encoder_variance       "fixed": UNIT's encoder, z = z_mean + eps with unit noise in training;
                         the z_log_var head is ignored and the KL is |z_mean|^2 / 2.
Collapse probe (`set_probe`): every `every` steps of a stage, E_R and G_R on a fixed batch of
real images (means, training=False, no noise drawn) give probe_sigma_real (mean posterior
sigma), probe_spread_real (std of z_mean across the images, mean over code values) and
probe_rec_real (MSE of G_R(z_mean) to the images) into the logs; in stage 2 the first probe
whose spread is under `fraction` x the stage-1 reference (`set_probe_reference`) prints a
warning naming the step and sets collapse_alarm_step. The probe's variables are not in the
checkpoints (older checkpoints load unchanged).
KL terms are per latent unit by default (`kl_per_unit`) so that, like the per-pixel MSE, they
do not grow with the image size; all weights default to eq 10's ones.
Networks not trained in a stage run with training=False (frozen batch-norm statistics).
Under a distribution strategy each replica takes the MMD terms over its own part of the batch.
"""
from __future__ import annotations

import sys

import keras
import tensorflow as tf

from tfgan3d import losses
from tfgan3d.models.steps import SchemeModel, apply_step, step_logs
from tfgan3d.networks.sim2real import Sim2RealNetworks

GROUPS = ("encoders", "decoders", "aux")
MMD_PAIRINGS = ("paper", "unpaired")
# Recipe options (module docstring): name -> allowed values, the paper's first.
RECIPE_CHOICES = {"stage2_real": ("none", "anchor"), "eq14": ("paper", "unbiased_means", "off"),
                  "align_means": ("none", "stage2", "both"), "aux_input": ("sample", "mean"),
                  "encoder_variance": ("learned", "fixed")}
# --recipe NAME: the value of each option (an explicit option overrides its recipe's).
# "transfer" (README, issue 28; quick seed 0, stage 2 from one stage-1 checkpoint) keeps E_R's
# posterior sigma and the alignment of the two domains' codes where the paper's stage 2 starts
# to collapse them (sigma 0.904 -> 0.909 vs 0.755, MMD^2 0.007 vs 0.199); on real-like
# abs_rel / mIoU the two tied at that budget. Over seeds it is not measured yet.
RECIPES = {"paper": {k: v[0] for k, v in RECIPE_CHOICES.items()},
           "transfer": dict(stage2_real="anchor", eq14="unbiased_means", align_means="stage2",
                            aux_input="mean", encoder_variance="learned")}
PROBE_TERMS = ("probe_sigma_real", "probe_spread_real", "probe_rec_real", "collapse_alarm_step")


def recipe_options(recipe: str = "paper", **overrides) -> dict:
    """The recipe's option values with the overrides that are not None; ValueError names a
    bad recipe or value."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe: expected one of {', '.join(RECIPES)}, got {recipe!r}")
    out = dict(RECIPES[recipe])
    for key, value in overrides.items():
        if key not in RECIPE_CHOICES:
            raise ValueError(f"unknown recipe option {key!r}")
        if value is None:
            continue
        if value not in RECIPE_CHOICES[key]:
            raise ValueError(f"{key}: expected one of {', '.join(RECIPE_CHOICES[key])}, got "
                             f"{value!r}")
        out[key] = value
    return out


class _ProbeState:
    """The collapse probe's latest values. A plain object, so that Keras and tf.train do not
    track its variables: checkpoints stay what they were without the probe."""

    def __init__(self):
        agg = tf.VariableAggregation.ONLY_FIRST_REPLICA

        def var(value, dtype=tf.float32):
            return tf.Variable(value, dtype=dtype, trainable=False, aggregation=agg)
        self.sigma, self.spread, self.rec = var(0.0), var(0.0), var(0.0)
        self.reference = var(0.0)           # stage 1's spread; 0: unknown (no alarm)
        self.alarm_step = var(0, tf.int64)  # the step the alarm fired at; 0: not fired
STAGE1_TERMS = ("stage1_loss", "kl_sim_loss", "kl_real_loss", "rec_sim_loss", "rec_real_loss",
                "mmd_sim_loss", "mmd_real_loss", "cycle_sim_loss", "cycle_real_loss")
STAGE2_TERMS = ("stage2_loss", "kl_sim_loss", "kl_trans_loss", "rec_sim_loss", "rec_trans_loss",
                "mmd_s2r_loss", "mmd_r2s_loss", "depth_sim_loss", "depth_trans_loss",
                "seg_sim_loss", "seg_trans_loss", "seg_sim_acc")


def parse_groups(value, what: str = "groups") -> tuple:
    """"encoders,aux" or a sequence -> a tuple of GROUPS names."""
    names = tuple(v.strip() for v in (value.split(",") if isinstance(value, str) else value)
                  if v.strip())
    bad = [n for n in names if n not in GROUPS]
    if bad or not names:
        raise ValueError(f"{what}: expected a comma-separated subset of {', '.join(GROUPS)}, "
                         f"got {value!r}")
    return names


class Sim2RealVAE(SchemeModel):
    """The twin VAE of both stages; `set_stage(1 | 2)` picks the objective of train_step.

    Args:
        networks: the eight networks of `build_sim2real_networks`.
        lambda_kl, lambda_rec, lambda_mmd, lambda_cycle: stage-1 weights (eqs 2-9).
        lambda_rec2: weight of the reconstruction terms inside eqs 11-12 (stage 2).
        lambda_depth, lambda_seg: stage-2 task weights (eqs 15-16, 18-19).
        stage1_trains, stage2_trains: networks trained in each stage, subsets of GROUPS
            ("encoders": E_S, E_R; "decoders": G_S, G_R; "aux": D_depth, D_seg).
        mmd_sigma: Gaussian kernel width (None: sqrt of the latent size, see losses.mmd_rbf).
        kl_per_unit: KL per latent unit instead of summed over the units.
        max_depth: metres mapped to +1 of the depth decoder's tanh.
        seed: seed of the reparameterisation and prior noise.
        sample_at_inference: `call` decodes a sampled z instead of z_mean.
        mmd_pairing: "paper" (eqs 6-7, 13-14 only) or "unpaired" (also MMD_u(E_S(x_S),
            E_R(x_R)) in both stages; see the module docstring).
        stage2_real, eq14, align_means, aux_input, encoder_variance: recipe options
            (RECIPE_CHOICES; the defaults are the paper's; see the module docstring).
    """

    def __init__(self, networks: Sim2RealNetworks, *, lambda_kl: float = 1.0,
                 lambda_rec: float = 1.0, lambda_mmd: float = 1.0, lambda_cycle: float = 1.0,
                 lambda_rec2: float = 1.0, lambda_depth: float = 1.0, lambda_seg: float = 1.0,
                 stage1_trains="encoders,decoders", stage2_trains="encoders,aux",
                 mmd_sigma: float | None = None, kl_per_unit: bool = True,
                 max_depth: float = 10.0, seed: int | None = None,
                 sample_at_inference: bool = False, mmd_pairing: str = "paper",
                 stage2_real: str = "none", eq14: str = "paper", align_means: str = "none",
                 aux_input: str = "sample", encoder_variance: str = "learned", **kwargs):
        super().__init__(**kwargs)
        if max_depth <= 0:
            raise ValueError(f"max_depth: expected > 0 metres, got {max_depth}")
        self.networks = networks
        self.encoder_sim, self.encoder_real = networks.encoder_sim, networks.encoder_real
        self.decoder_sim, self.decoder_real = networks.decoder_sim, networks.decoder_real
        self.depth_decoder, self.seg_decoder = networks.depth_decoder, networks.seg_decoder
        self.weights_of = {"kl": lambda_kl, "rec": lambda_rec, "mmd": lambda_mmd,
                           "cycle": lambda_cycle, "rec2": lambda_rec2, "depth": lambda_depth,
                           "seg": lambda_seg}
        # String keys: Keras wraps attribute dicts for checkpointing, which needs them.
        self.trains = {"stage1": parse_groups(stage1_trains, "stage1_trains"),
                       "stage2": parse_groups(stage2_trains, "stage2_trains")}
        self.mmd_sigma = mmd_sigma
        self.kl_per_unit = kl_per_unit
        self.max_depth = float(max_depth)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.sample_at_inference = sample_at_inference
        if mmd_pairing not in MMD_PAIRINGS:
            raise ValueError(f"mmd_pairing: expected one of {', '.join(MMD_PAIRINGS)}, got "
                             f"{mmd_pairing!r}")
        self.mmd_pairing = mmd_pairing
        self.recipe = recipe_options(stage2_real=stage2_real, eq14=eq14,
                                     align_means=align_means, aux_input=aux_input,
                                     encoder_variance=encoder_variance)
        self.stage = 1
        extra = ("mmd_unpaired_loss",) if mmd_pairing == "unpaired" else ()
        extra1 = extra + (("mmd_align_loss",) if align_means == "both" else ())
        extra2 = (extra + (("mmd_align_loss",) if align_means != "none" else ())
                  + (("kl_real_loss", "rec_real_loss", "mmd_real_loss")
                     if stage2_real == "anchor" else ()))
        self.trackers = {"stage1": {n: keras.metrics.Mean(name=n) for n in STAGE1_TERMS + extra1},
                         "stage2": {n: keras.metrics.Mean(name=n) for n in STAGE2_TERMS + extra2}}
        self.probe_images = None
        self._probe = _ProbeState()
        self.built = True  # the networks are built; nothing is created on the first call

    # ------------------------------------------------------------------ set-up

    def group_models(self, group: str) -> list:
        return {"encoders": [self.encoder_sim, self.encoder_real],
                "decoders": [self.decoder_sim, self.decoder_real],
                "aux": [self.depth_decoder, self.seg_decoder]}[group]

    def stage_variables(self, stage: int) -> list:
        """Trainable variables of the networks trained in `stage`, each once (shared layers
        belong to two networks)."""
        seen, out = set(), []
        for group in self.trains[f"stage{stage}"]:
            for net in self.group_models(group):
                for v in net.trainable_variables:
                    if id(v) not in seen:
                        seen.add(id(v))
                        out.append(v)
        return out

    @property
    def metrics(self):
        return list(self.trackers[f"stage{self.stage}"].values())

    def compile(self, stage1_optimizer, stage2_optimizer, **kwargs):
        """Takes one optimizer per stage; Keras' own (unused) default is not created."""
        super().compile(optimizer=None, **kwargs)  # each stage has its own optimizer
        self.stage_optimizers = {"stage1": stage1_optimizer, "stage2": stage2_optimizer}
        # Create the slots now, so that a checkpoint can be restored before the first step.
        stage1_optimizer.build(self.stage_variables(1))
        stage2_optimizer.build(self.stage_variables(2))

    def set_stage(self, stage: int) -> None:
        """Switches the objective; the next fit builds a new train function."""
        if stage not in (1, 2):
            raise ValueError(f"stage: expected 1 or 2, got {stage!r}")
        self.stage = stage
        self.train_function = None      # train_step branches on the stage in Python

    # ------------------------------------------------------------------ pieces

    def _training(self, group: str) -> bool:
        return group in self.trains[f"stage{self.stage}"]

    def encode(self, encoder, image, training):
        """(z, z_mean, z_log_var) with the reparameterisation trick."""
        z_mean, z_log_var = encoder(image, training=training)
        if self.recipe["encoder_variance"] == "fixed":    # UNIT: unit noise, no variance head
            z_log_var = tf.zeros_like(z_mean)
        eps = keras.random.normal(tf.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + tf.exp(0.5 * z_log_var) * eps, z_mean, z_log_var

    def _prior(self, z):
        return keras.random.normal(tf.shape(z), dtype=z.dtype, seed=self.seed_generator)

    def _kl(self, z_mean, z_log_var):
        return losses.kl_divergence_log_var(z_mean, z_log_var, per_unit=self.kl_per_unit)

    def _mmd(self, a, b):
        return losses.mmd_rbf(a, b, self.mmd_sigma)

    def depth_target(self, depth):
        """Metres -> the tanh scale of the depth decoder."""
        return 2.0 * tf.clip_by_value(tf.cast(depth, tf.float32) / self.max_depth, 0.0, 1.0) - 1.0

    def depth_metres(self, depth):
        return (tf.cast(depth, tf.float32) + 1.0) * 0.5 * self.max_depth

    def code(self, encoder, image, training=False, sample=None):
        """z_mean, or a reparameterised sample (`sample`; default `sample_at_inference`).
        The mean draws no noise: it leaves the random stream of training untouched."""
        sample = self.sample_at_inference if sample is None else sample
        if sample:
            return self.encode(encoder, image, training)[0]
        return encoder(image, training=training)[0]

    def call(self, real, training=False, sample=None):
        """Inference path of the real domain: image -> {"depth" (metres), "seg_logits"}."""
        z = self.code(self.encoder_real, real, training, sample)
        return {"depth": self.depth_metres(self.depth_decoder(z, training=training)),
                "seg_logits": self.seg_decoder(z, training=training)}

    def translate(self, images, to: str, training=False, sample=None):
        """sim -> real (to="real": G_R(E_S(x))) or real -> sim (to="sim": G_S(E_R(x)))."""
        if to not in ("real", "sim"):
            raise ValueError(f"translate: `to` must be 'real' or 'sim', got {to!r}")
        encoder, decoder = ((self.encoder_sim, self.decoder_real) if to == "real"
                            else (self.encoder_real, self.decoder_sim))
        return decoder(self.code(encoder, images, training, sample), training=training)

    # ------------------------------------------------------------------ objectives

    def stage1_losses(self, sim, real):
        """Eqs 2-10 on unpaired batches; returns (total, {term: value})."""
        enc, dec = self._training("encoders"), self._training("decoders")
        w = self.weights_of
        # 1. z_S ~ q(z | x_S), z_R ~ q(z | x_R) (reparameterised)
        z_sim, mean_sim, log_var_sim = self.encode(self.encoder_sim, sim, enc)
        z_real, mean_real, log_var_real = self.encode(self.encoder_real, real, enc)
        # 2. reconstructions G_S(z_S), G_R(z_R): eqs 4, 5 (and KL, eqs 2, 3, below)
        rec_sim = self.decoder_sim(z_sim, training=dec)
        rec_real = self.decoder_real(z_real, training=dec)
        # 3. cycles G_R(E_S(G_S(z_R))) and G_S(E_R(G_R(z_S))): eqs 8, 9
        real_to_sim = self.decoder_sim(z_real, training=dec)
        sim_to_real = self.decoder_real(z_sim, training=dec)
        cyc_real = self.decoder_real(self.encode(self.encoder_sim, real_to_sim, enc)[0],
                                     training=dec)
        cyc_sim = self.decoder_sim(self.encode(self.encoder_real, sim_to_real, enc)[0],
                                   training=dec)
        terms = {
            "kl_sim_loss": self._kl(mean_sim, log_var_sim),                     # eq 3
            "kl_real_loss": self._kl(mean_real, log_var_real),                  # eq 2
            "rec_sim_loss": losses.mse_loss(sim, rec_sim),                      # eq 5
            "rec_real_loss": losses.mse_loss(real, rec_real),                   # eq 4
            # 4. MMD of the codes against a ~ N(0, I): eqs 6, 7
            "mmd_sim_loss": self._mmd(z_sim, self._prior(z_sim)),
            "mmd_real_loss": self._mmd(z_real, self._prior(z_real)),
            "cycle_sim_loss": losses.masked_l1_loss(sim, cyc_sim),              # eq 9
            "cycle_real_loss": losses.masked_l1_loss(real, cyc_real),           # eq 8
        }
        # 5. eq 10
        total = (w["kl"] * (terms["kl_sim_loss"] + terms["kl_real_loss"])
                 + w["rec"] * (terms["rec_sim_loss"] + terms["rec_real_loss"])
                 + w["mmd"] * (terms["mmd_sim_loss"] + terms["mmd_real_loss"])
                 + w["cycle"] * (terms["cycle_sim_loss"] + terms["cycle_real_loss"]))
        total = self._add_unpaired_mmd(total, terms, z_sim, z_real)
        if self.recipe["align_means"] == "both":
            total = self._add_mean_alignment(total, terms, mean_sim, mean_real)
        return total, terms

    def _add_mean_alignment(self, total, terms, mean_sim, mean_real):
        """align_means: + lambda_mmd * MMD_u(E_S(x_S) means, E_R(x_R) means) (not the paper's)."""
        terms["mmd_align_loss"] = losses.mmd_rbf_unbiased(mean_sim, mean_real, self.mmd_sigma)
        return total + self.weights_of["mmd"] * terms["mmd_align_loss"]

    def _add_unpaired_mmd(self, total, terms, z_sim, z_real):
        """mmd_pairing "unpaired": + lambda_mmd * MMD_u(E_S(x_S), E_R(x_R)) (not the paper's)."""
        if self.mmd_pairing != "unpaired":
            return total
        terms["mmd_unpaired_loss"] = losses.mmd_rbf_unbiased(z_sim, z_real, self.mmd_sigma)
        return total + self.weights_of["mmd"] * terms["mmd_unpaired_loss"]

    def _eq14(self, z_back, z_real, mean_back, mean_real):
        """Eq 14 as the recipe has it ("off": 0, and nothing reaches the networks)."""
        how = self.recipe["eq14"]
        if how == "paper":
            return self._mmd(z_back, z_real)
        if how == "unbiased_means":
            return losses.mmd_rbf_unbiased(mean_back, mean_real, self.mmd_sigma)
        return tf.constant(0.0)

    def stage2_losses(self, sim, real, depth, depth_valid, labels):
        """Eqs 11-20 with paired sim ground truth; returns (total, {term: value})."""
        enc, dec, aux = (self._training(g) for g in GROUPS)
        w = self.weights_of
        # 1. z_S = E_S(x_S), z_R = E_R(x_R)
        opt = self.recipe
        z_sim, mean_sim, log_var_sim = self.encode(self.encoder_sim, sim, enc)
        z_real, mean_real, log_var_real = self.encode(self.encoder_real, real, enc)
        # 2. x'_R = G_R(z_S), z'_R = E_R(x'_R); x'_S = G_S(z_R), z'_S = E_S(x'_S)
        sim_to_real = self.decoder_real(z_sim, training=dec)
        z_trans, mean_trans, log_var_trans = self.encode(self.encoder_real, sim_to_real, enc)
        real_to_sim = self.decoder_sim(z_real, training=dec)
        z_back, mean_back, _ = self.encode(self.encoder_sim, real_to_sim, enc)
        # 3. depth and segmentation from z_S and z'_R (aux_input "mean": from their means)
        target = self.depth_target(depth)
        aux_sim, aux_trans = ((mean_sim, mean_trans) if opt["aux_input"] == "mean"
                              else (z_sim, z_trans))
        depth_sim = self.depth_decoder(aux_sim, training=aux)
        depth_trans = self.depth_decoder(aux_trans, training=aux)
        seg_sim = self.seg_decoder(aux_sim, training=aux)
        seg_trans = self.seg_decoder(aux_trans, training=aux)
        labels = tf.cast(labels, tf.int32)
        labelled = (labels >= 0) & (labels < tf.shape(seg_sim)[-1])
        labels = tf.where(labelled, labels, 0)
        terms = {
            "kl_sim_loss": self._kl(mean_sim, log_var_sim),                     # eq 12
            "kl_trans_loss": self._kl(mean_trans, log_var_trans),               # eq 11
            "mmd_s2r_loss": self._mmd(z_sim, z_trans),                          # eq 13
            "mmd_r2s_loss": self._eq14(z_back, z_real, mean_back, mean_real),   # eq 14
            "depth_sim_loss": losses.mse_loss(target, depth_sim, depth_valid),  # eq 15
            "depth_trans_loss": losses.mse_loss(target, depth_trans, depth_valid),  # eq 16
            "seg_sim_loss": losses.pixelwise_cross_entropy(labels, seg_sim, labelled),  # eq 18
            "seg_trans_loss": losses.pixelwise_cross_entropy(labels, seg_trans, labelled),  # 19
        }
        # 4. with KL and MMD above, the expected log-likelihoods inside eqs 11-12 (x'_R is
        #    the data of eq 11: a target, not a path for gradients)
        if w["rec2"]:
            terms["rec_sim_loss"] = losses.mse_loss(sim, self.decoder_sim(z_sim, training=dec))
            terms["rec_trans_loss"] = losses.mse_loss(
                tf.stop_gradient(sim_to_real), self.decoder_real(z_trans, training=dec))
        else:
            terms["rec_sim_loss"] = terms["rec_trans_loss"] = tf.constant(0.0)
        # 5. eqs 17 + 20, shared terms once
        total = (w["kl"] * (terms["kl_sim_loss"] + terms["kl_trans_loss"])
                 + w["rec2"] * (terms["rec_sim_loss"] + terms["rec_trans_loss"])
                 + w["mmd"] * (terms["mmd_s2r_loss"] + terms["mmd_r2s_loss"])
                 + w["depth"] * (terms["depth_sim_loss"] + terms["depth_trans_loss"])
                 + w["seg"] * (terms["seg_sim_loss"] + terms["seg_trans_loss"]))
        total = self._add_unpaired_mmd(total, terms, z_sim, z_real)
        if opt["align_means"] != "none":
            total = self._add_mean_alignment(total, terms, mean_sim, mean_real)
        if opt["stage2_real"] == "anchor":   # stage 1's real-image terms, eqs 2, 4, 6
            terms["kl_real_loss"] = self._kl(mean_real, log_var_real)
            terms["rec_real_loss"] = losses.mse_loss(
                real, self.decoder_real(z_real, training=dec))
            terms["mmd_real_loss"] = self._mmd(z_real, self._prior(z_real))
            total += (w["kl"] * terms["kl_real_loss"] + w["rec"] * terms["rec_real_loss"]
                      + w["mmd"] * terms["mmd_real_loss"])
        hits = tf.cast(tf.equal(tf.argmax(seg_sim, -1, output_type=tf.int32), labels), tf.float32)
        mask = tf.cast(labelled, tf.float32)
        terms["seg_sim_acc"] = tf.reduce_sum(hits * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
        return total, terms

    # ------------------------------------------------------------------ train_step

    # No tensor-dependent Python control flow below (the stage is a Python int): skipping
    # AutoGraph's conversion cuts the tracing time of this large step by about a third.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, batch):
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        sim, real = batch["sim"], batch["real"]
        variables = self.stage_variables(self.stage)
        # Stage 1 (stage1_losses):
        #   1. z_S ~ q(z | x_S), z_R ~ q(z | x_R), reparameterised
        #   2. G_S(z_S) ~ x_S, G_R(z_R) ~ x_R: MSE, eqs 4-5; KL(q || N(0, I)), eqs 2-3
        #   3. G_R(E_S(G_S(z_R))) ~ x_R, G_S(E_R(G_R(z_S))) ~ x_S: L1, eqs 8-9
        #   4. MMD(z, a ~ N(0, I)) per domain, eqs 6-7
        #   5. one Adam step on eq 10 over stage1_trains (E_S, E_R, G_S, G_R)
        # Stage 2 (stage2_losses):
        #   1. z_S = E_S(x_S), z_R = E_R(x_R)
        #   2. x'_R = G_R(z_S), z'_R = E_R(x'_R); x'_S = G_S(z_R), z'_S = E_S(x'_S)
        #   3. depth MSE of G_D(z_S), G_D(z'_R), eqs 15-16; cross-entropy of G_I, eqs 18-19
        #   4. KL and reconstruction, eqs 11-12; MMD(z_S, z'_R), MMD(z'_S, z_R), eqs 13-14
        #   5. one Adam step on eqs 17 + 20 over stage2_trains (E_S, E_R, D_depth, D_seg)
        with tf.GradientTape() as tape:
            if self.stage == 1:
                total, terms = self.stage1_losses(sim["image"], real["image"])
            else:
                total, terms = self.stage2_losses(sim["image"], real["image"], sim["depth"],
                                                  sim.get("depth_valid"), sim["labels"])
        stage = f"stage{self.stage}"
        apply_step(self.stage_optimizers[stage], tape, total, variables)
        terms[f"{stage}_loss"] = total
        trackers = self.trackers[stage]
        for name, value in terms.items():
            trackers[name].update_state(value)
        logs = {m.name: m.result() for m in self.metrics}
        if self.probe_images is not None:
            logs.update(self._probe_step(self.stage_optimizers[stage].iterations))
        return step_logs(logs)

    # ------------------------------------------------------------------ collapse probe

    def set_probe(self, images, every: int, fraction: float = 0.5, offset: int = 0) -> None:
        """Probes E_R on `images` (a fixed real batch in [-1, 1]) after every `every`-th step
        of the stage; `offset`: the run's step before the stage's first one (for the warning's
        step). images None or every < 1: no probe."""
        if images is None or every < 1:
            self.probe_images = None
        else:
            self.probe_images = tf.constant(images, tf.float32)
            self.probe_every, self.probe_offset = int(every), int(offset)
            self.collapse_fraction = float(fraction)
        self.train_function = None

    def set_probe_reference(self, spread: float) -> None:
        """Stage 1's spread of E_R's codes on the probe images (0: unknown, no alarm)."""
        self._probe.reference.assign(float(spread))

    @property
    def probe_state(self) -> dict:
        p = self._probe
        return {"probe_sigma_real": float(p.sigma.numpy()),
                "probe_spread_real": float(p.spread.numpy()),
                "probe_rec_real": float(p.rec.numpy()), "reference": float(p.reference.numpy()),
                "collapse_alarm_step": int(p.alarm_step.numpy())}

    def probe(self, images=None) -> dict:
        """{"sigma", "spread", "rec"} of E_R and G_R on `images` (default: the probe images),
        as tensors: z_mean and z_log_var with training=False, no noise drawn."""
        images = self.probe_images if images is None else images
        z_mean, z_log_var = self.encoder_real(images, training=False)
        if self.recipe["encoder_variance"] == "fixed":
            z_log_var = tf.zeros_like(z_mean)
        flat = tf.reshape(z_mean, [tf.shape(z_mean)[0], -1])
        rec = self.decoder_real(z_mean, training=False)
        return {"sigma": tf.reduce_mean(tf.exp(0.5 * z_log_var)),
                "spread": tf.reduce_mean(tf.math.reduce_std(flat, axis=0)),
                "rec": losses.mse_loss(images, rec)}

    def _probe_step(self, iterations):
        p = self._probe
        stage2 = self.stage == 2

        def measure():
            # float32 statistics under any precision policy (float16 networks give float16)
            got = {k: tf.cast(v, tf.float32) for k, v in self.probe().items()}
            step = tf.cast(iterations, tf.int64) + self.probe_offset
            ops = [p.sigma.assign(got["sigma"]), p.spread.assign(got["spread"]),
                   p.rec.assign(got["rec"])]
            if not stage2:       # the reference is stage 1's latest spread
                ops.append(p.reference.assign(got["spread"]))
                with tf.control_dependencies(ops):
                    return tf.constant(True)
            fire = ((p.reference > 0) & (p.alarm_step == 0)
                    & (got["spread"] < self.collapse_fraction * p.reference))

            def alarm():
                # XLA (--jit) compiles no string ops: there the alarm is only recorded in
                # collapse_alarm_step (logged, and reported by the trainer at the end).
                if not getattr(self, "jit_compile", False):
                    tf.print("warning: collapse alarm at step", step, ": the spread of E_R's "
                             "codes across the fixed real batch fell to", got["spread"],
                             "under", self.collapse_fraction, "x stage 1's", p.reference,
                             "(posterior sigma", got["sigma"], ", real reconstruction MSE",
                             got["rec"], "); E_R is giving every real image nearly one code "
                             "(issue 28)", output_stream=sys.stderr)
                with tf.control_dependencies([p.alarm_step.assign(step)]):
                    return tf.identity(step)
            with tf.control_dependencies(ops):
                fired = tf.cond(fire, alarm, lambda: tf.identity(p.alarm_step))
            with tf.control_dependencies([fired]):
                return tf.constant(True)

        done = tf.cond(tf.equal(iterations % self.probe_every, 0), measure,
                       lambda: tf.constant(False))
        with tf.control_dependencies([done]):
            return {"probe_sigma_real": tf.identity(p.sigma),
                    "probe_spread_real": tf.identity(p.spread),
                    "probe_rec_real": tf.identity(p.rec),
                    "collapse_alarm_step": tf.cast(tf.identity(p.alarm_step), tf.float32)}
