"""Shared fixtures: an offline Hugging Face environment for every test, and the tiny model."""
import pytest


@pytest.fixture(autouse=True, scope="session")
def _hf_offline(tmp_path_factory):
    """transformers must never reach the network or a user cache in these tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_model(_hf_offline):
    import torch

    from earthmind_sdk.model.graph import build_model

    torch.manual_seed(0)
    return build_model("tiny").eval()


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory, _hf_offline):
    """The README's main command, shortened the one documented way, run once as a real subprocess
    in a scratch folder holding ``recipes/`` and ``tests/``: (folder, completed process). The
    quickstart test and the documentation examples (``tests/docs``) share it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    work = tmp_path_factory.mktemp("docs-workspace")
    for name in ("recipes", "tests"):
        (work / name).symlink_to(root / name)
    env = dict(os.environ, HF_HUB_OFFLINE="1", EARTHMIND_SMOKE="1")
    res = subprocess.run([str(Path(sys.executable).with_name("earthmind")), "run", "recipes/quickstart.yaml"],
                         capture_output=True, text=True, timeout=600, env=env, cwd=work)
    return work, res
