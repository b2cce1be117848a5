"""--sync-bn: batch norm with statistics over the global batch. On 2 logical CPUs under
MirroredStrategy one pix2pix step (batch norm in both networks) then equals one device's step
on the whole batch; with Keras' default per-replica statistics it does not (the control)."""
import os
import subprocess
import sys
from pathlib import Path

import keras

from tfgan3d.layers.normalization import BatchNormalization, synchronize_batch_norm

HERE = Path(__file__).parent
TOLERANCE = 1e-5          # float32 sums over two replicas in another order


def test_synchronize_batch_norm_reaches_nested_networks():
    inner = keras.Sequential([keras.Input((4, 4, 2)), BatchNormalization(),
                              keras.layers.BatchNormalization()])
    outer = keras.Sequential([keras.Input((4, 4, 2)), inner, keras.layers.GroupNormalization(2)])
    assert synchronize_batch_norm(outer) == 2
    assert all(layer.synchronized for layer in inner.layers)
    assert synchronize_batch_norm(outer) == 0          # already synchronised
    assert BatchNormalization.from_config(inner.layers[0].get_config()).synchronized


def test_sync_bn_mirrored_step_equals_one_device_on_the_global_batch():
    out = subprocess.run([sys.executable, str(HERE / "sync_bn_child.py")], check=True,
                         capture_output=True, text=True, timeout=900,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}).stdout
    cases = {line.split()[1]: [float(v) for v in line.split()[2:]]
             for line in out.splitlines() if line.startswith("CASE")}
    print(cases)
    worst, scale, moving = cases["sync"]
    assert scale > 0.01 and worst < TOLERANCE and moving < TOLERANCE, cases
    local_worst, _, local_moving = cases["local"]
    assert local_worst > 100 * TOLERANCE and local_moving > 10 * TOLERANCE, cases
