"""Sim2Real recipe: twin VAE on unpaired sim and real images (stage 1), then depth and
segmentation decoders on paired sim ground truth (stage 2); Adam 1e-4, betas (0.9, 0.999).

The iteration counter runs over both stages: stage 1 is iterations 1..stage1_steps, stage 2
the next stage2_steps. Each stage is one `runner.fit`, so a resumed run continues in the stage
where it stopped. The checkpoint at the end of stage 1 is also kept, whatever
--keep-checkpoints, in `checkpoints/stage1/`; `--stage2-from RUN` starts a new run's stage 2
from it (or from RUN's newest checkpoint when that folder is absent).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import typing
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d import mode as mode_lib
from tfgan3d import registry
from tfgan3d import serving
from tfgan3d import optimizers
from tfgan3d.data import sim2real_data
from tfgan3d.data.classes import segmentation_palette
from tfgan3d.io import to_uint8
from tfgan3d.models.sim2real import (MMD_PAIRINGS, RECIPE_CHOICES, Sim2RealVAE, parse_groups,
                                     recipe_options)
from tfgan3d.networks.sim2real import Sim2RealNetSpec, build_sim2real_networks
from tfgan3d.trainers import runner

INFERENCE = ("mean", "sample")
# Fields that fix the networks' variables: a --stage2-from source must agree on them.
ARCHITECTURE = ("levels", "width_mult", "res_blocks", "residual", "pack_d", "num_classes")
# Paper preset: section 4.2's epochs (300 over 2126 + 2126 images, then 25 over 21,260 sim
# images) at batch 4 (the paper gives no batch size).
_PAPER_BATCH = 4


@dataclasses.dataclass
class Sim2RealConfig(config_lib.TrainConfig):
    data: str | None = None           # unused: the mode reads --sim-data and --real-data
    sim_data: str = "builtin:rooms-sim"    # simulated images with depth and labels
    real_data: str = "builtin:rooms-real"  # real images (unpaired with the sim ones)
    class_map: str | None = None      # JSON / CSV file or "kitti12" (see data/sim2real_data.py)
    sim_depth_scale: float | None = None  # metres per unit of sim 16-bit depth PNGs
    real_depth_scale: float | None = None  # metres per unit of real 16-bit depth PNGs
    data_check: str = "all"           # all | first | headers
    image_size: int = 256             # network input side
    load_size: int | None = None      # random crops of image_size from it (None: no crop)
    flip: bool = True                 # random horizontal flips in training
    sim_size: int | None = None       # built-in data: render size (None: image_size)
    n_train: int = 1500               # built-in data: scenes per domain
    n_test: int = 150                 # built-in data: test scenes per domain
    max_depth: float = 10.0           # metres mapped to +1 of the depth decoder's tanh
    num_classes: int | None = None    # None: the data's classes (written to config.json)
    levels: int = 6                   # packing layers per encoder (Table 2: 6)
    width_mult: float = 1.0           # times Table 2's widths
    res_blocks: int = 2               # Table 2 rows 7-8 and 13-14
    residual: bool = True             # identity skips around those blocks
    pack_d: int = 8                   # 3D convolution filters of the packing layers
    stage1_steps: int = 10_000        # iterations of stage 1 (twin VAE, eqs 2-9)
    stage2_steps: int = 10_000        # iterations of stage 2 (depth and segmentation decoders)
    stage2_from: str | None = None    # a run folder whose stage-1 weights start stage 2
    stage1_trains: str = "encoders,decoders"  # networks stage 1 trains: encoders,decoders,aux
    stage2_trains: str = "encoders,aux"  # networks stage 2 trains
    lr: float = 1e-4                  # Adam learning rate (both stages)
    beta1: float = 0.9                # Adam beta_1
    beta2: float = 0.999              # Adam beta_2
    lambda_kl: float = 1.0            # weight of the KL terms
    lambda_rec: float = 1.0           # stage 1: weight of the reconstruction terms
    lambda_mmd: float = 1.0           # weight of the latent MMD between the domains
    lambda_cycle: float = 1.0         # stage 1: weight of the cycle terms (eqs 8-9)
    lambda_rec2: float = 1.0          # stage 2: weight of the reconstruction terms (eqs 11-12)
    lambda_depth: float = 1.0         # stage 2: weight of the depth MSE
    lambda_seg: float = 1.0           # stage 2: weight of the segmentation cross-entropy
    mmd_sigma: float | None = None    # None: sqrt(latent size)
    kl_per_unit: bool = True          # KL averaged per latent unit (else summed over units)
    mmd_pairing: str = "paper"        # paper | unpaired (+ unbiased MMD of E_S, E_R codes: not the paper's)
    # Recipe (issue 28; models/sim2real.py RECIPES): "paper" is the seed's objective as
    # written; "transfer" (not the paper's) keeps E_R reading real images in stage 2. The
    # options below override their recipe's value (None: the recipe's).
    recipe: str = "transfer"          # transfer | paper
    stage2_real: str | None = None    # none | anchor (stage 2 keeps stage 1's real-image terms)
    eq14: str | None = None           # paper | unbiased_means | off
    align_means: str | None = None    # none | stage2 | both (MMD_u of the E_S and E_R means)
    aux_input: str | None = None      # sample | mean (what D_depth, D_seg are trained on)
    encoder_variance: str | None = None  # learned | fixed (UNIT: unit noise, no variance head)
    # Collapse alarm: every collapse_every steps (None: log_every; 0: off) E_R and G_R on a
    # fixed batch of collapse_images real training images -> losses.csv probe_* columns; in
    # stage 2 a warning when the spread of the codes falls under collapse_fraction x stage 1's.
    collapse_every: int | None = None  # steps between probes of E_R (None: --log-every; 0: off)
    collapse_images: int = 16         # fixed real training images the probe reads
    collapse_fraction: float = 0.5    # warn when E_R's code spread falls under this x stage 1's
    inference: str = "mean"           # mean: decode z_mean | sample: decode a sampled z
    n_samples: int = 4                # images in the sample grids

    PRESET_VALUES: typing.ClassVar[dict[str, dict]] = {
        "paper": dict(batch_size=_PAPER_BATCH, image_size=256,
                      stage1_steps=math.ceil(300 * 2126 / _PAPER_BATCH),
                      stage2_steps=math.ceil(25 * 21260 / _PAPER_BATCH),
                      checkpoint_every=5000, log_every=100, sample_every=5000),
        # standard: about an hour of training per model on 2 CPU cores, for the finding (eval
        # sim2real_finding; its three baselines train for stage 2's steps each). At quick
        # every model learned the average room and none, not even the real-supervised upper
        # bound, beat the image-blind prior (issue 10): so quick's networks, batch and rate,
        # five times the scenes per domain (1500, the data module's default), 100 test scenes
        # and 20 times the steps, the supervised stage 2 (where the decoders failed) as long
        # as stage 1. Sized from a measured 0.65 s per step of either stage on 2 cores that
        # another job shared (0.6 CPU-s per step): about 0.33 s per step unshared.
        "standard": dict(batch_size=4, image_size=64, levels=4, width_mult=0.25, res_blocks=1,
                         n_train=1500, n_test=100, stage1_steps=5000, stage2_steps=5000,
                         lr=5e-4, checkpoint_every=500, log_every=50, sample_every=1000),
        # quick: 1000 + 1000 steps (issue 10). At 300 + 200 the twin VAE scored at the prior on
        # the sim test set in 3 of 3 seeds. Measured on seed 0 (eval sim2real_curve): 300 +
        # 1500 beat the prior's sim abs_rel 0.279 by only 0.010, while 1000 + 1000 beat it by
        # 0.033 (0.246), mIoU 0.274 vs 0.234: the longer stage 1 is what the encoders need.
        # Then eval sim2real_finding --preset quick, seeds 0 1 2: the sim check holds in 3 of 3
        # (abs_rel 0.233 +- 0.017 vs the prior's 0.257 +- 0.019).
        "quick": dict(batch_size=4, image_size=64, levels=4, width_mult=0.25, res_blocks=1,
                      n_train=300, n_test=30, stage1_steps=1000, stage2_steps=1000, lr=5e-4,
                      checkpoint_every=250, log_every=25, sample_every=250),
        "tiny": dict(batch_size=2, image_size=16, levels=2, width_mult=0.125, res_blocks=0,
                     n_train=6, n_test=2, stage1_steps=4, stage2_steps=4, lr=1e-3,
                     data_check="all", checkpoint_every=2, log_every=2, sample_every=4,
                     n_samples=2),
    }

    def __post_init__(self):
        # --steps N is the total over both stages, split in the ratio of the stage lengths
        # (the preset's unless given): tiny 4 + 4, --steps 10 -> 5 + 5. config.json records
        # the two stage lengths. --epochs is split the same way once the data size is known.
        if self.steps is not None and self.steps >= 1:
            s1, s2 = max(self.stage1_steps, 0), max(self.stage2_steps, 0)
            first = round(self.steps * s1 / (s1 + s2)) if s1 + s2 else self.steps
            self.stage1_steps, self.stage2_steps, self.steps = first, self.steps - first, None

    def validate(self):
        super().validate()
        err = config_lib.ConfigError
        if self.data is not None:
            raise err(f"sim2real reads two data sets: give --sim-data and --real-data "
                      f"(got --data {self.data})")
        if self.stage1_steps < 0 or self.stage2_steps < 0 or \
                self.stage1_steps + self.stage2_steps < 1:
            raise err(f"--stage1-steps and --stage2-steps: expected >= 0 with a positive sum, "
                      f"got {self.stage1_steps} and {self.stage2_steps}")
        if self.mmd_pairing not in MMD_PAIRINGS:
            raise err(f"--mmd-pairing: expected one of {', '.join(MMD_PAIRINGS)}, "
                      f"got {self.mmd_pairing!r}")
        try:
            recipe_values(self)
        except ValueError as e:
            key, _, rest = str(e).partition(":")
            raise err(f"--{key.replace('_', '-')}:{rest}") from None
        if self.collapse_every is not None and self.collapse_every < 0:
            raise err(f"--collapse-every: expected >= 0 steps (0: no alarm), got "
                      f"{self.collapse_every}")
        if self.collapse_images < 2:
            raise err(f"--collapse-images: expected >= 2 (a spread needs two codes), got "
                      f"{self.collapse_images}")
        if not 0 < self.collapse_fraction < 1:
            raise err(f"--collapse-fraction: expected a fraction in (0, 1), got "
                      f"{self.collapse_fraction}")
        if self.inference not in INFERENCE:
            raise err(f"--inference: expected one of {', '.join(INFERENCE)}, "
                      f"got {self.inference!r}")
        if self.load_size is not None and self.load_size < self.image_size:
            raise err(f"--load-size {self.load_size} is smaller than --image-size "
                      f"{self.image_size}")
        if self.max_depth <= 0:
            raise err(f"--max-depth: expected > 0 metres, got {self.max_depth}")
        if self.num_classes is not None and self.num_classes < 1:
            raise err(f"--num-classes: expected >= 1, got {self.num_classes}")
        for name in ("stage1_trains", "stage2_trains"):
            try:
                parse_groups(getattr(self, name), "--" + name.replace("_", "-"))
            except ValueError as e:
                raise err(str(e)) from None
        if self.levels >= 1 and self.image_size % 2 ** self.levels:
            raise err(f"--image-size {self.image_size}: expected a multiple of "
                      f"{2 ** self.levels} (2 ** --levels {self.levels}: each packing layer "
                      f"halves the image)")
        try:
            net_spec(self, num_classes=self.num_classes or 1)
        except ValueError as e:
            raise err(f"network size: {e} (--image-size {self.image_size}, --levels "
                      f"{self.levels}, --width-mult {self.width_mult})") from None


CONFIG = Sim2RealConfig


def net_spec(config: Sim2RealConfig, num_classes: int | None = None) -> Sim2RealNetSpec:
    return Sim2RealNetSpec.scaled(
        image_size=config.image_size, levels=config.levels, width_mult=config.width_mult,
        res_blocks=config.res_blocks, residual=config.residual, d=config.pack_d,
        num_classes=num_classes or config.num_classes)


def recipe_values(config: Sim2RealConfig) -> dict:
    """The recipe options in force: --recipe's, each overridden by its own option if given."""
    return recipe_options(config.recipe, **{k: getattr(config, k) for k in RECIPE_CHOICES})


def build_model(config: Sim2RealConfig) -> Sim2RealVAE:
    """The twin VAE with freshly initialised networks (call under a strategy scope)."""
    if config.num_classes is None:
        raise config_lib.ConfigError("num_classes is unset: train() takes it from the data; "
                                     "give --num-classes to build the model without data")
    networks = build_sim2real_networks(net_spec(config))
    return Sim2RealVAE(
        networks, lambda_kl=config.lambda_kl, lambda_rec=config.lambda_rec,
        lambda_mmd=config.lambda_mmd, lambda_cycle=config.lambda_cycle,
        lambda_rec2=config.lambda_rec2, lambda_depth=config.lambda_depth,
        lambda_seg=config.lambda_seg, stage1_trains=config.stage1_trains,
        stage2_trains=config.stage2_trains, mmd_sigma=config.mmd_sigma,
        kl_per_unit=config.kl_per_unit, max_depth=config.max_depth, seed=config.seed,
        sample_at_inference=config.inference == "sample",
        mmd_pairing=config.mmd_pairing, **recipe_values(config))


def make_optimizers(config: Sim2RealConfig) -> dict:
    """One Adam per stage (stage 2 starts with fresh moments); each schedule spans its stage."""
    def adam(steps):
        lr = optimizers.learning_rate(config, config.lr, max(steps, 1))
        return optimizers.for_precision(
            optimizers.Adam(lr, beta_1=config.beta1, beta_2=config.beta2), config)
    return {"stage1": adam(config.stage1_steps), "stage2": adam(config.stage2_steps)}


# ----------------------------------------------------------------------------- inference

def predict(model: Sim2RealVAE, image):
    """Real-domain image in [-1, 1] -> (depth metres [B, H, W, 1], logits [B, H, W, C])."""
    out = model(image, training=False)
    return out["depth"], out["seg_logits"]


def translate(model: Sim2RealVAE, images, to: str):
    """sim -> real (to="real") or real -> sim (to="sim"), images in [-1, 1]."""
    return model.translate(images, to)


DOMAINS = ("real", "sim")


def perceive(model: Sim2RealVAE, image, config: Sim2RealConfig, domain: str = "real") -> dict:
    """Images of `domain` in [-1, 1] [B, H, W, 3], any H and W -> {"depth": metres [B, H, W, 1],
    "seg_logits": [B, H, W, C], "segmentation": int32 class ids [B, H, W]}: E_R (real) or
    E_S (sim) -> z -> D_depth, D_seg. Sizes that are not multiples of 2**levels are mirrored
    out to the next multiple and the outputs cropped back."""
    if domain not in DOMAINS:
        raise ValueError(f"domain: expected one of {', '.join(DOMAINS)}, got {domain!r}")
    encoder = model.encoder_real if domain == "real" else model.encoder_sim

    def run(x):
        z = model.code(encoder, x)
        logits = model.seg_decoder(z, training=False)
        return {"depth": model.depth_metres(model.depth_decoder(z, training=False)),
                "seg_logits": logits,
                "segmentation": tf.argmax(logits, -1, output_type=tf.int32)}
    return serving.with_padding(run, image, 2 ** config.levels)


def translate_any_size(model: Sim2RealVAE, images, config: Sim2RealConfig, to: str):
    """`translate` for images of any size (mirrored out to multiples of 2**levels, cropped
    back)."""
    return serving.with_padding(lambda x: translate(model, x, to), images, 2 ** config.levels)


def serving_endpoints(model: Sim2RealVAE, config: Sim2RealConfig) -> dict:
    """serving_default: uint8 RGB [B, H, W, 3] of the real domain ->
    {"depth": float32 metres [B, H, W, 1], "segmentation": int32 class ids [B, H, W]}.
    serving_encoded: PNG / JPEG strings [B] ("image_bytes", one size per request) -> the same.
    sim_domain: uint8 RGB of the sim domain (E_S) -> the same.
    sim_to_real, real_to_sim: uint8 RGB -> {"image": uint8 RGB [B, H, W, 3]} (translations).
    tfgan3d_info: the mode and the run's config (JSON).

    Any H and W: images are mirrored out to multiples of 2**levels in the graph and the
    outputs cropped back. z is the encoder's mean (--inference mean) or a sample (--inference
    sample).
    """
    rgb_spec = [tf.TensorSpec([None, None, None, 3], tf.uint8, name="rgb")]

    def outputs(out):
        return {"depth": tf.cast(out["depth"], tf.float32), "segmentation": out["segmentation"]}

    def serve(rgb):
        return outputs(perceive(model, serving.image_input(rgb, 3), config))

    def serve_encoded(image_bytes):
        return serve(serving.decode_images(image_bytes, 3))

    def serve_sim(rgb):
        return outputs(perceive(model, serving.image_input(rgb, 3), config, "sim"))

    def translation(to):
        def serve_translate(rgb):
            image = translate_any_size(model, serving.image_input(rgb, 3), config, to)
            return {"image": tf.cast(tf.round(tf.clip_by_value(
                (tf.cast(image, tf.float32) + 1.0) * 127.5, 0, 255)), tf.uint8)}
        return serve_translate

    return {"serving_default": (serve, rgb_spec),
            serving.ENCODED_ENDPOINT: (serve_encoded, [serving.ENCODED_SPEC]),
            "sim_domain": (serve_sim, rgb_spec),
            "sim_to_real": (translation("real"), rgb_spec),
            "real_to_sim": (translation("sim"), rgb_spec),
            serving.INFO_ENDPOINT: serving.info_endpoint("sim2real", config.to_json())}


def export_parts(model: Sim2RealVAE) -> dict:
    """Networks saved on their own; the shared layers live inside both domains' networks."""
    parts = model.networks.parts()
    return {k: v for k, v in parts.items() if not k.startswith("shared_")}


# ----------------------------------------------------------------------------- samples

def sample_grids(model: Sim2RealVAE, sim, real, config: Sim2RealConfig) -> dict:
    """uint8 images. "translations": one row per example, sim | sim -> real | real |
    real -> sim. "perception": real | predicted depth (near dark) | segmentation."""
    to_real, to_sim = translate(model, sim, "real"), translate(model, real, "sim")
    depth, logits = predict(model, real)
    grey = np.clip(np.asarray(depth) / config.max_depth, 0, 1)
    grey = np.repeat((grey * 255).astype(np.uint8), 3, axis=-1)
    seg = segmentation_palette(logits.shape[-1])[np.argmax(np.asarray(logits), -1)]
    rows_t = [np.concatenate(r, axis=1) for r in
              zip(to_uint8(sim), to_uint8(to_real), to_uint8(real), to_uint8(to_sim))]
    rows_p = [np.concatenate(r, axis=1) for r in zip(to_uint8(real), grey, seg)]
    return {"translations": np.concatenate(rows_t, axis=0),
            "perception": np.concatenate(rows_p, axis=0)}


# ----------------------------------------------------------------------------- stages

def _resolve_num_classes(config: Sim2RealConfig, run: runner.Run, info: dict) -> None:
    """Takes num_classes from the data and records it in config.json."""
    if config.num_classes is None:
        config.num_classes = int(info["num_classes"])
        if run.chief:
            runner.write_json_atomic(run.path / "config.json", config.to_dict())
        print(f"num_classes = {config.num_classes} (from the data: {info['class_names']})",
              flush=True)


def _resolve_epochs(config: Sim2RealConfig, run: runner.Run, info: dict) -> None:
    """--epochs E: E passes over the simulation's training images in all, split between the
    stages as --steps is; the stage lengths are recorded in config.json."""
    if config.epochs is None:
        return
    total = max(1, math.ceil(config.epochs * info["n_sim"] / config.batch_size))
    s1, s2 = config.stage1_steps, config.stage2_steps
    first = round(total * s1 / (s1 + s2))
    config.stage1_steps, config.stage2_steps, config.epochs = first, total - first, None
    if run.chief:
        runner.write_json_atomic(run.path / "config.json", config.to_dict())
    print(f"--epochs: stage 1 {config.stage1_steps} + stage 2 {config.stage2_steps} "
          f"iterations", flush=True)


def stage1_checkpoint(run_path: Path) -> Path:
    return Path(run_path) / "checkpoints" / "stage1" / "ckpt"


def _keep_stage1_checkpoint(run: runner.Run) -> None:
    """Writes the end-of-stage-1 state to checkpoints/stage1/ (temporary folder, renamed)."""
    final = stage1_checkpoint(run.path).parent
    if final.exists():
        return
    tmp = final.with_name(f".stage1.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    run.checkpoint.write(str(tmp / "ckpt"))
    os.replace(tmp, final)


def stage2_source(config: Sim2RealConfig) -> tuple[Path, dict]:
    """(folder, config values) of the --stage2-from run, checked against this config.

    Raises:
        RunError: RUN is not a sim2real run or its networks differ from these (num_classes
            is compared once this run knows it).
    """
    source = Path(config.stage2_from)
    try:
        values = config_lib.load_config_json(source)
    except config_lib.ConfigError as e:
        raise runner.RunError(f"--stage2-from: {e}") from None
    if values.get("mode") != "sim2real":
        raise runner.RunError(f"--stage2-from {source}: a {values.get('mode')!r} run, "
                              f"not sim2real")
    differ = [f"{k}: {values.get(k)!r} there, {getattr(config, k)!r} here" for k in ARCHITECTURE
              if getattr(config, k) is not None and values.get(k) != getattr(config, k)]
    if differ:
        raise runner.RunError(f"--stage2-from {source}: the networks differ "
                              f"({'; '.join(differ)})")
    return source, values


def start_from_stage1(run: runner.Run, model: Sim2RealVAE, optimizers: dict,
                      config: Sim2RealConfig) -> int:
    """--stage2-from: loads another run's end-of-stage-1 state (networks and the stage-1
    optimizer); this run continues at iteration stage1_steps, in stage 2.

    Raises:
        RunError: see `stage2_source`; no checkpoint; stage 1 not finished there.
    """
    source, values = stage2_source(config)
    prefix = stage1_checkpoint(source)
    if not Path(f"{prefix}.index").exists():
        latest = tf.train.latest_checkpoint(str(source / "checkpoints"))
        if latest is None:
            raise runner.RunError(f"--stage2-from {source}: no checkpoint in "
                                  f"{source / 'checkpoints'}")
        prefix = Path(latest)
    step = int(tf.train.load_checkpoint(str(prefix)).get_tensor(
        "step/.ATTRIBUTES/VARIABLE_VALUE"))
    if step < values["stage1_steps"]:
        raise runner.RunError(f"--stage2-from {source}: stage 1 is not finished ({prefix} is "
                              f"at step {step} of {values['stage1_steps']}); resume that run "
                              f"first")
    if step > values["stage1_steps"]:
        print(f"note: {source} kept no end-of-stage-1 checkpoint; its newest, at step {step} "
              f"(stage 2), is used", flush=True)
    # Stage 2's optimizer starts afresh.
    status = tf.train.Checkpoint(model=model, opt_stage1=optimizers["stage1"]).restore(
        str(prefix))
    status.assert_existing_objects_matched().expect_partial()
    run.step.assign(config.stage1_steps)
    print(f"stage 2 starts from {prefix} (step {step} of {source.name})", flush=True)
    return config.stage1_steps


def train(config: Sim2RealConfig, run: runner.Run) -> dict:
    if config.stage2_from and not run.resumed:
        stage2_source(config)               # fail before the data and networks are made
    sim_ds, real_ds, info = sim2real_data.make_sim2real_datasets(config)
    # As pix2pix and fcr refuse it: a batch larger than the smaller domain's training set.
    runner.check_batch_size(config.batch_size, min(info["n_sim"], info["n_real"]))
    options = recipe_values(config)
    replicas = run.strategy.num_replicas_in_sync
    if (options["eq14"] == "unbiased_means" or options["align_means"] != "none"
            or config.mmd_pairing == "unpaired") and config.batch_size < 2 * replicas:
        # The unbiased MMD averages over pairs of distinct codes in each replica's batch.
        raise ValueError(f"--batch-size {config.batch_size}: expected at least 2 per replica "
                         f"({2 * replicas} on {replicas}) for the unbiased MMD of --recipe "
                         f"{config.recipe} (--eq14, --align-means, --mmd-pairing), found "
                         f"{config.batch_size / replicas:g} per replica")
    _resolve_num_classes(config, run, info)
    _resolve_epochs(config, run, info)
    # Each consumer reads its own copy of the streams: a tf.data shuffle keeps one seed
    # generator per dataset object, shared by all of its iterators, so a second iterator of
    # one object (stage 2, or the sample images' read-ahead) would start wherever the first
    # one's prefetching had left it, and two runs with one seed would train on different
    # orders. A fresh copy's stream is a function of its position (what --deterministic and
    # an exact resume need). The files were checked above; the copies read headers only.
    checked = dict(config.to_dict(), data_check="headers")

    def stream():
        sim, real, _ = sim2real_data.make_sim2real_datasets(checked)
        return tf.data.Dataset.zip({"sim": sim, "real": real})

    n = config.n_samples
    samples = next(iter(stream().unbatch().batch(n)))
    sim_samples, real_samples = samples["sim"]["image"], samples["real"]["image"]
    del sim_ds, real_ds

    with run.strategy.scope():
        model = build_model(config)
        optimizers = make_optimizers(config)
        model.compile(stage1_optimizer=optimizers["stage1"],
                      stage2_optimizer=optimizers["stage2"], jit_compile=config.jit)
    start = runner.restore(run, model, optimizers)
    if config.stage2_from and start == 0:
        start = start_from_stage1(run, model, optimizers, config)
    run.samples_dir.mkdir(exist_ok=True)

    def sample_fn(step):
        # The grids leave the model's random stream as training left it (--inference sample
        # draws from it): the checkpoint of this step was saved before them, and a run
        # resumed from it must draw what an uninterrupted one draws.
        state = model.seed_generator.state
        saved = tf.identity(state.value)
        for name, grid in sample_grids(model, sim_samples, real_samples, config).items():
            runner.write_sample_grid(run, step, grid, name, suffix=name)
        state.assign(saved)

    end1 = config.stage1_steps
    end2 = end1 + config.stage2_steps
    every = config.log_every if config.collapse_every is None else config.collapse_every
    probe_images = probe_batch(config, stream) if every else None
    # Several replicas: the in-step probe's variable assigns inside tf.cond fail in replica
    # context (merge_call), so there E_R is probed at the end of each stage only, eagerly.
    in_step = run.strategy.num_replicas_in_sync == 1
    logs = {}
    if start < end1:
        model.set_stage(1)
        model.set_probe(probe_images if in_step else None, every, config.collapse_fraction,
                        offset=0)
        logs.update(runner.fit(model, stream(), run, total=end1, optimizers=optimizers,
                               sample_fn=sample_fn))
    if int(run.step.numpy()) == end1 and not config.stage2_from:
        _keep_stage1_checkpoint(run)
    if config.stage2_steps:
        model.set_stage(2)
        if every:
            _arm_collapse_alarm(run, model, probe_images, every, config, end1)
            if not in_step:
                model.set_probe(None, 0)
                print(f"note: on {run.strategy.num_replicas_in_sync} replicas E_R is probed at "
                      f"the end of stage 2 only (no probe_* columns)", flush=True)
        logs.update(runner.fit(model, stream(), run, total=end2, optimizers=optimizers,
                               sample_fn=sample_fn, begin=end1))
        if every:
            if not in_step:
                _probe_at_end(model, probe_images, end2, config.collapse_fraction)
            _record_alarm(run, model)
    return logs


def _probe_at_end(model, images, step, fraction) -> None:
    """The probe and the alarm's check, eagerly, outside the train step (several replicas)."""
    got = {k: float(v) for k, v in model.probe(images).items()}
    p = model._probe
    p.sigma.assign(got["sigma"])
    p.spread.assign(got["spread"])
    p.rec.assign(got["rec"])
    reference = float(p.reference.numpy())
    if reference > 0 and int(p.alarm_step.numpy()) == 0 and got["spread"] < fraction * reference:
        p.alarm_step.assign(step)
        print(f"warning: collapse alarm at step {step}: the spread of E_R's codes across the "
              f"fixed real batch fell to {got['spread']:.4g}, under {fraction} x stage 1's "
              f"{reference:.4g} (posterior sigma {got['sigma']:.4g}, real reconstruction MSE "
              f"{got['rec']:.4g}); E_R is giving every real image nearly one code (issue 28)",
              file=sys.stderr, flush=True)


COLLAPSE_FILE = "collapse_alarm.json"


def probe_batch(config: Sim2RealConfig, stream) -> tf.Tensor:
    """The collapse probe's fixed real batch: the first --collapse-images real training images
    in file order, unaugmented (the same batch in every run on that data, so runs compare);
    real data without ground truth (which that reader needs): the first images of `stream()`,
    the augmented training stream."""
    try:
        ds, _ = sim2real_data.make_eval_dataset(config.real_data, "train", config=config,
                                                batch_size=config.collapse_images)
        return next(iter(ds))["image"]
    except (sim2real_data.DataError, StopIteration):
        return next(iter(stream().unbatch().batch(config.collapse_images)))["real"]["image"]


def _arm_collapse_alarm(run, model, images, every, config, end1) -> None:
    """Sets stage 2's probe and its reference: the spread of E_R's codes on the probe images at
    the end of stage 1 (measured now when this run is there, i.e. it just finished stage 1 or
    loaded --stage2-from's stage-1 state; else read from COLLAPSE_FILE)."""
    path = run.path / COLLAPSE_FILE
    state = json.loads(path.read_text()) if path.exists() else {}
    if int(run.step.numpy()) == end1:
        got = {k: float(v) for k, v in model.probe(images).items()}
        state = {"stage1_step": end1, "stage1_spread": got["spread"],
                 "stage1_sigma": got["sigma"], "stage1_rec": got["rec"],
                 "fraction": config.collapse_fraction, "every": every,
                 "images": int(len(images)),
                 "from": config.stage2_from or "this run's stage 1"}
        if run.chief:
            runner.write_json_atomic(path, state)
    reference = float(state.get("stage1_spread", 0.0))
    if not reference:
        print(f"note: no stage-1 spread of E_R's codes recorded in {path}; the collapse "
              f"alarm is off for this stage 2 (the probe_* columns are still logged)",
              flush=True)
    else:
        print(f"collapse alarm: E_R's code spread on {len(images)} fixed real images was "
              f"{reference:.4g} at the end of stage 1; a warning if it falls under "
              f"{config.collapse_fraction} x that (checked every {every} steps)", flush=True)
    model.set_probe(images, every, config.collapse_fraction, offset=end1)
    model.set_probe_reference(reference)
    model._probe.alarm_step.assign(int(state.get("alarm_step") or 0))   # warned once per run


def _record_alarm(run, model) -> None:
    """Writes the step of the alarm (if it fired) and the last probe to COLLAPSE_FILE."""
    path = run.path / COLLAPSE_FILE
    if not run.chief or not path.exists():
        return
    state = json.loads(path.read_text())
    probe = model.probe_state
    state.update(alarm_step=probe["collapse_alarm_step"] or None,
                 last_spread=probe["probe_spread_real"], last_sigma=probe["probe_sigma_real"],
                 last_rec=probe["probe_rec_real"])
    runner.write_json_atomic(path, state)
    if state["alarm_step"]:
        print(f"collapse alarm: fired at step {state['alarm_step']} (E_R's spread "
              f"{state['last_spread']:.4g} at the end vs {state['stage1_spread']:.4g} after "
              f"stage 1); see {path}", flush=True)


def data(config: Sim2RealConfig, split: str = "train", *, source: str | None = None,
         training: bool = True) -> dict:
    """{"sim", "real"}: the two unpaired training streams as `train` feeds them, or
    (training=False) `split` of both domains in file order (images with depth and labels);
    `source` replaces --real-data there."""
    if training:
        sim_ds, real_ds, _ = sim2real_data.make_sim2real_datasets(config)
        return {"sim": sim_ds, "real": real_ds}
    return {role: sim2real_data.make_eval_dataset(source, split, config=config, role=role,
                                                  batch_size=config.batch_size)[0]
            for role, source in (("sim", config.sim_data), ("real", source or config.real_data))}


def _predict(model: Sim2RealVAE, image, config: Sim2RealConfig) -> dict:
    """Real-domain RGB in [-1, 1], any H and W -> {"depth": metres [B, H, W, 1], "seg_logits":
    [B, H, W, C], "segmentation": class ids [B, H, W]}: `perceive` of the real domain, the one
    inference path of predict, export and the serving client."""
    return perceive(model, image, config, "real")


MODE = mode_lib.Mode(
    name="sim2real", description=registry.describe("sim2real"), config=Sim2RealConfig,
    data=data, build_model=build_model, train=train, predict=_predict,
    export_parts=export_parts, serving=lambda model, config: {"": serving_endpoints(model, config)},
    figures=lambda run_dir: mode_lib.sample_figures(run_dir, {
        "translations": "sim | sim -> real | real | real -> sim",
        "perception": "real | predicted depth | segmentation"}),
    eval_programs=("sim2real", "sim2real_finding"))
