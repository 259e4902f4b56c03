"""Language models through transformers: the HF causal-LM module itself, so its state-dict keys
are ``model.layers...`` / ``lm_head...`` under the graph's ``language_model`` prefix.

Constructor arguments are the fields of ``config.json``'s ``llm_config`` (plus
``attn_implementation``); nothing is downloaded and no remote code runs. Which of them a
checkpoint's ``llm_config.architectures`` names is the ``architectures`` registry (filled by
:mod:`earthmind_sdk.model.plugin` and plugins).
"""
from __future__ import annotations

from typing import Any

_DROP = {"architectures", "model_type", "_name_or_path", "transformers_version", "auto_map", "torch_dtype", "dtype"}


def _build(model_type: str, config: dict[str, Any], attn_implementation: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = {k: v for k, v in config.items() if k not in _DROP}
    cfg = AutoConfig.for_model(model_type, **fields)
    cfg._attn_implementation = attn_implementation
    return AutoModelForCausalLM.from_config(cfg, attn_implementation=attn_implementation)


def qwen2(attn_implementation: str = "sdpa", **config: Any):
    """Qwen2ForCausalLM (Qwen2 / Qwen2.5; EarthMind-4B and Sa2VA-4B use Qwen2.5-3B)."""
    return _build("qwen2", config, attn_implementation)


def phi3(attn_implementation: str = "sdpa", **config: Any):
    """Phi3ForCausalLM (InternVL2-4B-based Sa2VA variants)."""
    return _build("phi3", config, attn_implementation)


def llama(attn_implementation: str = "sdpa", **config: Any):
    return _build("llama", config, attn_implementation)


def tiny_config(model_type: str) -> dict[str, Any]:
    """The tiny spec's two-layer language model (its vocabulary holds the released Qwen2.5 token
    ids, <IMG_CONTEXT>=151667), with what ``model_type`` needs besides."""
    from .spec import tiny_args

    base = tiny_args("language_model")
    if model_type == "phi3":
        base.update(num_key_value_heads=4, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return base


qwen2.tiny_args = lambda: tiny_config("qwen2")  # type: ignore[attr-defined]
phi3.tiny_args = lambda: tiny_config("phi3")  # type: ignore[attr-defined]
llama.tiny_args = lambda: tiny_config("llama")  # type: ignore[attr-defined]


def architecture_of(lm) -> str:
    return type(lm).__name__


def llm_config(lm) -> dict[str, Any]:
    """The ``llm_config`` block of ``config.json`` for a built language model."""
    cfg = lm.config.to_dict()
    cfg["architectures"] = [architecture_of(lm)]
    cfg.pop("_attn_implementation_autoset", None)
    return cfg
