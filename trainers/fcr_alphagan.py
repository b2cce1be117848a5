"""3D FCR-alphaGAN recipe: phase 1 (E, G, D, C), then phase 2 (refiner R against D).

Iterations are counted over the whole run, 1-based as the original: phase 1 covers
1 .. phase2_start - 1 (paper: 75000 iterations, batch 20), phase 2 runs from phase2_start to
--steps (paper: 25000 more, batch 8) with the encoder and generator frozen. Each phase is one
keras fit call; a resumed run continues in whichever phase its checkpoint is in.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d import mode as mode_lib
from tfgan3d import registry
from tfgan3d import serving
from tfgan3d import optimizers
from tfgan3d import render_child
from tfgan3d import precise_bn
from tfgan3d.data import builtin, voxel_files
from tfgan3d.io import save_npy
from tfgan3d.models.fcr_alphagan import (LATENT1D_VARIANTS, REFINER_D_INPUTS, VAE_VARIANTS,
                                         VARIANTS, FCRAlphaGAN)
from tfgan3d.losses import GAN_LOSSES
from tfgan3d.networks.voxel import VOXEL_PRESETS, VoxelNetSpec, build_fcr_networks
from tfgan3d.trainers import runner




def _net_sizes(preset: str) -> dict:
    """Network sizes of a preset, as config fields (from networks.voxel.VOXEL_PRESETS)."""
    spec = dataclasses.asdict(VOXEL_PRESETS[preset])
    return {k: v for k, v in spec.items() if k not in ("use_bias", "latent1d", "kernel")}


_STANDARD_NETS = _net_sizes("standard")
_QUICK_NETS = _net_sizes("quick")
_TINY_NETS = _net_sizes("tiny")


@dataclasses.dataclass
class FCRConfig(config_lib.TrainConfig):
    data: str | None = "builtin:voxels"
    variant: str = "alphagan"         # alphagan | vae (KL, no code D) | latent1d (1200-d code)
                                      # | vae1d (1200-d code, VAE losses)
    grid: tuple[int, ...] = (80, 48, 80)  # voxel scene size (x, height, z)
    num_classes: int = 12             # voxel classes, 0 = empty
    widths: tuple[int, ...] = (64, 128, 256, 512)  # encoder filters per level (G mirrors them)
    latent_channels: int = 16         # channels of the fully convolutional latent
    kernel: tuple[int, ...] = (5, 3, 5)  # 3D convolution kernel (x, height, z)
    refiner_channels: int = 32        # refiner width
    refiner_blocks: int = 4           # refiner residual blocks
    code_d_units: tuple[int, ...] = (750, 750)  # code discriminator hidden layers
    gamma: float = 0.97               # weight of false negatives in the reconstruction loss
    kl_weight: float = 1.0            # vae variant only
    eg_steps: int = 2                 # (encoder step, generator step) pairs per iteration
    gan_loss: str = "bce"             # bce (intended) | legacy (the original's swapped losses)
    refiner_d_input: str = "straight_through"  # phase 2: D sees one_hot(argmax R) | soft
    lr: float = 1e-4                  # Adam learning rate of every network
    beta1: float = 0.5                # Adam beta_1
    beta2: float = 0.9                # Adam beta_2
    batch_size: int = 20
    phase2_batch_size: int = 8        # batch of phase 2 (refiner; the paper: 8)
    phase2_start: int = 75001         # first iteration of phase 2
    flip: bool = True                 # random flips about x and z
    n_train: int = 4000               # built-in data: training scenes
    n_test: int = 200                 # built-in data: test scenes (the original used 200)
    n_fixed: int = 4                  # scenes decoded from a fixed z at every sample step
    render_samples: bool = True       # VTK renders of the fixed-z scenes into TensorBoard
    precise_bn_batches: int = 50      # phase-1 end: E's and G's batch-norm statistics
                                      # recomputed over this many training batches (precise
                                      # BN, `fcr_precise_bn`); 0 keeps the moving averages

    PRESET_VALUES: typing.ClassVar[dict[str, dict]] = {
        "paper": dict(steps=100_000, checkpoint_every=100, log_every=100, sample_every=1000),
        # standard: about an hour per model on 2 CPU cores (the findings' longer budget)
        "standard": dict(**_STANDARD_NETS, batch_size=8, phase2_batch_size=4, steps=6000,
                         phase2_start=5001, n_train=2000, n_test=50, checkpoint_every=250,
                         log_every=50, sample_every=1000),
        "quick": dict(**_QUICK_NETS, batch_size=8, phase2_batch_size=4, steps=1500,
                      phase2_start=1201, n_train=1000, n_test=50, checkpoint_every=100,
                      log_every=50, sample_every=300),
        "tiny": dict(**_TINY_NETS, batch_size=4, phase2_batch_size=2, steps=12, phase2_start=9,
                     precise_bn_batches=2,
                     n_train=16, n_test=4, n_fixed=2, checkpoint_every=4, log_every=2,
                     sample_every=4, render_samples=False),
    }

    def validate(self):
        super().validate()
        if self.variant not in VARIANTS:
            raise config_lib.ConfigError(f"--variant: expected one of {', '.join(VARIANTS)}, "
                                         f"got {self.variant!r}")
        if self.gan_loss not in GAN_LOSSES:
            raise config_lib.ConfigError(f"--gan-loss: expected one of {', '.join(GAN_LOSSES)}, "
                                         f"got {self.gan_loss!r}")
        if self.refiner_d_input not in REFINER_D_INPUTS:
            raise config_lib.ConfigError(f"--refiner-d-input: expected one of "
                                         f"{', '.join(REFINER_D_INPUTS)}, got "
                                         f"{self.refiner_d_input!r}")
        if self.phase2_start < 1:
            raise config_lib.ConfigError(f"--phase2-start: expected >= 1, got "
                                         f"{self.phase2_start}")
        if self.precise_bn_batches < 0:
            raise config_lib.ConfigError(f"--precise-bn-batches: expected >= 0 (0: off), got "
                                         f"{self.precise_bn_batches}")
        if self.phase2_batch_size < 1:
            raise config_lib.ConfigError(f"--phase2-batch-size: expected >= 1, got "
                                         f"{self.phase2_batch_size}")


CONFIG = FCRConfig


def net_spec(config: FCRConfig) -> VoxelNetSpec:
    return VoxelNetSpec(grid=config.grid, num_classes=config.num_classes, widths=config.widths,
                        latent_channels=config.latent_channels, kernel=config.kernel,
                        refiner_channels=config.refiner_channels,
                        refiner_blocks=config.refiner_blocks, code_d_units=config.code_d_units,
                        latent1d=config.variant in LATENT1D_VARIANTS)


def build_model(config: FCRConfig) -> FCRAlphaGAN:
    """The scheme with freshly initialised networks, seeded by --seed (call under a strategy
    scope)."""
    networks = build_fcr_networks(net_spec(config), seed=config.seed,
                                  code_discriminator=config.variant not in VAE_VARIANTS)
    return FCRAlphaGAN(networks, variant=config.variant, gamma=config.gamma,
                       kl_weight=config.kl_weight, eg_steps=config.eg_steps,
                       gan_loss=config.gan_loss, refiner_d_input=config.refiner_d_input,
                       seed=config.seed)


def data_root(config: FCRConfig, source: str | None = None) -> str:
    return builtin.voxel_root(config, source)


def make_dataset(config: FCRConfig, batch_size: int, split: str = "train", training=True,
                 source: str | None = None):
    """Integer label scenes [B, X, H, Z]; the model one-hots them (cheaper than feeding
    float one-hot volumes through the pipeline)."""
    return voxel_files.make_voxel_dataset(
        data_root(config, source), split=split, batch_size=batch_size, grid=config.grid,
        shuffle=training, flip=training and config.flip, repeat=training, seed=config.seed,
        deterministic=config.deterministic, one_hot=False, num_classes=config.num_classes)


def make_optimizers(config: FCRConfig, total: int) -> dict:
    """Adam(lr, beta1, beta2) per network; E and G step eg_steps times per iteration. Loss
    scaling under float16 as the other modes (`optimizers.for_precision`)."""
    def adam(per_iteration=1):
        lr = optimizers.learning_rate(config, config.lr, total, per_iteration)
        return optimizers.for_precision(
            optimizers.Adam(lr, beta_1=config.beta1, beta_2=config.beta2), config)
    opts = {"e": adam(config.eg_steps), "g": adam(config.eg_steps), "d": adam(), "r": adam()}
    if config.variant not in VAE_VARIANTS:
        opts["c"] = adam()
    return opts


def fixed_z(model: FCRAlphaGAN, config: FCRConfig) -> np.ndarray:
    """The fixed prior draw decoded at every sample step (seeded by the run's seed)."""
    rng = np.random.default_rng([config.seed, 7])
    return rng.standard_normal((config.n_fixed, *model.latent_shape)).astype("float32")


def _tensorboard_images(labels, size=(320, 240)) -> np.ndarray | None:
    """VTK renders of label scenes as a uint8 batch, or None when they cannot be made (no
    off-screen GL, an empty generated scene). VTK runs in a child process
    (`tfgan3d.render_child`): an EGL context inside the training process can crash it, and a
    crash there must not end the run."""
    try:
        images, errors = render_child.render_scenes(labels, size, timeout_s=600)
    except RuntimeError as error:
        print(f"sample renders skipped: {str(error)[-300:]}", flush=True)
        return None
    failed = [f"error: scene {i + 1}/{len(errors)}: {e}" for i, e in enumerate(errors) if e]
    if failed or not images:
        print(f"sample renders skipped: {(failed or [''])[-1][-300:]}", flush=True)
        return None
    return np.stack(images)


def make_sample_fn(model: FCRAlphaGAN, config: FCRConfig, run: runner.Run):
    z = fixed_z(model, config)
    run.samples_dir.mkdir(exist_ok=True)
    save_npy(run.samples_dir / "fixed_z.npy", z)

    def sample_fn(step):
        probs = model.decode(z)
        outputs = {"generate": np.argmax(probs, -1).astype(np.uint8)}
        if model.phase == 2:
            outputs["generate_refine"] = np.argmax(model.refine(probs), -1).astype(np.uint8)
        for name, labels in outputs.items():
            path = run.samples_dir / f"{name}_{step:07d}.npy"
            save_npy(path, labels)
            images = _tensorboard_images(labels) if config.render_samples else None
            if images is not None:
                tf.summary.image(f"{name} (fixed z)", images, max_outputs=len(images))
            occupied = float(np.mean(labels > 0))
            tf.summary.scalar(f"{name}_occupied_fraction", occupied)
    return sample_fn


def fcr_precise_bn(model: FCRAlphaGAN, config: FCRConfig):
    """Recomputes E's and G's batch-norm statistics over the first --precise-bn-batches
    batches of a fresh phase-1 training stream (seeded, so a resumed run computes the same):
    E's on real scenes as training runs E; then G's on the codes E(x) that inference feeds G
    (E in inference mode, with its new statistics; the mean code for every variant). D and the
    refiner hold no batch statistics; C's are used in training only. Phase 2 then decodes with
    these (it runs E and G in inference mode), as do evaluation and export."""
    batches = config.precise_bn_batches
    rng = precise_bn.seed_states(model)

    def stream():
        return make_dataset(config, config.batch_size).take(batches)

    n = precise_bn.recompute(lambda x: model.encoder(model._one_hot(x), training=True),
                             [model.encoder], stream(), rng)
    n += precise_bn.recompute(
        lambda x: model.generator(model.encode(model._one_hot(x)), training=True),
        [model.generator], stream(), rng)
    print(f"precise batch norm: {n} layers of E and G recomputed over {batches} training "
          f"batches of {config.batch_size}", flush=True)


def train(config: FCRConfig, run: runner.Run) -> dict:
    # --epochs counts passes over the training scenes at the phase-1 batch size.
    total = runner.total_steps(config, voxel_files.count_scenes(data_root(config)),
                               default=100_000)
    phase1_end = min(config.phase2_start - 1, total)
    # Read and checked before the networks are built: labels against --num-classes, naming
    # the file; a data set without an occupied voxel warns.
    phase1_data = make_dataset(config, config.batch_size)
    with run.strategy.scope():
        model = build_model(config)
        optimizers = make_optimizers(config, total)
        model.compile(e_optimizer=optimizers["e"], g_optimizer=optimizers["g"],
                      d_optimizer=optimizers["d"], c_optimizer=optimizers.get("c"),
                      r_optimizer=optimizers["r"], jit_compile=config.jit)
    start = runner.restore(run, model, optimizers)
    sample_fn = make_sample_fn(model, config, run)
    logs = {}
    if start < phase1_end:
        model.set_phase(1)
        phase_end = (lambda: fcr_precise_bn(model, config)) if config.precise_bn_batches \
            else None
        logs = runner.fit(model, phase1_data, run, total=phase1_end,
                          optimizers=optimizers, sample_fn=sample_fn, phase_end=phase_end)
    if total > phase1_end:
        model.set_phase(2)
        logs = runner.fit(model, make_dataset(config, config.phase2_batch_size), run,
                          total=total, optimizers=optimizers, sample_fn=sample_fn,
                          begin=phase1_end)
    return logs


# ----------------------------------------------------------------------------- export

def export_parts(model: FCRAlphaGAN) -> dict:
    parts = {"encoder": model.encoder, "generator": model.generator,
             "discriminator": model.discriminator, "refiner": model.refiner}
    if model.code_discriminator is not None:
        parts["code_discriminator"] = model.code_discriminator
    return parts


# |z| of a served or predicted code: the prior is N(0, 1), so a value beyond this bound is not
# a code but a mistake (1e30 used to decode into a scene of NaN-driven labels).
LATENT_BOUND = 1e3


def generate(model: FCRAlphaGAN, z) -> dict:
    """Codes z [B, *latent] -> {"probabilities", "labels" (int32), "refined_probabilities",
    "refined_labels"}: G(z) and R(G(z))."""
    probs = model.decode(z)
    refined = model.refine(probs)
    return {"probabilities": probs, "labels": tf.argmax(probs, -1, output_type=tf.int32),
            "refined_probabilities": refined,
            "refined_labels": tf.argmax(refined, -1, output_type=tf.int32)}


def serving_models(model: FCRAlphaGAN, config: FCRConfig) -> dict:
    """Three SavedModels, each with a serving_default signature (and tfgan3d_info: the mode and
    the run's config as JSON):
      generator    z float32 [B, *latent], |z| <= LATENT_BOUND -> {"probabilities"
                   [B, X, H, Z, C], "labels" int32, "refined_probabilities", "refined_labels"};
                   generate_uint8: z -> {"labels", "refined_labels"} uint8 class ids only
                   (a scene's 12 probabilities per voxel are 3.7 M floats: too much for REST)
      encoder      voxels int32 labels [B, X, H, Z] -> {"z" float32 [B, *latent]}
      autoencoder  voxels int32 labels -> {"reconstruction", "refined" int32 labels,
                   "refined_probabilities"}; autoencode_uint8: voxels -> {"reconstruction",
                   "refined"} uint8 class ids only
    A batch of 0 scenes or codes gives empty outputs.
    """
    latent = tf.TensorSpec([None, *model.latent_shape], tf.float32, name="z")
    voxels = tf.TensorSpec([None, *config.grid], tf.int32, name="voxels")
    info = serving.info_endpoint("fcr_alphagan", config.to_json())

    # Each request is checked in the graph (rank, grid or latent sizes, labels 0..C-1, finite
    # and bounded z) before the networks run; see serving.checked.
    def check_voxels(voxels):
        return serving.checked(voxels, tuple(config.grid), name="voxels",
                               value_range=(0, config.num_classes - 1))

    def check_z(z):
        return serving.checked(z, tuple(model.latent_shape), name="z",
                               value_range=(-LATENT_BOUND, LATENT_BOUND))

    def serve_generate(z):
        return serving.nonempty(lambda z: generate(model, z), check_z(z))

    def generate_uint8(z):
        out = serve_generate(z)
        return {"labels": tf.cast(out["labels"], tf.uint8),
                "refined_labels": tf.cast(out["refined_labels"], tf.uint8)}

    def encode(voxels):
        return serving.nonempty(
            lambda v: {"z": model.encode(tf.one_hot(v, config.num_classes))},
            check_voxels(voxels))

    def autoencode(voxels):
        return serving.nonempty(lambda v: predict(model, v, config), check_voxels(voxels))

    def autoencode_uint8(voxels):
        out = autoencode(voxels)
        return {"reconstruction": tf.cast(out["reconstruction"], tf.uint8),
                "refined": tf.cast(out["refined"], tf.uint8)}

    return {"generator": {"serving_default": (serve_generate, [latent]),
                          "generate_uint8": (generate_uint8, [latent]),
                          serving.INFO_ENDPOINT: info},
            "encoder": {"serving_default": (encode, [voxels]), serving.INFO_ENDPOINT: info},
            "autoencoder": {"serving_default": (autoencode, [voxels]),
                            "autoencode_uint8": (autoencode_uint8, [voxels]),
                            serving.INFO_ENDPOINT: info}}


def data(config: FCRConfig, split: str = "train", *, source: str | None = None,
         training: bool = True) -> dict:
    """{"scenes": integer label scenes [B, X, H, Z]}: the phase-1 training stream as `train`
    feeds it, or (training=False) `split` of `source` (default --data) in file order, once."""
    return {"scenes": make_dataset(config, config.batch_size, split, training=training,
                                   source=source)}


def predict(model: FCRAlphaGAN, voxels, config: FCRConfig) -> dict:
    """Integer label scenes [B, X, H, Z] -> {"reconstruction", "refined": labels,
    "refined_probabilities"}: G(E(x)) and R(G(E(x)))."""
    probs = model.decode(model.encode(tf.one_hot(voxels, config.num_classes)))
    refined = model.refine(probs)
    return {"reconstruction": tf.argmax(probs, -1, output_type=tf.int32),
            "refined": tf.argmax(refined, -1, output_type=tf.int32),
            "refined_probabilities": refined}


def figures(run_dir) -> list:
    """VTK renders the evaluation programs left in the run folder (the samples are .npy)."""
    run_dir = Path(run_dir)
    return [(str(p.relative_to(run_dir)), p) for p in sorted(run_dir.glob("eval*/**/*.png"))]


MODE = mode_lib.Mode(
    name="fcr_alphagan", description=registry.describe("fcr_alphagan"), config=FCRConfig,
    data=data, build_model=build_model, train=train, predict=predict,
    export_parts=export_parts, serving=serving_models, figures=figures,
    eval_programs=("fcr", "render"))
