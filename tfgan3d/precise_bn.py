"""Precise batch norm: moving statistics recomputed over training batches at the end of a phase.

Batch norm normalises with each batch's own statistics in training and keeps exponential moving
averages of them for inference. At short budgets the averages lag the weights: they mix
statistics of networks from hundreds of updates ago (momentum 0.99 weighs the last 100
iterations; fcr's quick phase 1 is 1200). Precise BN (Wu and Johnson 2021, "Rethinking 'Batch'
in BatchNorm", section 3) replaces them, once training of a phase ends, by the exact
statistics of the final weights: the networks run in training mode on K training batches, and
each batch-norm layer's inputs are pooled over all of them (mean and biased variance over
every example and position of the K batches, per channel), then written to moving_mean and
moving_variance. No weight changes; only what inference normalises with.

Only layers that normalise with batch statistics in the pass are recomputed: a frozen layer
(trainable False) normalises with its moving statistics even in training mode, so they are
part of the function it computes and stay as they are. The pass is eager and reads a fresh,
seeded stream of batches (not the training iterator), so a resumed run recomputes the same
statistics as an uninterrupted one.

    precise_bn.recompute(forward, networks, batches)   # forward(batch) runs them, training=True
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf


def batch_norm_layers(networks: Sequence[keras.Model]) -> list:
    """The BatchNormalization layers of `networks` (nested ones included), each once."""
    found, seen = [], set()
    for net in networks:
        if net is None:
            continue
        for layer in net._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization) and id(layer) not in seen:
                seen.add(id(layer))
                found.append(layer)
    return found


class _Pooled:
    """Per-channel count, mean and sum of squared deviations of every input seen (float64),
    combined batch by batch (Chan et al.'s parallel rule, exact up to rounding)."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, None, None

    def add(self, x, axis: int):
        x = tf.cast(x, tf.float64)
        axis = axis % len(x.shape)
        axes = [i for i in range(len(x.shape)) if i != axis]
        n_b = int(np.prod([x.shape[i] for i in axes]))
        mean_b = tf.reduce_mean(x, axes, keepdims=True)
        m2_b = tf.reduce_sum(tf.square(x - mean_b), axes).numpy()
        mean_b = tf.reshape(mean_b, [-1]).numpy()
        if self.n == 0:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta ** 2 * self.n * n_b / n
        self.n = n

    @property
    def variance(self):
        return self.m2 / self.n


@contextlib.contextmanager
def _recording(layers):
    """Within: each layer's call also pools its inputs when it normalises with batch
    statistics (training and trainable). Yields {id(layer): _Pooled}."""
    pooled = {id(layer): _Pooled() for layer in layers}
    originals = []
    for layer in layers:
        original = layer.call

        def call(inputs, *args, _layer=layer, _original=original, **kwargs):
            training = kwargs.get("training", args[0] if args else None)
            if training and _layer.trainable:
                axis = _layer.axis if isinstance(_layer.axis, int) else _layer.axis[0]
                pooled[id(_layer)].add(inputs, axis)
            return _original(inputs, *args, **kwargs)

        originals.append((layer, "call" in vars(layer), original))
        layer.call = call
    try:
        yield pooled
    finally:
        for layer, had_own, original in originals:
            if had_own:
                layer.call = original
            else:
                del layer.call


def precise_statistics(forward: Callable, networks: Sequence[keras.Model],
                       batches: Iterable) -> dict:
    """{layer: (mean, variance)} pooled over the inputs each batch-norm layer of `networks`
    normalised with batch statistics while `forward(batch)` ran on every batch (eagerly).
    The moving statistics that the pass itself moves are put back as they were."""
    layers = batch_norm_layers(networks)
    saved = [(layer, layer.moving_mean.numpy(), layer.moving_variance.numpy())
             for layer in layers]
    try:
        with _recording(layers) as pooled:
            for batch in batches:
                forward(batch)
    finally:
        for layer, mean, variance in saved:
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
    return {layer: (pooled[id(layer)].mean, pooled[id(layer)].variance)
            for layer in layers if pooled[id(layer)].n}


def recompute(forward: Callable, networks: Sequence[keras.Model], batches: Iterable,
              rng_variables: Sequence[tf.Variable] = ()) -> int:
    """Assigns the precise statistics (`precise_statistics`) to moving_mean / moving_variance
    of the batch-norm layers of `networks` that the pass reached; returns how many layers.

    `rng_variables` (seed-generator states that the pass draws from: dropout, sampling) are
    put back afterwards, so that training after the pass draws what it would have drawn
    without it.
    """
    rng = [(v, v.numpy()) for v in rng_variables]
    try:
        stats = precise_statistics(forward, networks, batches)
    finally:
        for v, value in rng:
            v.assign(value)
    for layer, (mean, variance) in stats.items():
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    return len(stats)


def seed_states(model: keras.Model) -> list:
    """The seed-generator state variables of a model (its random streams)."""
    return [v for v in model.variables if "seed_generator_state" in getattr(v, "path", v.name)]
