"""SimGAN recipe: refine synthetic eyes (or depth maps) with unlabeled real ones.

Shrivastava et al. 2017, section 3. Eyes (`--data builtin:eyes`, 35x55 grey): the 3x3 refiner
with 4 ResNet blocks and the eye discriminator list; R pretrained for 1000 steps on
self-regularisation, D for 200, then K_g = 50 refiner updates per discriminator update
(section 3.1 reads "we update R_theta twice, i.e. K_d is set to 1, and K_g is set to 50"; the
authors' blog settles it: "for eye gaze estimation experiment we ended up using 50 steps of G
for each D step", 2 for hands). Hands (`--data builtin:depth`): 7x7 filters, 10 blocks, 500
pretraining steps, K_g = 2, and the hand discriminator list when the images are 224x224 or
larger (`discriminator_layers`). Optimizer: SGD at a constant 0.001 on mini-batches of 512 ("All
networks are trained with a constant 0.001 learning rate and 512 batch size"; each update is "a
stochastic gradient descent (SGD) step"). For the hands the supplement used 2e-4, then 5e-5
after 600,000 steps: `--lr 2e-4 --lr-schedule piecewise --lr-boundaries 600000 --lr-factors 1
0.25`. `--optimizer adam` is offered; the blog advises a small rate (~1e-4) and a long run,
stopped by looking at the samples. Not in the paper: lambda, the buffer size B and the run
length. Our losses sum over each image (l_reg over its pixels, l_real over its patches, as
eq. 4), and lambda = 0.1 keeps the two terms of one order for 35x55 eyes.
"""
from __future__ import annotations

import dataclasses
import typing

import keras
import numpy as np
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d import mode as mode_lib
from tfgan3d import registry
from tfgan3d import serving
from tfgan3d import optimizers
from tfgan3d import losses
from tfgan3d.data import refine_data
from tfgan3d.io import to_uint8
from tfgan3d.models.simgan import ADVERSARIAL, SimGAN, count_updates
from tfgan3d.networks.simgan import (DISCRIMINATOR_LAYERS, NORMS, PADDINGS, REFINER_LAYERS,
                                     REFINER_PADDINGS, build_discriminator, build_refiner)
from tfgan3d.trainers import runner

VARIANTS = ("auto", "eyes", "hands")
OPTIMIZERS = ("sgd", "adam")
# The two experiments of section 3: refiner size, P_R and K_g.
VARIANT_DEFAULTS = {
    variant: dict(refiner_kernel=REFINER_LAYERS[variant]["kernel"],
                  refiner_blocks=REFINER_LAYERS[variant]["blocks"], **schedule)
    for variant, schedule in (("eyes", dict(pretrain_r_steps=1000, k_g=50)),
                              ("hands", dict(pretrain_r_steps=500, k_g=2)))}
HANDS_SIZE = (224, 224)   # the hand discriminator's list was designed for this input
DEPTH_SOURCES = ("builtin:depth",)


@dataclasses.dataclass
class SimGANConfig(config_lib.TrainConfig):
    data: str | None = "builtin:eyes"    # synthetic images: builtin:eyes|depth or a folder
    real_data: str | None = None         # unlabeled real images; default: those of --data
    image_size: tuple[int, ...] = ()     # (height, width); empty: the data's own, written to
                                         # config.json when the run starts
    grey: bool = True                    # 1 channel (depth maps always)
    n_synthetic: int | None = None       # None: the data's (built-in: 20000 eyes, 2000 depth)
    n_real: int | None = None            # None: the data's (built-in: as many as synthetic)
    variant: str = "auto"                # eyes | hands | auto (hands for builtin:depth)
    refiner_kernel: int | None = None    # None: the variant's (eyes 3, hands 7)
    refiner_blocks: int | None = None    # None: the variant's (eyes 4, hands 10)
    refiner_filters: int = 64            # refiner width (the paper: 64)
    refiner_padding: str = "reflect"     # reflect | symmetric | zeros ("same"; draws a frame)
    refiner_noise: int = 0               # > 0: per-pixel noise channels into R (not the paper's)
    discriminator: str = "auto"          # layer list eyes | hands | auto: discriminator_layers
    d_padding: str = "valid"             # valid: 4x9 patch map at 35x55 (see networks)
    d_norm: str = "none"                 # none (the paper's list) | batch
    adversarial: str = "local"           # local | global (ablation)
    use_history: bool = True             # False: the ablation without the history buffer
    buffer_size: int = 25600             # B: 50 mini-batches of 512 (not given in the paper)
    self_reg_feature: str = "identity"   # identity | mean | gradient
    lambda_reg: float = 0.1              # weight of the self-regularisation L1 term
    pretrain_r_steps: int | None = None  # None: the variant's (eyes 1000, hands 500)
    pretrain_d_steps: int = 200          # discriminator-only steps before the alternation
    k_g: int | None = None               # None: the variant's (eyes 50, hands 2)
    k_d: int = 1                         # discriminator updates per iteration (K_d)
    optimizer: str = "sgd"               # sgd (paper) | adam
    lr: float = 1e-3                     # learning rate of both networks
    momentum: float = 0.0                # sgd
    beta1: float = 0.9                   # adam
    n_samples: int = 8                   # images per sample grid

    PRESET_VALUES: typing.ClassVar[dict[str, dict]] = {
        # Section 3.1: mini-batches of 512, SGD at 0.001; the run length is not given.
        "paper": dict(batch_size=512, steps=100_000, checkpoint_every=5000, log_every=100,
                      sample_every=2000),
        # 2 CPU cores, a few minutes: a narrower refiner with the paper's 4 blocks (a 19x19
        # receptive field against D's 23x23 patches; 2 blocks saw 11x11 and lost to D), Adam
        # at a rate below 1e-3 (the blog's advice; 1e-3 drifts into stripes here), K_g = 5 so
        # that R keeps up with the local D in a short run (K_g = 2 let D win at 0.99).
        "quick": dict(batch_size=16, steps=1500, n_synthetic=4000, n_real=2000,
                      refiner_filters=16, refiner_blocks=4, buffer_size=1024,
                      pretrain_r_steps=200, pretrain_d_steps=50, k_g=5, optimizer="adam",
                      lr=3e-4, checkpoint_every=250, log_every=50, sample_every=250),
        "tiny": dict(batch_size=4, steps=24, n_synthetic=64, n_real=64, refiner_filters=8,
                     refiner_blocks=1, buffer_size=16, pretrain_r_steps=8,
                     pretrain_d_steps=4, k_g=2, optimizer="adam", lr=1e-3, n_samples=2,
                     checkpoint_every=8, log_every=4, sample_every=12),
    }

    def __post_init__(self):
        # Options left at None take the variant's values, so that config.json is complete.
        if self.variant == "auto":
            self.variant = "hands" if self.data in DEPTH_SOURCES else "eyes"
        for name, value in VARIANT_DEFAULTS.get(self.variant, {}).items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def validate(self):
        super().validate()
        choices = {"variant": VARIANTS, "discriminator": ("auto", *DISCRIMINATOR_LAYERS),
                   "d_padding": PADDINGS, "refiner_padding": REFINER_PADDINGS,
                   "d_norm": NORMS, "adversarial": ADVERSARIAL,
                   "self_reg_feature": losses.SELF_REG_FEATURES, "optimizer": OPTIMIZERS}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise config_lib.ConfigError(f"--{name.replace('_', '-')}: expected one of "
                                             f"{', '.join(valid)}, got {getattr(self, name)!r}")
        for name, low in (("refiner_kernel", 1), ("refiner_blocks", 0), ("refiner_filters", 1),
                          ("refiner_noise", 0),
                          ("buffer_size", 1), ("pretrain_r_steps", 0), ("pretrain_d_steps", 0),
                          ("k_g", 1), ("k_d", 1), ("n_samples", 1), ("n_synthetic", 1),
                          ("n_real", 1)):
            if getattr(self, name) is not None and getattr(self, name) < low:
                raise config_lib.ConfigError(f"--{name.replace('_', '-')}: expected >= {low}, "
                                             f"got {getattr(self, name)}")
        if self.image_size and len(self.image_size) != 2:
            raise config_lib.ConfigError(f"--image-size: expected HEIGHT WIDTH, got "
                                         f"{list(self.image_size)}")
        if self.use_history and self.buffer_size < self.batch_size // 2:
            raise config_lib.ConfigError(
                f"--buffer-size {self.buffer_size} cannot hold half a batch "
                f"({self.batch_size // 2} images of --batch-size {self.batch_size})")
        if self.lambda_reg < 0:
            raise config_lib.ConfigError(f"--lambda-reg: expected >= 0, got {self.lambda_reg}")


CONFIG = SimGANConfig


def make_datasets(config: SimGANConfig):
    """(endless dataset of {"synthetic", "real"} batches, refine_data's info dict)."""
    synthetic_ds, real_ds, info = refine_data.make_refine_datasets(
        config.data, config.real_data, batch_size=config.batch_size,
        image_size=tuple(config.image_size) or None, seed=config.seed,
        n_synthetic=config.n_synthetic, n_real=config.n_real, grey=config.grey,
        cache_dir=config.cache_dir)
    dataset = tf.data.Dataset.zip((synthetic_ds, real_ds)).map(
        lambda s, r: {"synthetic": s["image"], "real": r["image"]},
        num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
    return dataset, info


def discriminator_layers(config: SimGANConfig, size) -> str:
    """The layer list: --discriminator, or for "auto" the hand list when the hands variant
    trains at the paper's 224x224 or larger, else the eye list (23x23 patches; at the
    built-in depth maps' 64x64 an 11x11 map, patches a third of the image as the hand list's
    71 of 224)."""
    if config.discriminator != "auto":
        return config.discriminator
    big = all(s >= h for s, h in zip(size, HANDS_SIZE))
    return "hands" if config.variant == "hands" and big else "eyes"


def image_channels(config: SimGANConfig) -> int:
    depth = "builtin:depth" in (config.data, config.real_data)
    return 1 if config.grey or depth else 3


def build_model(config: SimGANConfig) -> SimGAN:
    """The SimGAN wrapper with freshly initialised networks (call under a strategy scope).

    Needs --image-size, which `train` fills in from the data when it was left empty.
    """
    if len(config.image_size) != 2:
        raise config_lib.ConfigError("image_size is not set: give --image-size HEIGHT WIDTH "
                                     "(a run folder's config.json has it once training started)")
    image_shape = (*config.image_size, image_channels(config))
    refiner = build_refiner(image_shape[-1], kernel=config.refiner_kernel,
                            blocks=config.refiner_blocks, filters=config.refiner_filters,
                            padding=config.refiner_padding, noise_channels=config.refiner_noise,
                            seed=config.seed)
    discriminator = build_discriminator(
        image_shape, layer_list=discriminator_layers(config, config.image_size),
        padding=config.d_padding, norm=config.d_norm, head=config.adversarial)
    return SimGAN(refiner, discriminator, lambda_reg=config.lambda_reg,
                  self_reg_feature=config.self_reg_feature, adversarial=config.adversarial,
                  use_history=config.use_history, history_size=config.buffer_size,
                  pretrain_r_steps=config.pretrain_r_steps,
                  pretrain_d_steps=config.pretrain_d_steps, k_g=config.k_g, k_d=config.k_d,
                  seed=config.seed)


def _updates(config: SimGANConfig, iterations: int) -> tuple[int, int]:
    return count_updates(iterations, pretrain_r_steps=config.pretrain_r_steps,
                         pretrain_d_steps=config.pretrain_d_steps, k_g=config.k_g,
                         k_d=config.k_d)


def make_optimizers(config: SimGANConfig, total: int) -> dict:
    def make(player):
        # Schedules count each player's own updates: iterations -> that player's updates.
        lr = optimizers.learning_rate(config, config.lr, total,
                                      lambda t: _updates(config, t)[player])
        if config.optimizer == "sgd":
            opt = keras.optimizers.SGD(lr, momentum=config.momentum)
        else:
            opt = optimizers.Adam(lr, beta_1=config.beta1)
        return optimizers.for_precision(opt, config)
    return {"r": make(0), "d": make(1)}


def sample_grid(model: SimGAN, batch: dict) -> np.ndarray:
    """uint8 image: one row per example, synthetic | refined | real, 2-pixel gaps."""
    synthetic, real = batch["synthetic"], batch["real"]
    refined = model.refiner(synthetic, training=False)
    columns = [to_uint8(synthetic), to_uint8(refined), to_uint8(real)]
    n, h, w, c = columns[0].shape
    grid = np.full((n * (h + 2) - 2, 3 * (w + 2) - 2, c), 255, np.uint8)
    for i in range(n):
        for j, col in enumerate(columns):
            grid[i * (h + 2):i * (h + 2) + h, j * (w + 2):j * (w + 2) + w] = col[i]
    return grid


def min_image_side(config: SimGANConfig) -> int:
    """The smallest H and W the refiner takes (its mirrored convolutions pad kernel // 2 rows,
    fewer than the image has); smaller images are mirrored out to it by `predict`."""
    return 1 if config.refiner_padding == "zeros" else config.refiner_kernel // 2 + 1


def serving_endpoints(model: SimGAN, config: SimGANConfig) -> dict:
    """serving_default: float32 synthetic images [B, H, W, C] in [-1, 1] -> {"refined":
    float32 [B, H, W, C] in [-1, 1]}, the data's own scale (depth maps included).
    refine_uint8: uint8 images (0..255 -> [-1, 1]) -> {"refined": uint8}.
    serving_encoded: PNG / JPEG strings [B] ("image_bytes", one size per request) -> as
    refine_uint8. tfgan3d_info: the mode and the run's config (JSON).

    Any H and W >= 1: the refiner is fully convolutional and keeps the size (its receptive
    field is set by the variant, so sizes near the training size refine as trained); images
    smaller than its mirrored padding needs are mirrored out and cropped back (`predict`).
    """
    channels = model.refiner.input_shape[-1]

    def serve(synthetic):
        # Rank, channels and values checked in the graph before the refiner runs.
        synthetic = serving.checked(synthetic, (None, None, channels), name="synthetic",
                                    value_range=(-1.0, 1.0))
        return predict(model, synthetic, config)

    def serve_uint8(image):
        refined = predict(model, serving.image_input(image, channels, name="image"),
                          config)["refined"]
        return {"refined": tf.cast(tf.round(tf.clip_by_value((refined + 1.0) * 127.5, 0, 255)),
                                   tf.uint8)}

    def serve_encoded(image_bytes):
        return serve_uint8(serving.decode_images(image_bytes, channels))

    return {"serving_default": (serve, [tf.TensorSpec([None, None, None, channels], tf.float32,
                                                      name="synthetic")]),
            "refine_uint8": (serve_uint8, [tf.TensorSpec([None, None, None, channels],
                                                         tf.uint8, name="image")]),
            serving.ENCODED_ENDPOINT: (serve_encoded, [serving.ENCODED_SPEC]),
            serving.INFO_ENDPOINT: serving.info_endpoint("simgan", config.to_json())}


def export_parts(model: SimGAN) -> dict:
    """Networks saved on their own (the wrapper is training scaffolding)."""
    return {"refiner": model.refiner, "discriminator": model.discriminator}


def complete_config(config: SimGANConfig, info: dict, run: runner.Run) -> None:
    """Fills in what the data decides (image size, the "auto" discriminator) and rewrites the
    run's config.json, so that the run folder rebuilds the same model (export, resume)."""
    size = tuple(int(s) for s in info["image_shape"][:2])
    if tuple(config.image_size) == size and config.discriminator != "auto":
        return
    config.image_size = size
    config.discriminator = discriminator_layers(config, size)
    if run.chief:
        runner.write_json_atomic(run.path / "config.json", config.to_dict())
    print(f"image size {size[0]}x{size[1]}, discriminator layers {config.discriminator!r}",
          flush=True)


def train(config: SimGANConfig, run: runner.Run) -> dict:
    replicas = run.strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        # The history buffer mixes the global batch gathered from the replicas (see
        # tfgan3d/models/simgan.py), which needs equal shares.
        raise runner.RunError(f"--batch-size {config.batch_size}: expected a multiple of the "
                              f"{replicas} replicas of --strategy {config.strategy}, found "
                              f"a remainder of {config.batch_size % replicas}")
    dataset, info = make_datasets(config)
    complete_config(config, info, run)
    total = runner.total_steps(config, info["n_synthetic"], default=10_000)
    first = next(iter(dataset))
    sample_batch = {k: v[:config.n_samples] for k, v in first.items()}

    with run.strategy.scope():
        model = build_model(config)
        optimizers = make_optimizers(config, total)
        model.compile(r_optimizer=optimizers["r"], d_optimizer=optimizers["d"],
                      jit_compile=config.jit)

    run.samples_dir.mkdir(exist_ok=True)

    def sample_fn(step):
        runner.write_sample_grid(run, step, sample_grid(model, sample_batch),
                                 "synthetic | refined | real")

    extra_state = {"buffer": model.buffer} if model.buffer is not None else None
    return runner.fit(model, dataset, run, total=total, optimizers=optimizers,
                      sample_fn=sample_fn, extra_state=extra_state)


def data(config: SimGANConfig, split: str = "train", *, source: str | None = None,
         training: bool = True) -> dict:
    """{"pairs": endless batches of {"synthetic", "real"}} as `train` feeds them. simgan has
    no test split of its own: its evaluation (the gaze experiment, `eval simgan`) draws its
    own labelled sets."""
    if not training or split != "train" or source is not None:
        raise ValueError(f"simgan: split {split!r}: expected 'train' (the gaze experiment "
                         f"`python -m tfgan3d.eval simgan` makes its own test sets)")
    return {"pairs": make_datasets(config)[0]}


def predict(model: SimGAN, synthetic, config: SimGANConfig) -> dict:
    """Synthetic images in [-1, 1] [B, H, W, C], any H and W >= 1 -> {"refined": [B, H, W, C]
    in [-1, 1]}: the one inference path of predict, export and the serving client. Images
    smaller than the refiner's mirrored padding needs are mirrored out and cropped back."""
    return {"refined": serving.with_padding(lambda x: model.refiner(x, training=False),
                                            synthetic, 1, min_image_side(config))}


MODE = mode_lib.Mode(
    name="simgan", description=registry.describe("simgan"), config=SimGANConfig, data=data,
    build_model=build_model, train=train, predict=predict, export_parts=export_parts,
    serving=lambda model, config: {"": serving_endpoints(model, config)},
    figures=lambda run_dir: mode_lib.sample_figures(run_dir, {"": "synthetic | refined | real"}),
    eval_programs=("simgan", "eye_gap"))
