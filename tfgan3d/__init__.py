"""tfgan3d: adversarial and VAE schemes of the seed documents, in Keras 3."""
import os
import sys

# TensorFlow's CPU wheels leave oneDNN off on CPUs without AVX-512. Which kernels are faster
# depends on the networks (measured on 2-core AVX2 machines):
#  - on: TensorFlow's own kernels run the gradients of strided 3D convolutions 50-150x slower
#    than the forward pass (fcr_alphagan quick step 58.5 s -> 0.40 s with oneDNN); the simgan
#    quick run takes 10-12 s instead of 18-29 s;
#  - off: the 2D convolutions of 64x64 and larger maps in the pix2pix U-Net and PatchGAN run
#    2-4x faster on TensorFlow's kernels (paper step 1.55 s -> 1.05 s).
# The flag is read once, when TensorFlow is imported. Importing tfgan3d defaults it to on; an
# entry point that knows its mode calls `prefer_onednn_for(mode)` before importing TensorFlow.
# A value the user exported is never changed.
ONEDNN_BY_MODE = {"pix2pix": "0"}          # every other mode: on
_USER_ONEDNN = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def prefer_onednn_for(mode: str) -> None:
    """Set TF_ENABLE_ONEDNN_OPTS to `mode`'s measured choice, unless the user set it or
    TensorFlow is already imported (then the call changes nothing)."""
    if _USER_ONEDNN is None and "tensorflow" not in sys.modules:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = ONEDNN_BY_MODE.get(mode, "1")


__version__ = "0.1.0"


def load(model, checkpoint=None):
    """A trained model, ready to predict: a run folder (its newest whole checkpoint, or
    `checkpoint`) or an exported SavedModel. `load(MODEL).predict(array_or_path)` returns numpy
    arrays in user units (depth in metres, class ids, refined images, voxel labels); see
    `tfgan3d.inference.Model.predict`."""
    from tfgan3d import inference
    return inference.load(model, checkpoint)
