import pytest


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of the tiny optical spec, random weights, seeded."""
    import torch

    from earthmind_sdk.jobs.open_model import open_model

    torch.manual_seed(0)
    return open_model("tiny")


@pytest.fixture(scope="session")
def tiny_paired():
    import torch

    from earthmind_sdk.jobs.open_model import open_model

    torch.manual_seed(1)
    return open_model("tiny-paired")
