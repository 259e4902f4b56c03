import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("train_layouts", Path(__file__).with_name("layouts.py"))
LAYOUTS = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(LAYOUTS)


@pytest.fixture
def layouts():
    """Writers of tiny datasets in each published layout (tests/train/layouts.py)."""
    return LAYOUTS


@pytest.fixture(scope="module")
def layouts_module():
    return LAYOUTS
