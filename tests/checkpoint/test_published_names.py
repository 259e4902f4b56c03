"""Tensor names against what the authors' code writes.

``tests/data/published/{v1,v2}_{config.json,tensor_names.txt}``: the config.json and the sorted
tensor names of tiny models built and saved by the authors' own modeling code in the published
layout (2 vision layers, a 2-layer LLM of hidden size 2048, full SAM2 Hiera-L; recorded by
``scripts/parity``). The model our loader builds from that config.json must expect exactly
those names, and write exactly those names when saved.
"""
import json
from pathlib import Path

import pytest
import torch

from earthmind_sdk.checkpoint import _expected
from earthmind_sdk.checkpoint.config import spec_from_config
from earthmind_sdk.checkpoint.layout import checkpoint_name, decide
from earthmind_sdk.model.decoder import SAM2Decoder
from earthmind_sdk.model.graph import EarthMindModel
from earthmind_sdk.model.spec import validate_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "published"


@pytest.fixture(scope="module")
def sam2_names():
    """Our Hiera-L SAM2's checkpoint names (built once, in bf16 to halve the memory)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        dec = SAM2Decoder("sam2_hiera_l")
    finally:
        torch.set_default_dtype(old)
    return {checkpoint_name("grounding_encoder." + k) for k in dec.state_dict()}


@pytest.mark.parametrize("version,variant", [("v1", "earthmind-v1"), ("v2", "earthmind-v2")])
def test_our_names_are_the_authors_names(version, variant, sam2_names):
    cfg = json.loads((DATA / f"{version}_config.json").read_text())
    theirs = set((DATA / f"{version}_tensor_names.txt").read_text().split())
    shapes = {n: (2, 2048) for n in theirs}  # only local_query's presence and row count matter here
    decision = decide(cfg, shapes)
    assert decision.variant == variant
    spec, _ = spec_from_config(cfg, shapes, DATA, {**decision.spec_keys(), "decoder": None})
    with torch.device("meta"):  # the rest of the graph, without allocating its weights
        model = EarthMindModel(validate_spec(spec))
    ours = set(_expected(model)) | sam2_names
    assert sorted(ours - theirs) == [] and sorted(theirs - ours) == []
    assert any(n.endswith(".g_weight") for n in theirs) and not any(n.endswith(".gamma") for n in theirs)
