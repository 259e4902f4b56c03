"""Weight files of an HF-format directory: safetensors (single or sharded with an index) or .bin."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

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
            if not isinstance(weight_map, dict):
                raise CheckpointError(f"{index}: weight_map must map tensor names to file names")
            files: dict[str, list[str]] = {}
            for key, fname in weight_map.items():
                check_shard_name(path, index, key, fname)
                files.setdefault(fname, []).append(key)
            missing = [f for f in files if not (path / f).is_file()]
            if missing:
                raise CheckpointError(
                    f"{path}: shard(s) listed in {index_name} are missing: "
                    + ", ".join(f"{f} ({len(files[f])} tensors, e.g. {files[f][0]})" for f in missing))
            return files
    if (path / SAFE_SINGLE).is_file():
        return {SAFE_SINGLE: list(check_safetensors(path / SAFE_SINGLE))}
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
            check_safetensors(file)
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


# --- validation of untrusted weight files (kept apart from the key mapping above) -------------

#: safetensors dtype -> bytes per element
_ST_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
              "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
_MAX_HEADER = 100_000_000


def check_shard_name(path: Path, index: Path, key: str, fname: Any) -> None:
    """A shard index entry must name a plain file inside the checkpoint folder."""
    if not isinstance(fname, str) or not fname or "/" in fname or "\\" in fname or fname in (".", "..") \
            or "\0" in fname:
        raise CheckpointError(f"{index}: tensor {str(key)[:80]!r} points to {str(fname)[:80]!r}, which is not a "
                              "file name inside the checkpoint folder")
    if not (fname.endswith(".safetensors") or fname.endswith(".bin")):
        raise CheckpointError(f"{index}: tensor {str(key)[:80]!r} points to {fname[:80]!r}; shards are "
                              ".safetensors or .bin files")


def check_safetensors(file: Path) -> dict[str, Any]:
    """Validate a safetensors file's structure before anything reads tensors: size, header
    length, header JSON, dtypes, and that every tensor's bytes lie inside the file and match its
    shape. -> header (tensor name -> entry). One line naming the file (and tensor) otherwise."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            head = fh.read(8)
            if size == 0:
                raise CheckpointError(f"{file}: empty file (0 bytes); the download or copy did not finish")
            if len(head) < 8:
                raise CheckpointError(f"{file}: truncated ({size} bytes): no safetensors header")
            n = int.from_bytes(head, "little")
            if n > min(size - 8, _MAX_HEADER):
                raise CheckpointError(f"{file}: header length {n} exceeds the file ({size} bytes): truncated "
                                      "or not a safetensors file")
            raw = fh.read(n)
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{file}: corrupt safetensors header (not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{file}: corrupt safetensors header (not a JSON object)")
    data_len = size - 8 - n
    end_max = 0
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        ok = isinstance(entry, dict) and entry.get("dtype") in _ST_DTYPES and isinstance(entry.get("shape"), list) \
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"]) \
            and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2 \
            and all(isinstance(o, int) and not isinstance(o, bool) for o in entry["data_offsets"])
        if not ok:
            raise CheckpointError(f"{file}: tensor {str(name)[:80]!r}: corrupt header entry")
        begin, end = entry["data_offsets"]
        numel = 1
        for d in entry["shape"]:
            numel *= d
        if not 0 <= begin <= end or end - begin != numel * _ST_DTYPES[entry["dtype"]]:
            raise CheckpointError(f"{file}: tensor {str(name)[:80]!r}: byte range {begin}..{end} does not match "
                                  f"its shape {entry['shape']} and dtype {entry['dtype']}")
        if end > data_len:
            raise CheckpointError(f"{file}: tensor {str(name)[:80]!r} ends at byte {end} but the file holds "
                                  f"{data_len} data bytes: truncated")
        end_max = max(end_max, end)
        tensors[name] = entry
    if end_max != data_len:
        raise CheckpointError(f"{file}: {data_len - end_max} trailing bytes after the last tensor: corrupt file")
    return tensors


def checked_tensors(path: Path, files: dict[str, list[str]], expected: dict[str, torch.Tensor], *,
                    skip: "set[str] | list[str]" = (), allow_nonfinite: bool = False,
                    device: str = "cpu") -> Iterator[tuple[str, str, torch.Tensor]]:
    """:func:`iter_tensors`, checking each tensor as it is read (no second pass): integer or
    boolean data for a floating-point parameter, and NaN/Inf unless ``allow_nonfinite``."""
    for fname, key, tensor in iter_tensors(path, files, device=device):
        if key in skip:
            continue
        target = expected.get(key)
        if target is not None and target.is_floating_point() and not tensor.is_floating_point():
            raise CheckpointError(f"{path / fname}: tensor {key!r} is {str(tensor.dtype).replace('torch.', '')}, "
                                  f"but the parameter is floating point")
        if not allow_nonfinite and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"{path / fname}: tensor {key!r} holds {bad} NaN/Inf value(s); "
                                  "pass allow_nonfinite=True to load it anyway")
        yield fname, key, tensor


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
    """Write safetensors shards (one file when it fits) and, when sharded, the index, into a
    fresh folder (:func:`earthmind_sdk.checkpoint.save` builds it beside the target and renames it)."""
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
