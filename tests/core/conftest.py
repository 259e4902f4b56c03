import importlib.metadata as md
import sys
import textwrap

import pytest

from earthmind_sdk import plugins


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path where tests write plugin modules."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(module: str, source: str) -> md.EntryPoint:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(module, None)
        return md.EntryPoint(name=module.replace("_", "-"), value=module, group=plugins.ENTRY_POINT_GROUP)

    return write


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    monkeypatch.delenv(plugins.BLOCK_ENV, raising=False)
