"""What every format reader shares: the malformed-entry policy and JSON / JSON-lines rows."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ...errors import DataError

ON_ERROR = ("fail", "skip")


class EntryPolicy:
    """``on_error="fail"``: the first malformed entry is a :class:`DataError` naming file and
    index. ``"skip"``: it is left out, counted, and announced once per reader in one line."""

    def __init__(self, on_error: str, source: str):
        if on_error not in ON_ERROR:
            raise DataError(f"{source}: on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.source = source
        self.skipped: list[str] = []

    def check(self, where: str, build: Callable[[], Any]) -> Optional[Any]:
        """``build()``'s value, or None when it raised a DataError and entries may be skipped."""
        try:
            return build()
        except DataError as exc:
            if self.on_error == "fail":
                raise
            self.skipped.append(str(exc))
            return None

    def report(self) -> None:
        if self.skipped:
            from ...jobs import announce

            announce(f"{self.source}: skipped {len(self.skipped)} malformed entr"
                     f"{'y' if len(self.skipped) == 1 else 'ies'}; first: {self.skipped[0]}")


def read_rows(path: Path, what: str) -> Iterator[tuple[str, Any]]:
    """(where, row) for a JSON list (``file [i]``) or JSON lines (``file:line``)."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if path.suffix != ".jsonl" and text.lstrip()[:1] == "[":
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    yield f"{path}:{n}", json.loads(line)
                except json.JSONDecodeError as e:
                    yield f"{path}:{n}", _Invalid(f"not valid JSON ({e.msg})")
        return
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of {what} entries, found {type(data).__name__}")
    for i, row in enumerate(data):
        yield f"{path} [{i}]", row


class _Invalid:
    """A JSON-lines row that did not parse: malformed like any other entry (policy decides)."""

    def __init__(self, why: str):
        self.why = why


def need_dict(where: str, row: Any) -> dict:
    if isinstance(row, _Invalid):
        raise DataError(f"{where}: {row.why}")
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object, found {type(row).__name__}")
    return row


def need_str(where: str, row: dict, key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: {key!r} must be a non-empty string, found {value!r}")
    return value


def text_length(*texts: str) -> int:
    """Cheap length proxy (characters / 4 ~ tokens) for length grouping; no tokenizer needed."""
    return sum(len(t) for t in texts) // 4 + 1
