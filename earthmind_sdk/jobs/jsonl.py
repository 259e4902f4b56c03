"""Results streamed as JSON lines: appended and flushed per batch, resumed by id.

A killed run loses at most the line it was writing; :class:`JsonlStream` drops such a partial
last line when it reopens the file, and :meth:`JsonlStream.done_ids` tells a rerun what to skip
(0 lost, 0 duplicated).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import OutputError


def read_jsonl(path: "str | os.PathLike[str]") -> Iterator[dict[str, Any]]:
    """Complete JSON lines of ``path`` (a partial last line, from a killed writer, is skipped)."""
    p = Path(path)
    if not p.is_file():
        return
    with open(p, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                return
            if raw.strip():
                try:
                    yield json.loads(raw)
                except ValueError:
                    raise OutputError(f"{p}:{n}: not a JSON line; this file was not written by earthmind "
                                      "or was edited") from None


class JsonlStream:
    """Append rows to ``path`` (one JSON object per line), flushing after each :meth:`write`."""

    def __init__(self, path: "str | os.PathLike[str]", *, key: str = "id", fsync: bool = False):
        self.path, self.key, self.fsync = Path(path), key, fsync
        self._trim_partial_line()
        self._done = [str(r.get(key)) for r in read_jsonl(self.path)]
        self._fh = open(self.path, "a", encoding="utf-8")

    def _trim_partial_line(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                fh.truncate(end)

    def done_ids(self) -> set[str]:
        """Ids (``str(row[key])``) already in the file: what a resumed run skips."""
        return set(self._done)

    def __len__(self) -> int:
        return len(self._done)

    def write(self, rows: "dict[str, Any] | Iterable[dict[str, Any]]") -> None:
        """Append one row or a batch of rows, then flush (and fsync when asked)."""
        rows = [rows] if isinstance(rows, dict) else list(rows)
        text = "".join(json.dumps(r, default=str) + "\n" for r in rows)
        self._fh.write(text)
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self._done.extend(str(r.get(self.key)) for r in rows)

    def rows(self) -> list[dict[str, Any]]:
        """Every complete row in the file, in order."""
        self._fh.flush()
        return list(read_jsonl(self.path))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "JsonlStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
