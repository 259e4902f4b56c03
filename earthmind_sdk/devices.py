"""Check a (device, dtype) request before any weight moves, so a machine without a GPU or a
precision the CPU cannot run gives one line instead of a CUDA or kernel traceback."""
from __future__ import annotations

import re
from typing import Any

from .errors import EarthMindError

DTYPES = ("float32", "bfloat16", "float16")


class DeviceError(EarthMindError, ValueError):
    """A device or precision this machine cannot run."""


def check_device(device: Any, dtype: Any = None, *, where: str = "device") -> None:
    """Raise :class:`DeviceError` for ``cuda`` with no visible GPU, a GPU index that does not
    exist, an unknown device string, or float16 on CPU (bfloat16 and float32 are fine there)."""
    text = str(device)
    m = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", text)
    if m is None:
        raise DeviceError(f"{where}: unknown device {text!r}; use cpu, cuda or cuda:N")
    kind, index = m.group(1), m.group(2)
    if kind != "cpu":
        import torch  # only for a GPU request: validating a CPU recipe stays light
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"{where}: {text!r} asked for, but no GPU is visible to PyTorch on this machine "
                              f"(torch.cuda.is_available() is False); use cpu")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise DeviceError(f"{where}: {text!r} asked for, but this machine shows {count} GPU(s) "
                              f"(cuda:0..cuda:{count - 1})")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"{where}: 'mps' asked for, but no Apple GPU is available; use cpu")
    name = dtype if isinstance(dtype, str) or dtype is None else str(dtype).replace("torch.", "")
    if kind == "cpu" and name == "float16":
        raise DeviceError(f"{where}: float16 on CPU is not supported (CPU kernels lack half precision); "
                          f"use bfloat16 or float32 on CPU, or float16 on a GPU")


def check_recipe_model(config: dict, *, source: str) -> None:
    """``model.device`` / ``model.dtype`` of a recipe about to run (one line naming the key);
    not at validation, so ``--dry-run`` of a GPU recipe works on a machine without one."""
    from .errors import RecipeError

    model = config.get("model") or {}
    try:
        check_device(model.get("device", "cpu"), model.get("dtype"), where=f"{source}: model.device")
    except DeviceError as exc:
        raise RecipeError(str(exc)) from None
