"""The one error type of the data layer, in a module without TensorFlow (the class tables and
the simulators import it in processes that must not load TensorFlow)."""


class DataError(ValueError):
    """A data file or folder that cannot be used as it is; the message names it."""
