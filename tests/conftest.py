"""Test-wide settings: quiet TensorFlow and a private cache for built-in data sets."""
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")   # as tfgan3d/__init__.py
# Built-in data sets are generated once per test session, never into the user's cache.
os.environ["TFGAN3D_CACHE"] = tempfile.mkdtemp(prefix="tfgan3d-test-cache-")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shared_tiny(tmp_path_factory):
    """Tiny trained runs of every mode and their serving export, made once per session for
    the modules that only read them (tests/shared_tiny.py)."""
    from shared_tiny import SharedTiny, shared_root
    return SharedTiny(shared_root(tmp_path_factory))
