"""Shared test fixtures. Tests run on CPU; `../shared` (real videos, specs) is optional."""
import os

import paddle
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared")

paddle.set_device("cpu")


@pytest.fixture
def shared_dir():
    """The ../shared folder beside the checkout (CI has it; a user's clone may not)."""
    if not os.path.isdir(SHARED):
        pytest.skip(f"{SHARED} is absent: it holds the real videos and spec files these tests use")
    return SHARED
