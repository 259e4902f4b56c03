"""Periodic training checkpoints: ``<output.dir>/checkpoints/step-<N>/``, written atomically.

A checkpoint holds what the next step depends on, so a resumed run continues bit-equal:

* ``trainable.safetensors`` - every parameter that trains (LoRA adapters, projector, decoder ...)
  by its name; frozen weights come from ``model.checkpoint`` again;
* ``optimizer.pt`` - the optimizer's state (moments, step counts, groups);
* ``rng.pt`` - every random state of every rank: Python, NumPy, torch CPU and CUDA, and any
  ``random.Random`` the trainer owns;
* ``state.json`` - the step, the scheduler (a pure function of the step: kept for readers), the
  sampler's position, the loss history.

``.pt`` files hold tensors and plain containers only and are read with ``weights_only=True``:
nothing in a checkpoint is instantiated by name. The folder is built under a temporary name and
renamed, so a kill mid-save leaves the previous checkpoint as the latest one.
"""
from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..errors import CheckpointError
from .distributed import full_tensor, like

FOLDER = "checkpoints"
_STEP = re.compile(r"^step-(\d+)$")


def step_folder(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / FOLDER / f"step-{step}"


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run folder, oldest first (temporary folders are not listed)."""
    root = Path(run_dir) / FOLDER
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP.match(p.name)) and (p / "state.json").is_file()]
    return sorted(found)


def latest(run_dir: Path) -> Optional[Path]:
    found = checkpoints(run_dir)
    return found[-1][1] if found else None


# -- random states -------------------------------------------------------------------------
def rng_state(owner: Any = None) -> dict[str, Any]:
    """Every random state this process draws from, as tensors and plain containers."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "owned": {k: v.getstate() for k, v in sorted(vars(owner).items()) if isinstance(v, random.Random)}
        if owner is not None else {},
    }
    return state


def set_rng_state(state: dict[str, Any], owner: Any = None) -> None:
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, s in state.get("owned", {}).items():
        rng = getattr(owner, name, None)
        if isinstance(rng, random.Random):
            rng.setstate(_tuples(s))


def _tuples(x):
    """random.setstate wants tuples where a round trip may have made lists."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


# -- save / load -------------------------------------------------------------------------------
def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Whole trainable tensors on CPU (a collective when some are FSDP2 shards: every rank calls it)."""
    return {n: full_tensor(p.detach()).to("cpu").contiguous().clone()
            for n, p in model.named_parameters() if p.requires_grad}


def optimizer_state(optimizer) -> dict[str, Any]:
    """The optimizer's state with sharded moments gathered whole (every rank calls it)."""
    sd = optimizer.state_dict()
    sd["state"] = {i: {k: full_tensor(v).to("cpu") if isinstance(v, torch.Tensor) else v for k, v in st.items()}
                   for i, st in sd["state"].items()}
    return sd


def save(run_dir: Path, step: int, *, weights: dict[str, torch.Tensor], optimizer: dict[str, Any],
         rng_states: list, state: dict[str, Any], keep_last: int = 0, record=None) -> Path:
    """Write ``step-<step>`` atomically (rank 0 only; ``weights`` and ``optimizer`` from
    :func:`trainable_state` / :func:`optimizer_state`), then drop all but the last ``keep_last``
    checkpoints (0 keeps every one). ``record`` notes written files in the run's ledger."""
    from safetensors.torch import save_file

    from ..jobs import atomic_dir

    target = step_folder(run_dir, step)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # a resumed run re-reaching a step it saved before a kill: same content
        shutil.rmtree(target)
    with atomic_dir(target) as tmp:
        save_file(weights, str(tmp / "trainable.safetensors"))
        torch.save(optimizer, tmp / "optimizer.pt")
        torch.save(rng_states, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=1))
    if record is not None:
        record(*(target / f for f in ("trainable.safetensors", "optimizer.pt", "rng.pt", "state.json")))
    if keep_last > 0:
        for _, old in checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old)  # our own step-<N> folders only: made by save() above
    return target


def load(path: Path, *, model, optimizer, rank: int, world: int, owner=None) -> dict[str, Any]:
    """Restore weights, optimizer and this rank's random states; returns ``state.json``."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
        weights = load_file(str(path / "trainable.safetensors"))
        opt_state = torch.load(path / "optimizer.pt", weights_only=True)
        rngs = torch.load(path / "rng.pt", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: cannot read the training checkpoint ({exc})") from None
    if len(rngs) != world:
        raise CheckpointError(f"{path}: saved by {len(rngs)} process(es); resume it with the same number, not {world}")
    params = dict(model.named_parameters())
    mine = {n for n, p in params.items() if p.requires_grad}
    if set(weights) != mine:
        diff = sorted(set(weights) ^ mine)
        raise CheckpointError(f"{path}: trainable parameters differ from this model's ({len(diff)} names, "
                              f"e.g. {diff[0]}); resume with the recipe that saved it")
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(like(t, params[n]))
    ordered = [p for group in optimizer.param_groups for p in group["params"]]
    opt_state["state"] = {i: {k: like(v, ordered[int(i)]) if isinstance(v, torch.Tensor) and v.dim() else v
                              for k, v in st.items()} for i, st in opt_state["state"].items()}
    optimizer.load_state_dict(opt_state)
    set_rng_state(rngs[rank], owner)
    return state
