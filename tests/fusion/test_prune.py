import torch

from earthmind_sdk.contracts import FusionOutput
from earthmind_sdk.model.fusion.prune import (kept_count, prune, remap_sap_target, remap_token_indices,
                                              sap_target_lost)


def _out():
    w = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.2, 0.8], [0.6, 0.1, 0.2, 0.3, 0.9, 0.4]])
    tok = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3)
    return FusionOutput(tokens=tok, weights=w)


def test_prune_keeps_top_weights_in_order():
    p = prune(_out(), 0.5)
    assert p.source_index.tolist() == [[1, 3, 5], [0, 4, 5]]
    assert kept_count(6, 0.5) == 3 and kept_count(6, 0.01) == 1


def test_prune_twice_composes_source_index():
    p = prune(prune(_out(), 0.5), 0.6)
    assert p.source_index.tolist() == [[1, 5], [0, 4]]


def test_region_indices_and_sap_target_follow_pruning():
    p = prune(_out(), 0.5)
    # region over unpruned tokens 2, 3, 5 of sample 0 -> pruned positions of 3 and 5
    assert remap_token_indices(torch.tensor([2, 3, 5]), p.source_index, 0, 6).tolist() == [1, 2]
    target = torch.tensor([[0.0, 0.5, 0.0, 0.25, 0.25, 0.0], [0.0, 0.5, 0.5, 0.0, 0.0, 0.0]])
    t = remap_sap_target(target, p.source_index)
    assert torch.allclose(t[0], torch.tensor([2 / 3, 1 / 3, 0.0]))
    assert sap_target_lost(target, p.source_index).tolist() == [False, True]
    assert torch.allclose(t[1], torch.full((3,), 1 / 3))
