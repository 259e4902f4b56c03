"""JSON lines: the package's one reader (:func:`json_lines`, :func:`json_rows` for annotation
files, :func:`read_jsonl` for files earthmind wrote) and results streamed as JSON lines:
appended and flushed per batch, resumed by id.

A killed run loses at most the line it was writing; :class:`JsonlStream` drops such a partial
last line when it reopens the file, and :meth:`JsonlStream.done_ids` tells a rerun what to skip
(0 lost, 0 duplicated).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from ..errors import DataError, OutputError


def json_lines(path: "str | os.PathLike[str]", *, text: Optional[str] = None, error: type = DataError,
               invalid: Optional[Callable[[str], Any]] = None,
               complete_only: bool = False) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of ``path`` (or of its already-read ``text``).

    A line that is not JSON raises ``error("<path>:<n>: not valid JSON (...)")``, or with
    ``invalid`` yields ``invalid("not valid JSON (...)")`` in its place and reading goes on.
    ``complete_only``: a last line without its newline (a killed writer's) is left out."""
    with (open(path, "rb") if text is None else io.StringIO(text, newline="\n")) as fh:
        for n, line in enumerate(fh, 1):
            if complete_only and not line.endswith(b"\n" if text is None else "\n"):
                return
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                msg = f"not valid JSON ({getattr(exc, 'msg', exc)})"
                if invalid is None:
                    raise error(f"{path}:{n}: {msg}") from None
                value = invalid(msg)
            yield n, value


def json_rows(path: Path, what: str, *, list_key: Optional[str] = None,
              invalid: Optional[Callable[[str], Any]] = None) -> Iterator[tuple[str, Any]]:
    """(where, row) for a JSON list (where: ``file [i]``), an object holding it under
    ``list_key``, or JSON lines (``file:line``): the shapes annotation files come in."""
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if path.suffix != ".jsonl" and text.lstrip()[:1] == "[":
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        for n, row in json_lines(path, text=text, invalid=invalid):
            yield f"{path}:{n}", row
        return
    if list_key is not None and isinstance(data, dict) and isinstance(data.get(list_key), list):
        data = data[list_key]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list (or JSON lines) of {what} entries, "
                        f"found {type(data).__name__}")
    for i, row in enumerate(data):
        yield f"{path} [{i}]", row


def read_jsonl(path: "str | os.PathLike[str]") -> Iterator[dict[str, Any]]:
    """Complete JSON lines of a file earthmind wrote (a partial last line, from a killed writer,
    is skipped); a missing file has none."""
    if not Path(path).is_file():
        return
    for _, row in json_lines(path, error=_NotOurs, complete_only=True):
        yield row


class _NotOurs(OutputError):
    def __init__(self, msg: str):
        super().__init__(f"{msg}; this file was not written by earthmind or was edited")


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
