"""tfgan3d: adversarial and VAE schemes of the seed documents, in Keras 3."""
import os

# TensorFlow's CPU wheels leave oneDNN off on CPUs without AVX-512; its own kernels then run
# the gradients of strided 3D convolutions 50-150x slower than the forward pass (measured:
# fcr_alphagan quick step 58.5 s -> 0.40 s). Must be set before TensorFlow is imported; an
# explicit TF_ENABLE_ONEDNN_OPTS=0 from the user is respected.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
