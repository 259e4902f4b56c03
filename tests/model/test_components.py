"""Every registered encoder / projector / language model / decoder builds from its own tiny_args()
and runs on CPU. Parametrized over the registry, so a new component is tested the day it lands
(and fails here if it ships no tiny_args)."""
import pytest
import torch

from earthmind_sdk.plugins import registry

KINDS = ("encoders", "projectors", "language_models", "decoders")
CASES = [(kind, name) for kind in KINDS for name in registry(kind).names()]


def test_builtins_are_registered():
    assert {"internvit", "timm"} <= set(registry("encoders").names())
    assert "mlp1" in registry("projectors").names()
    assert {"qwen2", "phi3"} <= set(registry("language_models").names())
    assert "sam2" in registry("decoders").names()


def test_tiny_sizes_have_one_source():
    """The tiny spec's components are the built-ins' tiny_args(): editing tiny.yaml resizes both."""
    from earthmind_sdk.model.spec import load_spec

    spec = load_spec("tiny")
    for key, kind in (("encoder", "encoders"), ("language_model", "language_models"), ("decoder", "decoders")):
        part = getattr(spec, key)
        assert registry(kind).get(part["name"]).tiny_args() == part["args"], key
    assert registry("language_models").get("phi3").tiny_args()["hidden_size"] == spec.language_model["args"]["hidden_size"]


@pytest.mark.parametrize("kind,name", CASES, ids=[f"{k}:{n}" for k, n in CASES])
def test_component_builds_and_runs_tiny(kind, name):
    factory = registry(kind).get(name)
    tiny = getattr(factory, "tiny_args", None)
    assert callable(tiny), f"{kind[:-1]} {name!r} has no tiny_args(): it cannot be tested at tiny size"
    torch.manual_seed(0)
    with torch.no_grad():
        if kind == "encoders":
            enc = registry(kind).build(name, **tiny())
            x = torch.rand(2, 3, enc.image_size, enc.image_size)
            out = enc(x)
            assert out.shape == (2, enc.grid[0] * enc.grid[1], enc.out_dim)
            assert torch.isfinite(out).all()
            # tiles are independent: encoding one alone gives the same tokens
            torch.testing.assert_close(enc(x[1:]), out[1:], rtol=1e-4, atol=1e-5)
        elif kind == "projectors":
            proj = registry(kind).build(name, in_dim=12, out_dim=20, **tiny())
            out = proj(torch.randn(2, 5, 12))
            assert out.shape == (2, 5, 20) and torch.isfinite(out).all()
        elif kind == "language_models":
            lm = registry(kind).build(name, **tiny())
            ids = torch.tensor([[1, 2, 3, 151667]])
            out = lm(input_ids=ids, output_hidden_states=True)
            assert out.logits.shape == (1, 4, lm.config.vocab_size)
            assert lm.config.vocab_size > 151667  # the released Qwen2.5 ids fit
            assert out.hidden_states[-1].shape == (1, 4, lm.config.hidden_size)
        else:
            dec = registry(kind).build(name, **tiny())
            s, d = dec.image_size, dec.prompt_dim
            out = dec(torch.rand(2, 3, s, s), [torch.randn(3, d), torch.randn(0, d)], [(17, 23), (9, 5)])
            assert [tuple(o.shape) for o in out] == [(3, 17, 23), (0, 9, 5)]
            assert torch.isfinite(out[0]).all()


def test_component_without_tiny_args_is_caught():
    """The check above is real: it fails for a registered encoder that ships no tiny_args."""
    class Bare(torch.nn.Module):
        pass

    reg = registry("encoders")
    reg.register("bare-test", Bare, owner="test")
    try:
        with pytest.raises(AssertionError, match="encoder 'bare-test' has no tiny_args"):
            test_component_builds_and_runs_tiny("encoders", "bare-test")
    finally:
        reg.unregister("bare-test")
