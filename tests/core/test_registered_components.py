"""Kinds not smoke-tested elsewhere, parametrized over the registry listing so a component is
tested the day it is registered (encoders/projectors/LLMs/decoders: tests/model; sensors:
tests/sensors property tests; tasks: tests/tasks)."""
import inspect

import pytest
import torch

from earthmind_sdk.contracts import FusionOutput, TokenSet
from earthmind_sdk.errors import RecipeError
from earthmind_sdk.plugins import registry
from earthmind_sdk.schema import bind_args

FUSIONS = registry("fusions").names()
METRICS = registry("metrics").names()
DATASETS = registry("datasets").names()


@pytest.mark.parametrize("name", FUSIONS)
def test_every_fusion_runs_on_a_pair_and_reports_weights(name):
    torch.manual_seed(0)
    fusion = registry("fusions").build(name, dim=16)
    sets = [TokenSet(torch.randn(2, 7, 16), sensor="sar"), TokenSet(torch.randn(2, 7, 16), sensor="optical")]
    out = fusion(sets, text_embeds=torch.randn(2, 5, 16))
    assert isinstance(out, FusionOutput)
    assert out.tokens.shape[0] == 2 and out.tokens.shape[-1] == 16 and out.tokens.shape[1] in (7, 14)
    assert out.weights.shape == out.tokens.shape[:2]
    assert set(out.sensor_weights) == {"sar", "optical"}
    assert all(w.shape == (2, 7) for w in out.sensor_weights.values())
    assert torch.isfinite(out.tokens).all()
    pruned = registry("fusions").build(name, dim=16, keep_ratio=0.5)
    pruned.load_state_dict(fusion.state_dict())
    kept = pruned(sets, text_embeds=torch.randn(2, 5, 16)).tokens.shape[1]
    assert kept == -(-out.tokens.shape[1] // 2)  # ceil: a keep ratio never drops to zero tokens


@pytest.mark.parametrize("name", METRICS)
def test_every_metric_resolves_to_a_documented_callable(name):
    metric = registry("metrics").get(name)
    assert callable(metric) and inspect.getdoc(metric)


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_resolves_and_refuses_bad_arguments(name):
    """A recipe's dataset arguments are checked against the dataset's signature before anything
    is read: so no dataset may hide its arguments behind ``**kwargs``."""
    cls = registry("datasets").get(name)
    assert inspect.isclass(cls) and inspect.getdoc(cls)
    with pytest.raises(RecipeError, match=r"r\.yaml: data\.args: unknown argument\(s\) definitely_not_an_argument; "
                                          r"accepted: \w+"):
        bind_args(cls, {"definitely_not_an_argument": 1}, "r.yaml: data.args")
