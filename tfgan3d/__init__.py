"""tfgan3d: adversarial and VAE schemes of the seed documents, in Keras 3."""
__version__ = "0.1.0"
