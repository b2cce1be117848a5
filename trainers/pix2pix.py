"""pix2pix recipe: RGB -> depth pairs, U-Net + PatchGAN, Adam, optional linear decay."""
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
from tfgan3d import precise_bn
from tfgan3d.data import builtin, paired, quality
from tfgan3d.data.images import DepthSpec
from tfgan3d.io import to_uint8
from tfgan3d.models.pix2pix import Pix2Pix
from tfgan3d.networks.pix2pix import build_patchgan_discriminator, build_unet_generator
from tfgan3d.trainers import runner

INFERENCE = ("eval", "paper")


@dataclasses.dataclass
class Pix2PixConfig(config_lib.TrainConfig):
    data: str | None = "builtin:scenes-virtual"
    test_data: str | None = None      # default: the test split of --data
    layout: str = "auto"              # auto | folders | aligned
    # Depth format: a flag left out takes dataset.json's value, then the default (auto, 0.001,
    # near-dark, 10 m); the resolved max_depth is written to config.json when the run starts.
    depth_encoding: str | None = None   # auto | png16 | grey8 | npy
    depth_scale: float | None = None  # metres per unit of 16-bit PNGs
    grey_convention: str | None = None  # near-dark | near-bright (8-bit grey depth)
    max_depth: float | None = None    # metres mapped to +1 of the generator's tanh
    load_size: int = 286             # training images are resized to this, then randomly cropped
    crop_size: int = 256             # network input side (training crop; evaluation centre crop)
    flip: bool = True                 # random horizontal flips in training
    n_down: int = 8                   # U-Net depth: crop_size / 2**n_down must be >= 1
    ngf: int = 64                     # generator filters in its first layer
    ndf: int = 64                     # discriminator filters in its first layer
    d_layers: int = 3                 # 3: the 70x70 PatchGAN
    norm: str = "batch"               # batch | instance | none
    bottleneck_norm: bool = True      # normalise the 1x1 bottleneck (TF pix2pix; constant at batch 1)
    lambda_l1: float = 100.0          # weight of the L1 term against the GAN term
    lr: float = 2e-4                  # Adam learning rate of both networks
    beta1: float = 0.5                # Adam beta_1
    beta2: float = 0.999              # Adam beta_2
    d_update: str = "alternating"     # alternating (paper) | simultaneous (TF tutorial)
    mask_invalid: bool = True         # L1 over valid depth pixels only
    # D sees G(x) with the target's invalid pixels as in y (on by default: trained on real-like
    # scenes without it G paints the sensor's holes, worse in 3 of 3 seeds; README)
    mask_d: bool = True
    # Drop training pairs with a larger invalid-depth fraction (the test set is never filtered).
    # 0.2 removes 88% of the built-in real-like maps with the seed's Figure-3 blob, 4% of others.
    max_invalid_fraction: float | None = 0.2
    inference: str = "eval"           # eval: dropout off, moving BN stats | paper: as training
    precise_bn_batches: int = 0       # at the end: G's batch-norm statistics recomputed over
                                      # this many training batches (precise BN, what
                                      # --inference eval normalises with); 0 keeps the moving
                                      # averages (off by default: not measured for pix2pix)
    sim_size: int = 256               # built-in data: rendered image side
    n_train: int = 1500               # built-in data: training scenes (the seed used 1500)
    n_test: int = 150                 # built-in data: test scenes
    n_samples: int = 4                # test images in the sample grids

    PRESET_VALUES: typing.ClassVar[dict[str, dict]] = {
        # The seed's settings: 200 epochs over 1500 pairs at batch 1, the pix2pix default
        # of constant lr for the first half, then linear decay to zero.
        "paper": dict(batch_size=1, steps=300_000, lr_schedule="linear", lr_decay_start=0.5,
                      checkpoint_every=5000, log_every=100, sample_every=5000),
        # standard: about an hour of training per model on 2 CPU cores, for the 2x2 finding
        # (eval domains trains two models per seed) by a wider margin than quick: quick's
        # networks, batch, crop and rate, the seed's 1500 training scenes and 150 test scenes
        # per domain, and about 8 times the steps (53 passes over 1500 pairs).
        # Sized from a measured 0.27-0.35 s per step on 2 cores that another job shared
        # (0.26 CPU-s per step): about 0.16 s per step unshared.
        "standard": dict(batch_size=4, steps=20_000, sim_size=64, load_size=72, crop_size=64,
                         n_down=6, ngf=32, ndf=32, bottleneck_norm=False, n_train=1500,
                         n_test=150, checkpoint_every=1000, log_every=100, sample_every=2000),
        # quick: 2400 steps (24 passes over 400 pairs), was 1200. At 1200 the 2x2 finding held
        # on the virtual test set in 2 of 3 seeds (seeds 0 1 2): seed 2's virtual-trained model
        # was under-trained (back wall too far, checkerboard, objects as blobs; abs_rel 0.224
        # vs 0.156 and 0.192 in seeds 0 and 1), and standard's longer training held on both.
        # At 2400 it holds on both test sets in 3 of 3 seeds (eval domains --preset quick).
        "quick": dict(batch_size=4, steps=2400, sim_size=64, load_size=72, crop_size=64,
                      n_down=6, ngf=32, ndf=32, bottleneck_norm=False, n_train=400, n_test=50,
                      checkpoint_every=200, log_every=50, sample_every=400),
        "tiny": dict(batch_size=2, steps=20, sim_size=32, load_size=36, crop_size=32, n_down=5,
                     ngf=8, ndf=8, bottleneck_norm=False, n_train=12, n_test=4, n_samples=2,
                     checkpoint_every=10, log_every=5, sample_every=10),
    }

    def validate(self):
        super().validate()
        if self.inference not in INFERENCE:
            raise config_lib.ConfigError(f"--inference: expected one of {', '.join(INFERENCE)}, "
                                         f"got {self.inference!r}")
        if self.crop_size % 2 ** self.n_down:
            raise config_lib.ConfigError(
                f"--crop-size {self.crop_size} is not a multiple of 2**n_down = "
                f"{2 ** self.n_down}; choose --n-down so that the U-Net fits the crop")
        if self.load_size < self.crop_size:
            raise config_lib.ConfigError(f"--load-size {self.load_size} is smaller than "
                                         f"--crop-size {self.crop_size}")
        if self.precise_bn_batches < 0:
            raise config_lib.ConfigError(f"--precise-bn-batches: expected >= 0 (0: off), got "
                                         f"{self.precise_bn_batches}")
        if self.max_invalid_fraction is not None and not 0 <= self.max_invalid_fraction <= 1:
            raise config_lib.ConfigError(f"--max-invalid-fraction: expected a fraction in "
                                         f"[0, 1], got {self.max_invalid_fraction}")


CONFIG = Pix2PixConfig


def depth_spec(config: Pix2PixConfig) -> DepthSpec:
    """The flags' depth format; None fields are filled from dataset.json, then defaults."""
    return DepthSpec(encoding=config.depth_encoding, depth_scale=config.depth_scale,
                     grey_convention=config.grey_convention, max_depth=config.max_depth)


def data_root(config: Pix2PixConfig, source: str):
    return builtin.resolve_data_source(source, n_train=config.n_train, n_test=config.n_test,
                                       size=config.sim_size, seed=config.seed,
                                       cache_dir=config.cache_dir)


def find_files(config: Pix2PixConfig, source: str, split: str) -> paired.PairedFiles:
    files = paired.discover_pairs(data_root(config, source), split=split, layout=config.layout,
                                  spec=depth_spec(config))
    paired.validate_pairs(files)
    return files


def find_test_files(config: Pix2PixConfig, train_files) -> paired.PairedFiles:
    """The sample grids' pairs: --test-data's, else the test split of --data. Only a --data
    folder with a train/ split and no test/ falls back to training pairs (said so); any other
    problem, --test-data's above all, is an error."""
    if config.test_data is None:
        root = Path(data_root(config, config.data))
        if (root / "train").is_dir() and not (root / "test").is_dir():
            print(f"note: {root} has no test/ split; the sample grids show training pairs",
                  flush=True)
            return train_files
        return find_files(config, config.data, "test")
    try:
        return find_files(config, config.test_data, "test")
    except ValueError as err:
        raise paired.DataError(f"--test-data {config.test_data}: {err}") from None


def _training_files(config: Pix2PixConfig) -> tuple[paired.PairedFiles, list]:
    """(training pairs kept, pairs dropped by --max-invalid-fraction)."""
    return quality.filter_pairs(find_files(config, config.data, "train"),
                                config.max_invalid_fraction)


def _pairs_dataset(config: Pix2PixConfig, files, training: bool, batch_size=None):
    """Training batches (random crops and flips, shuffled, endless) or evaluation batches
    (centre crop, in order, once)."""
    common = dict(crop_size=config.crop_size, max_depth=config.max_depth, seed=config.seed,
                  deterministic=config.deterministic)
    if training:
        return paired.make_pix2pix_dataset(
            files, load_size=config.load_size, batch_size=batch_size or config.batch_size,
            training=True, flip=config.flip, shuffle=True, repeat=True, **common)
    return paired.make_pix2pix_dataset(files, batch_size=batch_size or config.batch_size,
                                       training=False, shuffle=False, **common)


def data(config: Pix2PixConfig, split: str = "train", *, source: str | None = None,
         training: bool = True) -> dict:
    """{"pairs": batches of {"real_a", "depth", "valid_b", ...}}: the training stream as
    `train` feeds it, or (training=False) `split` of `source` in order, centre-cropped, once;
    without `source` the test split is the sample grids' (--test-data's, else --data's)."""
    train_files = None
    if training or config.max_depth is None or (source is None and split == "train"):
        train_files, _ = _training_files(config)
    if config.max_depth is None:           # as `train` resolves it
        config = dataclasses.replace(config, max_depth=float(train_files.spec.max_depth))
    if training:
        return {"pairs": _pairs_dataset(config, train_files, training=True)}
    if source is None and split == "test":
        files = find_test_files(config, train_files or _training_files(config)[0])
    else:
        files = find_files(config, source or config.data, split)
    return {"pairs": _pairs_dataset(config, files, training=False)}


def build_model(config: Pix2PixConfig) -> Pix2Pix:
    """The Pix2Pix wrapper with freshly initialised networks (call under a strategy scope)."""
    size = (config.crop_size, config.crop_size)
    # The generator takes any size that is a multiple of 2**n_down (inference, export).
    generator = build_unet_generator(3, 1, size=(None, None), n_down=config.n_down, ngf=config.ngf,
                                     norm=config.norm, bottleneck_norm=config.bottleneck_norm)
    discriminator = build_patchgan_discriminator(3, 1, size=size, ndf=config.ndf,
                                                 n_layers=config.d_layers, norm=config.norm)
    return Pix2Pix(generator, discriminator, lambda_l1=config.lambda_l1,
                   d_update=config.d_update, mask_invalid=config.mask_invalid,
                   mask_d=config.mask_d)


def make_optimizers(config: Pix2PixConfig, total: int) -> dict:
    def adam():
        lr = optimizers.learning_rate(config, config.lr, total)
        return optimizers.for_precision(
            optimizers.Adam(lr, beta_1=config.beta1, beta_2=config.beta2), config)
    return {"g": adam(), "d": adam()}


def predict_depth(model: Pix2Pix, real_a, config: Pix2PixConfig):
    """Generator output mapped back to metres."""
    fake_b = model.generator(real_a, training=config.inference == "paper")
    return (tf.cast(fake_b, tf.float32) + 1.0) * 0.5 * config.max_depth


def _grey(depth, valid, max_depth):
    g = np.clip(depth / max_depth, 0, 1)
    if valid is not None:
        g = np.where(valid > 0, g, 0)
    return np.repeat((g * 255).astype(np.uint8), 3, axis=-1)


def sample_grid(model, batch, config) -> np.ndarray:
    """uint8 image: one row per example, input | prediction | ground truth (near dark)."""
    pred = predict_depth(model, batch["real_a"], config).numpy()
    rgb = to_uint8(batch["real_a"].numpy())
    gt = batch["depth"].numpy()
    rows = [np.concatenate([rgb[i], _grey(pred[i], None, config.max_depth),
                            _grey(gt[i], batch["valid_b"].numpy()[i], config.max_depth)], axis=1)
            for i in range(len(rgb))]
    return np.concatenate(rows, axis=0)


def serving_endpoints(model: Pix2Pix, config: Pix2PixConfig) -> dict:
    """serving_default: uint8 RGB [B, H, W, 3] -> {"depth": float32 metres [B, H, W, 1]}.
    serving_encoded: PNG / JPEG strings [B] ("image_bytes", one size per request) -> the same.
    tfgan3d_info: the mode and the run's config (JSON).

    Any H and W: images are mirrored out to multiples of 2**n_down in the graph and the depth
    cropped back (`predict`). Inference follows --inference (eval: deterministic).
    """
    def serve(rgb):
        return predict(model, serving.image_input(rgb, 3), config)

    def serve_encoded(image_bytes):
        return serve(serving.decode_images(image_bytes, 3))

    return {"serving_default": (serve, [tf.TensorSpec([None, None, None, 3], tf.uint8,
                                                      name="rgb")]),
            serving.ENCODED_ENDPOINT: (serve_encoded, [serving.ENCODED_SPEC]),
            serving.INFO_ENDPOINT: serving.info_endpoint("pix2pix", config.to_json())}


def export_parts(model: Pix2Pix) -> dict:
    """Networks saved on their own (the wrapper is training scaffolding)."""
    return {"generator": model.generator, "discriminator": model.discriminator}


def train(config: Pix2PixConfig, run: runner.Run) -> dict:
    train_files, dropped = _training_files(config)
    if dropped:
        print(f"dropped {len(dropped)} training pairs with more than "
              f"{config.max_invalid_fraction:.0%} invalid depth (kept {len(train_files)})",
              flush=True)
    if config.max_depth is None:           # from dataset.json (or the default), recorded
        config.max_depth = float(train_files.spec.max_depth)
        if run.chief:
            runner.write_json_atomic(run.path / "config.json", config.to_dict())
    test_files = find_test_files(config, train_files)
    total = runner.total_steps(config, len(train_files), default=1000)
    dataset = _pairs_dataset(config, train_files, training=True)
    sample_batch = next(iter(_pairs_dataset(config, test_files, training=False,
                                            batch_size=config.n_samples)))

    with run.strategy.scope():
        model = build_model(config)
        optimizers = make_optimizers(config, total)
        model.compile(g_optimizer=optimizers["g"], d_optimizer=optimizers["d"],
                      jit_compile=config.jit)

    run.samples_dir.mkdir(exist_ok=True)

    def sample_fn(step):
        runner.write_sample_grid(run, step, sample_grid(model, sample_batch, config),
                                 "input | prediction | ground truth")

    def recompute_bn():
        """G's statistics over the first --precise-bn-batches batches of a fresh training
        stream (seeded: a resumed run computes the same), G run as training runs it (dropout
        on; its random streams put back). D's statistics serve training only."""
        batches = _pairs_dataset(config, train_files, training=True).take(
            config.precise_bn_batches)
        n = precise_bn.recompute(lambda b: model.generator(b["real_a"], training=True),
                                 [model.generator], batches, precise_bn.seed_states(model))
        print(f"precise batch norm: {n} layers of G recomputed over "
              f"{config.precise_bn_batches} training batches of {config.batch_size}", flush=True)

    return runner.fit(model, dataset, run, total=total, optimizers=optimizers,
                      sample_fn=sample_fn,
                      phase_end=recompute_bn if config.precise_bn_batches else None)


def predict(model: Pix2Pix, real_a, config: Pix2PixConfig) -> dict:
    """RGB in [-1, 1] [B, H, W, 3], any H and W -> {"depth": metres [B, H, W, 1]}: the one
    inference path of predict, export and the serving client. Sizes that are not multiples of
    2**n_down are mirrored out to the next multiple and the depth cropped back."""
    return {"depth": serving.with_padding(lambda x: predict_depth(model, x, config), real_a,
                                          2 ** config.n_down)}


def figures(run_dir) -> list:
    shown = mode_lib.sample_figures(run_dir, {"": "input | prediction | ground truth"})
    return shown + [(f"test set {p.parent.name}: input | prediction | ground truth", p)
                    for p in sorted(Path(run_dir).glob("eval*/grid.png"))]


MODE = mode_lib.Mode(
    name="pix2pix", description=registry.describe("pix2pix"), config=Pix2PixConfig, data=data,
    build_model=build_model, train=train, predict=predict, export_parts=export_parts,
    serving=lambda model, config: {"": serving_endpoints(model, config)}, figures=figures,
    eval_programs=("pix2pix", "domains"))
