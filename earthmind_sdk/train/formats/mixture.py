"""Several registered datasets as one, each repeated as the training configuration says.

EarthMind v1's SFT mixture repeats its referring-segmentation sets (RRSIS-D, RefSegRS,
RISBench) 3 times and RSVG 5 times, everything else once (see ``recipes/train``). Repeats are
exact copies of the index (no sampling with replacement), so an epoch of the mixture sees each
record ``repeat`` times; the order comes from the sampler.
"""
from __future__ import annotations

import bisect
from typing import Any

from ...errors import DataError
from ...contracts import Record
from .common import text_length


class Indexed:
    """Any dataset as ``len`` / ``[i]`` / ``length(i)``: format readers as they are, iterables
    (the synthetic scenes, JSON lines) materialised once."""

    def __init__(self, dataset: Any):
        self.dataset = dataset if hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__") else list(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Record:
        return self.dataset[i]

    def group(self, i: int, record: Record | None = None) -> str:
        """What ``train.balance`` mixes by: the dataset's own ``group(i)`` when it has one, else
        the record's subtask (``meta["task_type"]``), else its task, else one group for all
        (``record``: record ``i`` when the caller has already read it)."""
        if hasattr(self.dataset, "group"):
            return str(self.dataset.group(i))
        r = self.dataset[i] if record is None else record
        return str(r.meta.get("task_type") or r.sample.task or "all")

    def length(self, i: int) -> int:
        if hasattr(self.dataset, "length"):
            return self.dataset.length(i)
        r = self.dataset[i]
        return text_length(r.sample.prompt, r.answer, *(t for qa in r.sample.history for t in qa))


class Mixture:
    """``parts``: ``{label: {"dataset": name, "args": {...}, "repeat": n}, ...}`` (a mapping, so
    a recipe override can set ``data.args.parts.<label>.args.root=...``) or a list of the same
    entries; built from the dataset registry (names only; arguments are plain values)."""

    def __init__(self, parts: "dict[str, dict] | list[dict]"):
        from ...plugins import registry

        if isinstance(parts, dict):  # a part overridden to null is left out (a dataset you do not have)
            kept = {k: v for k, v in parts.items() if v is not None}
            labels, parts = list(kept), list(kept.values())
        else:
            labels = list(range(len(parts))) if isinstance(parts, list) else []
        if not isinstance(parts, list) or not parts:
            raise DataError("mixture: 'parts' must hold at least one {dataset, args, repeat}")
        self.parts, self.names, self.repeats, self.offsets = [], [], [], [0]
        for k, part in zip(labels, parts):
            if not isinstance(part, dict) or not isinstance(part.get("dataset"), str):
                raise DataError(f"mixture part {k}: expected {{dataset: name, args: {{...}}, repeat: n}}")
            unknown = set(part) - {"dataset", "args", "repeat"}
            if unknown:
                raise DataError(f"mixture part {k}: unknown key(s) {sorted(unknown)}; allowed: dataset, args, repeat")
            repeat = part.get("repeat", 1)
            if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
                raise DataError(f"mixture part {k} ({part['dataset']}): repeat must be a positive integer")
            if part["dataset"] == "mixture":
                raise DataError(f"mixture part {k}: a mixture cannot contain a mixture")
            data = Indexed(registry("datasets").build(part["dataset"], **dict(part.get("args") or {})))
            if not len(data):
                raise DataError(f"mixture part {k} ({part['dataset']}): no records")
            self.parts.append(data)
            self.names.append(part["dataset"])
            self.repeats.append(repeat)
            self.offsets.append(self.offsets[-1] + len(data) * repeat)
        self.labels = labels

    def __len__(self) -> int:
        return self.offsets[-1]

    def locate(self, i: int) -> tuple[int, int]:
        """(part, index inside the part) of mixture index ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        p = bisect.bisect_right(self.offsets, i) - 1
        return p, (i - self.offsets[p]) % len(self.parts[p])

    def __getitem__(self, i: int) -> Record:
        p, j = self.locate(i)
        return self.parts[p][j]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def length(self, i: int) -> int:
        p, j = self.locate(i)
        return self.parts[p].length(j)

    def summary(self) -> dict[str, int]:
        return {f"{n}[{k}]": len(d) * r for k, (n, d, r) in zip(self.labels, zip(self.names, self.parts, self.repeats))}
