"""Precise batch norm: the recomputed moving statistics are the pooled statistics of the
inputs each layer normalised in training mode over the K batches (worked example in numpy)."""
import keras
import numpy as np

from tfgan3d import precise_bn
from tfgan3d.layers.normalization import BatchNormalization as FusedBatchNormalization


def _tiny():
    inputs = keras.Input((3, 3, 2))
    h = keras.layers.BatchNormalization(epsilon=1e-5, name="bn1")(inputs)
    h = keras.layers.Conv2D(2, 1, use_bias=False, name="conv")(h)
    frozen = FusedBatchNormalization(epsilon=1e-5, name="bn_frozen")
    h = FusedBatchNormalization(epsilon=1e-5, name="bn2")(h)
    outputs = frozen(h)
    frozen.trainable = False
    model = keras.Model(inputs, outputs)
    model.get_layer("conv").set_weights([np.array([[[[1.0, 0.5], [-2.0, 1.0]]]], "float32")])
    return model


def test_precise_statistics_are_the_numpy_mean_and_variance_over_the_k_batches():
    rng = np.random.default_rng(0)
    # K = 3 batches of 4 with different means, so that pooling differs from averaging the
    # batches' variances (the between-batch spread counts) and from an EMA of them.
    batches = [rng.normal(shift, 1.0 + shift, (4, 3, 3, 2)).astype("float32")
               for shift in (0.0, 1.0, 3.0)]
    model = _tiny()
    frozen = model.get_layer("bn_frozen")
    frozen_before = [frozen.moving_mean.numpy().copy(), frozen.moving_variance.numpy().copy()]
    assert precise_bn.recompute(lambda x: model(x, training=True), [model], batches) == 2

    pooled = np.concatenate(batches).reshape(-1, 2).astype(np.float64)
    bn1 = model.get_layer("bn1")
    np.testing.assert_allclose(bn1.moving_mean.numpy(), pooled.mean(0), rtol=1e-6)
    np.testing.assert_allclose(bn1.moving_variance.numpy(), pooled.var(0), rtol=1e-6)
    assert not np.allclose(bn1.moving_variance.numpy(),
                           np.mean([b.reshape(-1, 2).var(0) for b in batches], 0), rtol=1e-3)

    # bn2's inputs: bn1 normalises each batch with that batch's own statistics (training
    # mode), then the 1x1 conv mixes the channels.
    kernel = np.array([[1.0, 0.5], [-2.0, 1.0]])
    gamma = model.get_layer("bn1").gamma.numpy()
    seen = []
    for b in batches:
        flat = b.reshape(-1, 2).astype(np.float64)
        normed = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5) * gamma
        seen.append(normed @ kernel)
    seen = np.concatenate(seen)
    bn2 = model.get_layer("bn2")
    np.testing.assert_allclose(bn2.moving_mean.numpy(), seen.mean(0), atol=1e-6)
    np.testing.assert_allclose(bn2.moving_variance.numpy(), seen.var(0), rtol=1e-5)
    # a frozen layer normalises with its moving statistics: they are part of its function
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), frozen_before[0])
    np.testing.assert_array_equal(frozen.moving_variance.numpy(), frozen_before[1])


def test_no_weight_changes_and_rng_states_are_put_back():
    model = _tiny()
    weights = [w.copy() for w in model.get_weights()]
    state = keras.Variable(np.array([5, 7]), dtype="int64")
    batches = [np.ones((2, 3, 3, 2), "float32") * k for k in range(2)]

    def forward(x):
        state.assign_add([1, 1])
        return model(x, training=True)

    precise_bn.recompute(forward, [model], batches, rng_variables=[state])
    assert state.numpy().tolist() == [5, 7]
    moving = {"moving_mean", "moving_variance"}
    for before, v in zip(weights, model.weights):
        if v.name not in moving:
            np.testing.assert_array_equal(before, v.numpy())
