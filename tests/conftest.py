import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """One cache folder for the embedded digits set, shared by all tests."""
    return str(tmp_path_factory.mktemp("digits_cache"))
