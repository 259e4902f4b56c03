"""Every job opens its model through jobs.open_model: a recipe's ``model:`` block -> model and
tokenizer, spec-built weights seeded so that every rank and every rerun agree."""
import pytest
import torch

from earthmind_sdk.errors import EarthMindError
from earthmind_sdk.jobs.open_model import open_model, open_recipe_model

BLOCK = {"spec": "tiny", "checkpoint": None, "dtype": "float32", "device": "cpu"}


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_spec_seed_gives_the_same_random_weights_every_time():
    a, _ = open_recipe_model(BLOCK, spec_seed=0)
    torch.manual_seed(123)  # whatever ran before must not matter
    b, tok = open_recipe_model(BLOCK, spec_seed=0)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    c, _ = open_recipe_model(BLOCK, spec_seed=1)
    assert not all(torch.equal(wa[k], v) for k, v in _weights(c).items())
    assert tok.convert_tokens_to_ids("<IMG_CONTEXT>") == a.spec.tokens["img_context_token_id"]


def test_the_block_dtype_and_a_device_override_are_used():
    model, _ = open_recipe_model({**BLOCK, "dtype": "bfloat16", "device": "no-such-device"}, device="cpu")
    p = next(model.parameters())
    assert p.dtype == torch.bfloat16 and p.device.type == "cpu"


def test_an_unknown_model_is_one_line_naming_the_bundled_specs():
    with pytest.raises(EarthMindError, match="not a bundled spec .*tiny"):
        open_model("no-such-model")
