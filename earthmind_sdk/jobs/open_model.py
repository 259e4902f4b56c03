"""One place that turns "what the user named" into a model and its tokenizer: an HF-format
checkpoint directory, a bundled spec name (random weights), a spec YAML path, or a spec dict.
Every job opens its model here (:func:`open_recipe_model` for a recipe's ``model:`` block)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import EarthMindError


def open_model(model: str | dict, *, checkpoint: str | None = None, dtype: str | Any = None,
               device: str = "cpu"):
    """-> (model, tokenizer). ``checkpoint`` wins over ``model`` when both are given."""
    import torch

    from ..devices import check_device
    from ..model.graph import build_model
    from ..model.spec import bundled_spec_names, load_spec

    check_device(device, dtype)
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype  # None: as stored
    if checkpoint is None and isinstance(model, str) and Path(model).is_dir():
        checkpoint = model
    if checkpoint is not None:
        from ..checkpoint import load
        from ..text.tokenizer import load_tokenizer

        path = Path(checkpoint)
        if not path.is_dir():
            raise EarthMindError(f"checkpoint {checkpoint}: not a directory")
        net, _info = load(path, dtype=torch_dtype, device=device)
        return net, load_tokenizer(path)
    if isinstance(model, str) and not Path(model).exists() and model not in bundled_spec_names():
        raise EarthMindError(
            f"model {model!r}: no such checkpoint directory or spec file, and not a bundled spec "
            f"({', '.join(bundled_spec_names())})"
        )
    from ..text.tokenizer import default_tokenizer

    spec = load_spec(model)
    net = build_model(spec).to(device=device, dtype=torch_dtype or torch.float32)
    return net, default_tokenizer()


def open_recipe_model(model: dict[str, Any], *, device: str | None = None, spec_seed: int | None = None):
    """A recipe's ``model:`` block (``spec``, ``checkpoint``, ``dtype``, ``device``) -> (model,
    tokenizer). ``device`` overrides the block's (a torchrun rank's own device). With
    ``spec_seed``, a model built from a spec (random weights) is seeded first, so every rank and
    every rerun gets the same weights."""
    if spec_seed is not None and not model["checkpoint"]:
        import torch

        torch.manual_seed(spec_seed)
    return open_model(model["spec"], checkpoint=model["checkpoint"], dtype=model["dtype"],
                      device=device or model["device"])
