"""The shape every format reader has: entries checked up front, records built on demand."""
from __future__ import annotations

from typing import Any, Iterator

from ...contracts import Record


class IndexedRecords:
    """Subclasses fill ``self.entries`` (checked, light) and ``self.lengths`` and implement
    :meth:`build`; ``dataset[i]`` is the i-th record, ``length(i)`` its text-length estimate."""

    entries: list[Any]
    lengths: list[int]

    def build(self, entry: Any) -> Record:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> Record:
        return self.build(self.entries[i])

    def __iter__(self) -> Iterator[Record]:
        return (self[i] for i in range(len(self)))

    def length(self, i: int) -> int:
        return self.lengths[i]
