import types

import keras
import numpy as np
import pytest

from tfgan3d.networks.voxel import (VOXEL_PRESETS, VoxelNetSpec, build_code_discriminator,
                                    build_discriminator, build_encoder, build_generator,
                                    build_refiner, forward_macs)
from tfgan3d.tools.bench_fcr import phase1_gflop_per_sample

K = 5 * 3 * 5          # anisotropic kernel volume
WIDTHS = (12, 64, 128, 256, 512)
BN = 128 + 256 + 512   # channels of the normalised encoder / discriminator layers


def counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


@pytest.fixture(scope="module")
def paper():
    spec = VoxelNetSpec()
    return {b.__name__[6:]: b(spec, seed=0) for b in (
        build_encoder, build_generator, build_discriminator, build_code_discriminator,
        build_refiner)}


def test_paper_shapes(paper):
    assert [tuple(o.shape) for o in paper["encoder"].outputs] == [(None, 5, 3, 5, 16)] * 2
    assert tuple(paper["generator"].input.shape) == (None, 5, 3, 5, 16)
    assert tuple(paper["generator"].output.shape) == (None, 80, 48, 80, 12)
    assert tuple(paper["discriminator"].output.shape) == (None, 1)
    assert tuple(paper["code_discriminator"].output.shape) == (None, 1)
    assert tuple(paper["refiner"].input.shape) == tuple(paper["refiner"].output.shape) \
        == (None, 80, 48, 80, 12)


def test_paper_parameter_counts(paper):
    convs = sum(K * a * b for a, b in zip(WIDTHS, WIDTHS[1:]))         # 12->64->...->512
    assert convs == 57_600 + 614_400 + 2_457_600 + 9_830_400
    # encoder: 4 convs + two 1x1x1 heads 512->16 + batch-norm gain/offset (moving mean/var)
    assert counts(paper["encoder"]) == (convs + 2 * 512 * 16 + 2 * BN, 2 * BN) \
        == (12_978_176, 1_792)
    # generator: dense 1200 -> 512*75, BN over 38400 units, 4 conv-transposes, 3 BNs
    dense = paper["generator"].get_layer("dense").kernel
    assert int(np.prod(dense.shape)) == 1200 * 38_400 == 46_080_000
    bn_units = 38_400 + 256 + 128 + 64
    assert counts(paper["generator"]) == (46_080_000 + convs + 2 * bn_units, 2 * bn_units) \
        == (59_117_696, 77_696)
    # discriminator: 4 convs, layer-norm gain/offset per channel, dense 5*3*5*512 -> 1
    assert counts(paper["discriminator"]) == (convs + 2 * BN + 38_400, 0) == (13_000_192, 0)
    # code discriminator: 1200 -> 750 -> 750 -> 1, two BNs of 750
    assert counts(paper["code_discriminator"]) == \
        (1200 * 750 + 750 * 750 + 750 + 2 * 1500, 2 * 1500) == (1_466_250, 3_000)
    # refiner: 3x3x3 convs 12->32, 4 blocks of two 32->32, 32->12
    assert counts(paper["refiner"]) == (27 * 12 * 32 + 8 * 27 * 32 * 32 + 27 * 32 * 12, 0) \
        == (241_920, 0)


def test_forward_macs_at_paper_size(paper):
    macs = forward_macs(paper["encoder"])
    # conv 12->64 produces 40*24*40 voxels, each K * 12 * 64 MACs
    assert macs["conv0"] == 40 * 24 * 40 * K * 12 * 64
    assert sum(macs.values()) == (38_400 * K * 12 * 64 + 4_800 * K * 64 * 128
                                  + 600 * K * 128 * 256 + 75 * K * 256 * 512 + 2 * 75 * 512 * 16)
    # the generator's transposed convolutions mirror the encoder's convolutions
    gen = forward_macs(paper["generator"])
    assert gen["dense"] == 46_080_000
    assert gen["logits"] == macs["conv0"] and gen["deconv0"] == macs["conv3"]


def test_small_networks_run_and_keep_shapes():
    spec = VOXEL_PRESETS["quick"]                                    # (32, 16, 32), latent 2x1x2
    assert spec.latent_shape == (2, 1, 2, 8)
    rng = np.random.default_rng(0)
    real = keras.ops.one_hot(rng.integers(0, 12, (2, 32, 16, 32)), 12)
    z_mean, z_log_sigma = build_encoder(spec, seed=0)(real)
    assert z_mean.shape == z_log_sigma.shape == (2, 2, 1, 2, 8)
    probs = build_generator(spec, seed=1)(z_mean)
    assert probs.shape == (2, 32, 16, 32, 12)
    np.testing.assert_allclose(keras.ops.sum(probs, -1), 1.0, rtol=1e-5)
    refined = build_refiner(spec, seed=2)(probs)
    assert refined.shape == probs.shape
    np.testing.assert_allclose(keras.ops.sum(refined, -1), 1.0, rtol=1e-5)
    assert build_discriminator(spec, seed=3)(probs).shape == (2, 1)
    assert build_code_discriminator(spec, seed=4)(z_mean).shape == (2, 1)


def test_latent1d_layers_by_hand():
    spec = VoxelNetSpec(**{**VOXEL_PRESETS["quick"].__dict__, "latent1d": True})
    assert spec.latent_shape == (32,)                                # 2*1*2 * 8 channels
    enc, gen = build_encoder(spec), build_generator(spec)
    assert [tuple(o.shape) for o in enc.outputs] == [(None, 32)] * 2
    # flatten 2*1*2*64 = 256 -> dense 32, twice (mean and log-sigma)
    assert enc.get_layer("z_mean").kernel.shape == (256, 32)
    assert enc.get_layer("z_log_sigma").kernel.shape == (256, 32)
    # the generator starts from the flat code: dense 32 -> 2*1*2*64
    assert tuple(gen.input.shape) == (None, 32)
    assert gen.get_layer("dense").kernel.shape == (32, 256)


def test_layer_norm_does_not_depend_on_the_grid():
    sizes = {"widths": (4, 8, 8, 8), "latent_channels": 2}
    small = build_discriminator(VoxelNetSpec(grid=(16, 16, 16), **sizes))
    large = build_discriminator(VoxelNetSpec(grid=(32, 16, 48), **sizes))
    for name in ("ln1", "ln2", "ln3"):
        assert [w.shape for w in small.get_layer(name).weights] == \
            [w.shape for w in large.get_layer(name).weights] == [(8,), (8,)]
    # per-sample statistics over all of (x, h, z, c): a scene's logit ignores its batch mates
    rng = np.random.default_rng(1)
    x = rng.random((3, 32, 16, 48, 12)).astype("float32")
    alone = large(x[:1], training=True)
    np.testing.assert_allclose(large(x, training=True)[:1], alone, rtol=1e-4, atol=1e-5)


def test_bad_grid_is_rejected_with_the_numbers():
    with pytest.raises(ValueError, match=r"\(16, 8, 16\).*16"):
        VoxelNetSpec(grid=(16, 8, 16), widths=(4, 8, 8, 8))
    assert VoxelNetSpec(grid=(16, 8, 16), widths=(4, 8, 8)).latent_grid == (2, 1, 2)


def test_seeded_weights_and_save_load_round_trip(tmp_path):
    spec = VOXEL_PRESETS["tiny"]
    a, b = build_generator(spec, seed=7), build_generator(spec, seed=7)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())
    kernels = [w.numpy() for w in a.weights if "kernel" in w.path]
    assert not np.allclose(kernels[1].ravel()[:50], kernels[2].ravel()[:50])
    assert np.std(kernels[0]) == pytest.approx(0.02, rel=0.1)
    path = tmp_path / "generator.keras"
    a.save(path)
    z = np.random.default_rng(0).normal(size=(2, *spec.latent_shape)).astype("float32")
    np.testing.assert_allclose(keras.saving.load_model(path)(z), a(z), rtol=1e-6)


def test_bench_flop_estimates_match_the_reference_counts(paper):
    # shared/bench/fcr_original_schedule.py counts the conv / matmul ops of its traced graphs:
    # 716.7 GFLOP per sample for the original schedule, 292 with one forward pass per iteration.
    model = types.SimpleNamespace(**paper, eg_steps=1)
    assert phase1_gflop_per_sample(model, "original") == pytest.approx(716.7, abs=0.1)
    assert phase1_gflop_per_sample(model) == pytest.approx(292.4, abs=0.1)
    model.eg_steps = 2                 # the paper's two pairs: one more shared forward pass
    one_pair = (14.748 + 2 * 14.838 + 2 * 14.746                    # E, 2 G, 2 D forward
                + 2 * 14.748 - 4.424 + 14.838                        # E backward (via G)
                + 2 * (2 * 14.838 - 0.092) + 2 * 14.746)             # G backward (via D twice)
    assert phase1_gflop_per_sample(model) == pytest.approx(292.4 + one_pair, abs=0.1)


def test_refiner_starts_at_the_identity():
    """R(p) = p at initialisation, for confident and for soft probabilities (the original's
    refiner, softmax of a freshly initialised conv, returns a near-uniform softmax)."""
    spec = VOXEL_PRESETS["tiny"]
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, (2, *spec.input_shape)).astype("float32")
    probs = keras.ops.softmax(logits, -1)
    refined = build_refiner(spec, seed=5)(probs)
    np.testing.assert_allclose(refined, probs, atol=2e-5)
    one_hot = keras.ops.one_hot(rng.integers(0, 12, (1, *spec.grid)), 12)
    np.testing.assert_array_equal(np.argmax(build_refiner(spec, seed=5)(one_hot), -1),
                                  np.argmax(one_hot, -1))
