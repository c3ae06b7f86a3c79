"""Fixtures for the data/ tool tests: run a tool's main() and fabricate small videos."""
import importlib.util
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(REPO, "data")


def load_tool(name):
    """Import data/<name>.py as a module (data/ is a folder of scripts, not a package)."""
    if DATA not in sys.path:
        sys.path.insert(0, DATA)
    spec = importlib.util.spec_from_file_location(f"data_tool_{name}", os.path.join(DATA, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod            # so worker processes can pickle its functions
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def tool():
    return load_tool


@pytest.fixture
def fab():
    spec = importlib.util.spec_from_file_location(
        "loader_conftest_helpers", os.path.join(REPO, "tests", "loader", "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
