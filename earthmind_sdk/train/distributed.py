"""How the model is spread over processes: replicated (DDP-style) or sharded with FSDP2.

``replicate`` (default): every rank holds the whole model; gradients are summed with one
all-reduce per parameter per step (the trainer's explicit all-reduce, because the model's
stages are called as separate methods a DDP wrapper would not see).

``fsdp2`` (full fine-tuning of large models): :func:`torch.distributed.fsdp.fully_shard` on
every transformer layer of the LLM and the vision encoder and on the vision encoder and
projector as wholes, so each rank stores 1/world of their weights,
gradients and optimizer moments. The LLM's embeddings, final norm and (tied) head stay
replicated and are all-reduced like the default path: tied weights cannot be split between
units. So do the SAM2 decoder and the ``[SEG]`` projection: they run only for micro-batches
holding masks, and a sharded unit must run on every rank alike (its all-gather would wait). Gradients are reduce-scattered as sums (divide factor 1), because the trainer already
normalises each loss by its count over the global batch.
"""
from __future__ import annotations

from typing import Iterable

import torch

SHARDING = ("replicate", "fsdp2")


def is_sharded(p: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(p, DTensor)


def fsdp2_units(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules to shard, innermost first (layers before the module that holds them)."""
    units: list[torch.nn.Module] = []
    for tower in ("language_model", "vision_model"):
        sub = getattr(model, tower, None)
        for name, module in (sub.named_modules() if sub is not None else ()):
            if isinstance(module, torch.nn.ModuleList) and name.split(".")[-1] == "layers":
                units.extend(m for m in module if any(True for _ in m.parameters()))
                break  # the transformer's own layer list, not lists inside a layer
    for child in ("vision_model", "mlp1"):
        sub = getattr(model, child, None)
        if sub is not None and any(True for _ in sub.parameters()):
            units.append(sub)
    return units


def shard_fsdp2(model: torch.nn.Module) -> list[torch.nn.Module]:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    device = next(model.parameters()).device
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    units = fsdp2_units(model)
    for unit in units:
        fully_shard(unit, mesh=mesh)
        unit.set_gradient_divide_factor(1.0)
        unit.set_force_sum_reduction_for_comms(True)  # plain SUM (gloo has no pre-multiplied sum)
    return units


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor on every rank (a collective for a sharded one)."""
    return t.full_tensor() if is_sharded(t) else t


def like(full: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``full`` laid out as ``p`` is (this rank's shard when ``p`` is sharded)."""
    if is_sharded(p):
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(full.to(p.dtype), p.device_mesh, p.placements)
    return full


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float, world: int) -> torch.Tensor:
    """Global gradient norm over replicated and sharded parameters; scales grads to ``max_norm``."""
    params = [p for p in params if p.grad is not None]
    plain = [p.grad for p in params if not is_sharded(p.grad)]
    shards = [p.grad.to_local() for p in params if is_sharded(p.grad)]
    sq_shards = sum((g.float().pow(2).sum() for g in shards), torch.zeros((), dtype=torch.float32))
    if world > 1 and shards:
        import torch.distributed as dist

        dist.all_reduce(sq_shards)
    sq = sq_shards + sum((g.float().pow(2).sum() for g in plain), torch.zeros((), dtype=torch.float32))
    norm = sq.sqrt()
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(scale.to(p.grad.device))
    return norm


def gather_full_model(model: torch.nn.Module) -> None:
    """Replace every sharded parameter by its whole tensor (a collective: all ranks call it), so
    the model can be saved as usual; ends FSDP2 training of that model."""
    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            if is_sharded(p):
                module.register_parameter(name, torch.nn.Parameter(p.full_tensor().detach(), p.requires_grad))
