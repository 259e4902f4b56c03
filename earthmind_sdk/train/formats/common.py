"""What every format reader shares: the malformed-entry policy and JSON / JSON-lines rows."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from ...errors import DataError
from ...jobs.jsonl import json_rows

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
    """(where, row) for a JSON list (``file [i]``) or JSON lines (``file:line``); a line that is
    not JSON is a malformed entry like any other (the policy decides)."""
    return json_rows(path, what, invalid=_Invalid)


def collect_entries(rows: Iterable[tuple[str, Any]], source: Path, on_error: str,
                    build: Callable[[str, Any], list], length: Callable[[Any], int],
                    limit: Optional[int], plural: str) -> tuple[list, list[int]]:
    """The entries ``build(where, row)`` makes of each of ``rows`` (a list per row) under the
    malformed-entry policy, with their text ``length``, up to ``limit``; no usable ``plural``
    is an error naming ``source``. Every format reader fills its index this way."""
    policy = EntryPolicy(on_error, str(source))
    entries, lengths = [], []
    for where, row in rows:
        for e in policy.check(where, lambda: build(where, row)) or []:
            entries.append(e)
            lengths.append(length(e))
        if limit is not None and len(entries) >= limit:
            break
    policy.report()
    if not entries:
        raise DataError(f"{source}: no usable {plural}")
    return entries, lengths


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
