"""Child of test_sync_bn: one pix2pix training step (batch norm in G and D, dropout off) on
a global batch of 4, on one device and under MirroredStrategy on 2 logical CPUs with and
without synchronised batch norm. Prints

    CASE <name> <max |update - single-device update|> <max |single-device update|>
         <max |moving statistics - single device's|>

for "sync" and "local" (per-replica statistics, Keras' default).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tfgan3d import distribute  # noqa: E402

distribute.split_cpu(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfgan3d.layers.normalization import synchronize_batch_norm  # noqa: E402
from tfgan3d.models.pix2pix import Pix2Pix  # noqa: E402
from tfgan3d.networks.pix2pix import build_patchgan_discriminator, build_unet_generator  # noqa


def build(sync):
    keras.utils.set_random_seed(5)
    generator = build_unet_generator(3, 1, size=(16, 16), n_down=3, ngf=4, dropout=0.0,
                                     bottleneck_norm=False)
    discriminator = build_patchgan_discriminator(3, 1, size=(16, 16), ndf=4, n_layers=2)
    model = Pix2Pix(generator, discriminator, lambda_l1=10.0)
    model.compile(g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.1))
    if sync:
        assert synchronize_batch_norm(model) > 0
    return model


def state(model):
    trainable = [v.numpy().copy() for v in model.trainable_variables]
    moving = [v.numpy().copy() for v in model.non_trainable_variables if "moving" in v.path]
    return trainable, moving


def step(model, batch):
    before, _ = state(model)
    model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, steps_per_epoch=1, verbose=0)
    after, moving = state(model)
    return [b - a for b, a in zip(before, after)], moving


def main():
    rng = np.random.default_rng(0)
    # Halves that differ in mean and spread, so that per-replica statistics differ from the
    # global ones.
    rgb = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    rgb[2:] = 0.3 * rgb[2:] + 0.5
    depth = np.tanh(rgb[..., :1] * 2).astype(np.float32)
    batch = {"real_a": tf.constant(rgb), "real_b": tf.constant(depth),
             "valid_b": tf.ones((4, 16, 16, 1))}
    single = build(False)
    single.run_eagerly = True
    reference, reference_moving = step(single, batch)
    scale = max(float(np.abs(r).max()) for r in reference)
    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    for name, sync in (("sync", True), ("local", False)):
        with strategy.scope():
            model = build(sync)
        update, moving = step(model, batch)
        worst = max(float(np.abs(u - r).max()) for u, r in zip(update, reference))
        moving_gap = max(float(np.abs(m - r).max()) for m, r in zip(moving, reference_moving))
        print("CASE", name, worst, scale, moving_gap, flush=True)


if __name__ == "__main__":
    main()
