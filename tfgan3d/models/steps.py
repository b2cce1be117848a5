"""What the schemes share: the optimizer steps of their players and their keras.Model base."""
import keras
import tensorflow as tf

from tfgan3d import losses


def gradients(optimizer, tape, loss, variables):
    """[(gradient, variable)] of a per-replica mean loss, recorded on `tape`; variables the
    loss does not reach (no gradient) are left out.

    The loss is divided by the replicas in sync and passed through the optimizer's loss
    scaling (mixed precision) inside the tape, so that the all-reduced gradients are those of
    the global-batch mean (the optimizer unscales them when it applies them).
    """
    with tape:  # the scaling must be recorded too
        scaled = optimizer.scale_loss(losses.replica_scaled(loss))
    grads = tape.gradient(scaled, variables)
    return [(g, v) for g, v in zip(grads, variables) if g is not None]


def apply_updates(updates):
    """Applies [(optimizer, [(gradient, variable)])], every gradient having been taken
    before any update (simultaneous steps of several players on one forward pass)."""
    for optimizer, pairs in updates:
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])


def apply_step(optimizer, tape, loss, variables):
    """One optimizer step on a per-replica mean loss, recorded on `tape` (see `gradients`)."""
    apply_updates([(optimizer, gradients(optimizer, tape, loss, variables))])


def step_logs(results: dict) -> dict:
    """A train_step's logs {name: scalar}. Under MultiWorkerMirroredStrategy each value gets a
    leading axis of 1, because Keras averages the logs across workers with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on a scalar."""
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return {name: tf.reshape(value, [1]) for name, value in results.items()}
    return results


class SchemeModel(keras.Model):
    """Base of the schemes' keras.Model wrappers (their networks and optimizers are built
    before `fit`)."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' fit peeks at one batch to build unbuilt state, first averaging it across the
        # replicas; under MultiWorkerMirroredStrategy that reduction fails on a dict batch
        # ("Attempt to convert a value ({'real_a': PerReplica ...}) to a Tensor"). Nothing is
        # left to build here, so the peek is skipped; a model with unbuilt layers still gets it.
        if all(layer.built for layer in self._flatten_layers()):
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
