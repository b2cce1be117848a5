"""The optimizer step shared by the players of every scheme."""
from tfgan3d import losses


def apply_step(optimizer, tape, loss, variables):
    """One optimizer step on a per-replica mean loss, recorded on `tape`.

    The loss is divided by the replicas in sync and passed through the optimizer's loss
    scaling (mixed precision) inside the tape, so that the all-reduced gradients are those of
    the global-batch mean.
    """
    with tape:  # the scaling must be recorded too
        scaled = optimizer.scale_loss(losses.replica_scaled(loss))
    grads = tape.gradient(scaled, variables)
    optimizer.apply_gradients(zip(grads, variables))
