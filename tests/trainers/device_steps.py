"""One training step under MirroredStrategy on 2 logical CPUs against single-device steps, for
the modes whose losses depend on the batch (run by test_device_equivalence in a subprocess:
the CPU must be split before TensorFlow runs any op).

How the global value is formed: each replica takes its own half of the global batch and
computes every batch-dependent quantity over that half (Sim2Real's MMD terms, FCR's
occupancy class weights, batch-norm statistics), draws the same noise as a single device
would for that half, and the replicas' gradients are averaged (each loss divided by the
replicas in sync, then summed). So with plain SGD the mirrored update must equal the mean of
the updates of two single-device models, each stepped on one half.

Prints one line per case: CASE <name> <max |mirrored - reference|> <max |reference|>
<max |full-batch single-device update - reference|>.
"""
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tfgan3d import distribute  # noqa: E402

distribute.split_cpu(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models"))


def snapshot(model):
    return [v.numpy().copy() for v in model.trainable_variables]


def update(before, model):
    return [b - v.numpy() for b, v in zip(before, model.trainable_variables)]


def single_update(build, batch):
    model = build()
    model.run_eagerly = True
    before = snapshot(model)
    model.train_on_batch(batch)
    return update(before, model)


def halves(batch):
    return [tf.nest.map_structure(lambda x: x[i * (x.shape[0] // 2):(i + 1) * (x.shape[0] // 2)],
                                  batch) for i in (0, 1)]


def mirrored_update(strategy, build, batch):
    with strategy.scope():
        model = build()
    before = snapshot(model)
    # One global batch; the strategy gives its first half to replica 0, the second to 1.
    model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, steps_per_epoch=1, verbose=0)
    return update(before, model)


def compare(name, strategy, build, batch):
    parts = [single_update(build, half) for half in halves(batch)]
    reference = [(a + b) / 2 for a, b in zip(*parts)]
    mirrored = mirrored_update(strategy, build, batch)
    full = single_update(build, batch)
    worst = max(float(np.max(np.abs(m - r))) for m, r in zip(mirrored, reference))
    scale = max(float(np.max(np.abs(r))) for r in reference)
    full_gap = max(float(np.max(np.abs(f - r))) for f, r in zip(full, reference))
    print("CASE", name, worst, scale, full_gap, flush=True)


def sim2real_builder(stage):
    from test_sim2real_model import CLASSES, SIZE  # noqa: F401
    from tfgan3d.models.sim2real import Sim2RealVAE
    from tfgan3d.networks.sim2real import Sim2RealNetSpec, build_sim2real_networks

    def build():
        keras.utils.set_random_seed(3)
        spec = Sim2RealNetSpec.scaled(image_size=16, levels=2, width_mult=0.125, res_blocks=0,
                                      num_classes=3)
        model = Sim2RealVAE(build_sim2real_networks(spec), seed=1)
        model.compile(stage1_optimizer=keras.optimizers.SGD(0.05),
                      stage2_optimizer=keras.optimizers.SGD(0.05))
        model.set_stage(stage)
        return model
    return build


def fcr_builder(phase):
    from tfgan3d.models.fcr_alphagan import FCRAlphaGAN
    from tfgan3d.networks.voxel import VoxelNetSpec, build_fcr_networks
    tiny = dict(grid=(16, 8, 16), widths=(4, 8, 8), kernel=(3, 3, 3), latent_channels=4,
                refiner_channels=4, refiner_blocks=1, code_d_units=(16, 16))

    def build():
        model = FCRAlphaGAN(build_fcr_networks(VoxelNetSpec(**tiny), seed=0),
                            variant="alphagan", seed=0, eg_steps=1)
        model.compile(**{f"{k}_optimizer": keras.optimizers.SGD(0.05) for k in "egdcr"})
        model.set_phase(phase)
        return model
    return build


def main():
    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    from test_objectives import scenes
    from test_sim2real_model import toy_batch

    s2r_batch = tf.nest.map_structure(tf.constant, toy_batch(4))
    for stage in (1, 2):
        compare(f"sim2real-stage{stage}", strategy, sim2real_builder(stage), s2r_batch)
    voxels = scenes(4)
    for phase in (1, 2):
        compare(f"fcr-phase{phase}", strategy, fcr_builder(phase), voxels)

    simgan_cases(strategy)


def simgan_model(seed=1):
    from tfgan3d.models.simgan import SimGAN
    from tfgan3d.networks.simgan import build_discriminator, build_refiner
    keras.utils.set_random_seed(seed)
    # P_R = 4, P_D = 3, then cycles of K_g = 2 refiner and K_d = 1 discriminator steps; a
    # buffer of 6 images takes 2 of each global batch of 4: full after 3 D steps, then it
    # replaces random entries.
    model = SimGAN(build_refiner(1, filters=4, blocks=1), build_discriminator((35, 55, 1)),
                   history_size=6, pretrain_r_steps=4, pretrain_d_steps=3, k_g=2, k_d=1, seed=2)
    model.compile(keras.optimizers.SGD(1e-3), keras.optimizers.SGD(1e-3))
    return model


def simgan_state(model):
    return snapshot(model) + [model.buffer.images.numpy().copy()]


def simgan_cases(strategy):
    """SimGAN on 2 replicas against one device at the same global batch of 4, in two fits
    (each starting the batch stream again): pretraining (4 R steps, then 3 D steps), then two
    K_g / K_d cycles (R, R, D, R, R, D). The buffer is gathered, so the mirrored run must
    equal the single-device one (weights and buffer). Then resume under every strategy: the
    mirrored checkpoint after step 7 restored into a fresh mirrored model and into a
    one-device model, each continued 6 steps.

    Prints SIMGAN <segment> <worst |mirrored - single|> <max |single's move|> <buffer diff>
    <max |buffer|> <iteration, R updates, D updates: single, mirrored>, and SIMGAN-RESUME
    <into> <worst |resumed - uninterrupted|> <max move> <buffer draws>."""
    from test_simgan_model import toy_batch
    batches = [toy_batch(4, seed=s) for s in range(3)]
    stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}

    def stream():
        return tf.data.Dataset.from_tensor_slices(stacked).repeat()

    single = simgan_model()
    with strategy.scope():
        mirrored = simgan_model()
    start = simgan_state(single)
    checkpoint = None
    for name, steps in (("pretrain", 7), ("cycles", 6)):
        for model in (single, mirrored):
            model.fit(stream(), epochs=1, steps_per_epoch=steps, verbose=0)
        a, b = simgan_state(single), simgan_state(mirrored)
        worst = max(float(np.max(np.abs(x - y))) for x, y in zip(a[:-1], b[:-1]))
        move = max(float(np.max(np.abs(x - y))) for x, y in zip(a[:-1], start[:-1]))
        print("SIMGAN", name, worst, move, float(np.max(np.abs(a[-1] - b[-1]))),
              float(np.max(np.abs(a[-1]))),
              int(single.iteration.numpy()), int(mirrored.iteration.numpy()),
              int(single.r_optimizer.iterations.numpy()),
              int(mirrored.r_optimizer.iterations.numpy()),
              int(single.d_optimizer.iterations.numpy()),
              int(mirrored.d_optimizer.iterations.numpy()), flush=True)
        if name == "pretrain":
            checkpoint = tf.train.Checkpoint(
                model=mirrored, opt_r=mirrored.r_optimizer, opt_d=mirrored.d_optimizer,
                buffer=mirrored.buffer).save(os.path.join(tempfile.mkdtemp(), "simgan"))
    final = simgan_state(mirrored)
    for into in ("mirrored", "one"):
        if into == "mirrored":
            with strategy.scope():
                resumed = simgan_model(seed=9)
        else:
            resumed = simgan_model(seed=9)
        tf.train.Checkpoint(model=resumed, opt_r=resumed.r_optimizer,
                            opt_d=resumed.d_optimizer, buffer=resumed.buffer
                            ).restore(checkpoint).assert_existing_objects_matched()
        resumed.fit(stream(), epochs=1, steps_per_epoch=6, verbose=0)   # as the run did
        got = simgan_state(resumed)
        worst = max(float(np.max(np.abs(x - y))) for x, y in zip(got, final))
        move = max(float(np.max(np.abs(x - y))) for x, y in zip(final[:-1], start[:-1]))
        print("SIMGAN-RESUME", into, worst, move, int(resumed.buffer.calls.numpy()),
              flush=True)

if __name__ == "__main__":
    main()
