"""Weight files of an HF-format directory: safetensors (single or sharded with an index) or .bin."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import torch

from ..errors import CheckpointError

SAFE_INDEX = "model.safetensors.index.json"
SAFE_SINGLE = "model.safetensors"
BIN_INDEX = "pytorch_model.bin.index.json"
BIN_SINGLE = "pytorch_model.bin"


def weight_files(path: Path) -> dict[str, list[str]]:
    """file name -> tensor names it holds (from the index, or the file itself)."""
    for index_name in (SAFE_INDEX, BIN_INDEX):
        index = path / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CheckpointError(f"{index}: not a valid shard index ({exc})") from None
            files: dict[str, list[str]] = {}
            for key, fname in weight_map.items():
                files.setdefault(fname, []).append(key)
            missing = [f for f in files if not (path / f).is_file()]
            if missing:
                raise CheckpointError(
                    f"{path}: shard(s) listed in {index_name} are missing: "
                    + ", ".join(f"{f} ({len(files[f])} tensors, e.g. {files[f][0]})" for f in missing))
            return files
    if (path / SAFE_SINGLE).is_file():
        from safetensors import safe_open

        with safe_open(str(path / SAFE_SINGLE), framework="pt") as fh:
            return {SAFE_SINGLE: list(fh.keys())}
    if (path / BIN_SINGLE).is_file():
        return {BIN_SINGLE: list(_load_bin(path / BIN_SINGLE))}
    raise CheckpointError(f"{path}: no weights found (expected {SAFE_SINGLE}, {SAFE_INDEX}, {BIN_SINGLE} or {BIN_INDEX})")


def _load_bin(file: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported with its name
        raise CheckpointError(f"{file}: cannot read weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def shapes(path: Path, files: dict[str, list[str]]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, read from safetensors headers (no tensor data) or the .bin files."""
    from safetensors import safe_open

    out: dict[str, tuple[int, ...]] = {}
    for fname in files:
        file = path / fname
        if fname.endswith(".safetensors"):
            try:
                with safe_open(str(file), framework="pt") as fh:
                    for k in fh.keys():
                        out[k] = tuple(fh.get_slice(k).get_shape())
            except Exception as exc:  # noqa: BLE001
                raise CheckpointError(f"{file}: cannot read safetensors header ({type(exc).__name__}: {exc})") from None
        else:
            out.update({k: tuple(v.shape) for k, v in _load_bin(file).items()})
    for fname, keys in files.items():
        absent = [k for k in keys if k not in out]
        if absent:
            raise CheckpointError(f"{path / fname}: the index lists tensors the file does not hold: {', '.join(absent[:10])}")
    return out


def iter_tensors(path: Path, files: dict[str, list[str]], device: str = "cpu") -> Iterator[tuple[str, str, torch.Tensor]]:
    """(file name, tensor name, tensor), one file at a time."""
    from safetensors import safe_open

    for fname in files:
        file = path / fname
        if fname.endswith(".safetensors"):
            with safe_open(str(file), framework="pt", device=str(device)) as fh:
                for k in fh.keys():
                    yield fname, k, fh.get_tensor(k)
        else:
            for k, v in _load_bin(file).items():
                yield fname, k, v


def parse_size(size: "int | str") -> int:
    """500000, "500KB", "5GB", "2GiB" -> bytes."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)?\s*", str(size).upper())
    if not m:
        raise ValueError(f"max_shard_size {size!r}: expected bytes or e.g. '5GB', '500MB'")
    unit = m.group(2) or "B"
    base = 1024 if "I" in unit else 1000
    power = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4}[unit[0]]
    return int(float(m.group(1)) * base ** power)


def write(path: Path, state: dict[str, torch.Tensor], max_shard_size: "int | str", metadata: dict[str, str]) -> list[str]:
    """Write safetensors shards (one file when it fits) and, when sharded, the index."""
    from safetensors.torch import save_file

    limit = parse_size(max_shard_size)
    shards: list[dict[str, torch.Tensor]] = [{}]
    sizes = [0]
    for key, t in state.items():
        n = t.numel() * t.element_size()
        if shards[-1] and sizes[-1] + n > limit:
            shards.append({})
            sizes.append(0)
        shards[-1][key] = t
        sizes[-1] += n
    for stale in list(path.glob("model*.safetensors")) + [path / SAFE_INDEX]:
        if stale.is_file():
            stale.unlink()
    if len(shards) == 1:
        save_file(shards[0], str(path / SAFE_SINGLE), metadata=metadata)
        return [SAFE_SINGLE]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards):
        save_file(shard, str(path / name), metadata=metadata)
        weight_map.update({k: name for k in shard})
    index = {"metadata": {"total_size": sum(sizes)}, "weight_map": dict(sorted(weight_map.items()))}
    (path / SAFE_INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return names
