"""The fused / matrix-product layers and the fused Adam against the Keras originals they
replace: same outputs, same gradients, same moving statistics, same optimizer trajectory."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.layers import conv
from tfgan3d.layers.normalization import BatchNormalization
from tfgan3d.optimizers import Adam


def close(a, b, rtol=2e-5):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.abs(a).max(), 1e-6)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= rtol * scale, np.abs(a - b).max() / scale


def outputs_and_grads(layer, x, dy):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    grads = tape.gradient(y, [x] + layer.trainable_weights, output_gradients=tf.constant(dy))
    return y, grads


def twins(keras_cls, our_cls, shape, **kwargs):
    ref, ours = keras_cls(**kwargs), our_cls(**kwargs)
    ref.build(shape)
    ours.build(shape)
    rng = np.random.default_rng(1)
    for w in ref.weights:  # random values, so that scale and shift matter too
        w.assign(rng.uniform(0.2, 1.0, w.shape).astype("float32"))
    ours.set_weights(ref.get_weights())
    return ref, ours


CONVS = [  # (input shape, layer kwargs): each path of the Conv2D layer
    ((2, 2, 2, 24), dict(filters=16, kernel_size=4, strides=2, padding="same")),   # matmul
    ((1, 8, 6, 8), dict(filters=5, kernel_size=4, strides=2, padding="same")),     # 4x3 out
    ((2, 5, 5, 6), dict(filters=7, kernel_size=3, strides=2, padding="valid")),    # matmul
    ((2, 11, 9, 12), dict(filters=1, kernel_size=4, padding="valid")),             # stride 1
    ((1, 12, 12, 8), dict(filters=6, kernel_size=4, padding="valid")),             # stride 1
    ((1, 32, 32, 4), dict(filters=6, kernel_size=4, strides=2, padding="same")),   # Keras
]


def test_conv2d_paths_are_taken_as_documented():
    """The shapes above exercise the matmul and stride-1 paths, not only Keras' own."""
    x = tf.zeros((1, 2, 2, 24))
    small = conv.Conv2D(16, 4, strides=2, padding="same")
    graph = tf.function(small).get_concrete_function(x).graph
    ops = {op.type for op in graph.get_operations()}
    assert "MatMul" in ops and "Conv2D" not in ops
    big = conv.Conv2D(16, 4, strides=2, padding="same")
    ops = {op.type for op in tf.function(big).get_concrete_function(
        tf.zeros((1, 32, 32, 4))).graph.get_operations()}
    assert "Conv2D" in ops and "MatMul" not in ops


TRANSPOSED = [
    ((2, 1, 1, 12), dict(filters=8, kernel_size=4, strides=2, padding="same")),
    ((1, 3, 2, 10), dict(filters=6, kernel_size=4, strides=2, padding="same", use_bias=True)),
    ((2, 4, 4, 6), dict(filters=5, kernel_size=4, strides=2, padding="valid")),
    ((1, 3, 3, 4), dict(filters=3, kernel_size=3, strides=1, padding="same")),
    ((1, 20, 20, 4), dict(filters=3, kernel_size=4, strides=2, padding="same")),  # Keras
]


CASES = ([(keras.layers.Conv2D, conv.Conv2D, *case) for case in CONVS]
         + [(keras.layers.Conv2DTranspose, conv.Conv2DTranspose, *case) for case in TRANSPOSED])


@pytest.mark.parametrize("keras_cls,our_cls,shape,kwargs", CASES)
def test_convolutions_match_keras(keras_cls, our_cls, shape, kwargs):
    ref, ours = twins(keras_cls, our_cls, shape, **kwargs)
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape).astype("float32")
    dy = rng.normal(size=ref(x).shape).astype("float32")
    (y0, g0), (y1, g1) = outputs_and_grads(ref, x, dy), outputs_and_grads(ours, x, dy)
    close(y1, y0)
    for a, b in zip(g1, g0):       # input, kernel (and bias) gradients
        close(a, b)


def test_unknown_spatial_shape_falls_back_to_keras():
    layer = conv.Conv2DTranspose(4, 4, strides=2, padding="same")
    fn = tf.function(layer).get_concrete_function(tf.TensorSpec((None, None, None, 3)))
    ops = {op.type for op in fn.graph.get_operations()}
    assert "Conv2DBackpropInput" in ops and "MatMul" not in ops
    y = layer(tf.ones((1, 2, 3, 3)))
    assert y.shape == (1, 4, 6, 4)


@pytest.mark.parametrize("shape", [(2, 6, 5, 4), (3, 4, 3, 5, 6), (1, 1, 1, 7)])
def test_batch_norm_matches_keras(shape):
    kwargs = dict(momentum=0.9, epsilon=1e-5)
    ref, ours = twins(keras.layers.BatchNormalization, BatchNormalization, shape, **kwargs)
    rng = np.random.default_rng(4)
    x = rng.normal(2.0, 3.0, size=shape).astype("float32")
    dy = rng.normal(size=shape).astype("float32")
    start = [w.numpy() for w in ours.weights]      # gamma, beta, moving mean, moving variance
    (y0, g0), (y1, g1) = outputs_and_grads(ref, x, dy), outputs_and_grads(ours, x, dy)
    # With one value per channel (last case) the output is beta; the fused kernel's rounding
    # of x - mean is multiplied by 1 / sqrt(epsilon) there.
    rtol = 1e-3 if np.prod(shape[:-1]) == 1 else 2e-5
    close(y1, y0, rtol)
    for a, b in zip(g1, g0):
        close(a, b, rtol)
    # Keras' rule with the biased batch variance: new = 0.9 * old + 0.1 * batch statistic.
    flat = x.reshape(-1, shape[-1]).astype("float64")
    close(ours.moving_mean, 0.9 * start[2] + 0.1 * flat.mean(0), 1e-5)
    close(ours.moving_variance, 0.9 * start[3] + 0.1 * flat.var(0), 1e-5)
    close(ours.moving_variance, ref.moving_variance, 1e-5)
    close(ours(x, training=False), ref(x, training=False), 1e-4)


def test_adam_follows_keras_adam():
    rng = np.random.default_rng(5)
    init = [rng.normal(size=s).astype("float32") for s in ((4, 4, 8, 6), (6,), (300,))]

    def trajectory(cls):
        variables = [keras.Variable(v, name=f"w{i}") for i, v in enumerate(init)]
        opt = cls(learning_rate=0.01, beta_1=0.5, beta_2=0.99, epsilon=1e-7)
        step = tf.function(lambda grads: opt.apply_gradients(zip(grads, variables)))
        for t in range(5):
            grads = [tf.constant(np.cos(v * (t + 1)).astype("float32")) for v in init]
            step(grads)
        return [v.numpy() for v in variables], opt

    (ref, ref_opt), (ours, our_opt) = trajectory(keras.optimizers.Adam), trajectory(Adam)
    for a, b, v0 in zip(ours, ref, init):
        close(a, b, 1e-5)
        assert np.abs(a - v0).max() > 0.01        # the variables did move
    assert int(our_opt.iterations) == 5
    # The same slots under the same names (checkpoints interchange), holding the same moments.
    slots = [{v.path.split("/", 1)[1]: v.numpy() for v in opt.variables}
             for opt in (our_opt, ref_opt)]
    assert list(slots[0]) == list(slots[1])
    assert any("momentum" in name for name in slots[0])
    for name in slots[0]:
        close(slots[0][name], slots[1][name], 1e-5)


def test_fused_kernels_are_used():
    bn = BatchNormalization()
    ops = {op.type for op in tf.function(lambda x: bn(x, training=True)).get_concrete_function(
        tf.TensorSpec((2, 4, 4, 3))).graph.get_operations()}
    assert "FusedBatchNormV3" in ops and "Rsqrt" not in ops
    var = keras.Variable(np.ones(5, "float32"))
    opt = Adam(0.1)
    opt.build([var])
    ops = {op.type for op in tf.function(lambda g: opt.apply_gradients([(g, var)]))
           .get_concrete_function(tf.TensorSpec((5,))).graph.get_operations()}
    assert "ResourceApplyAdam" in ops and "Sqrt" not in ops
