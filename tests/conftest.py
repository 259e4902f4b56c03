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

    from earthmind_sdk.model.spec import build_model

    torch.manual_seed(0)
    return build_model("tiny").eval()
