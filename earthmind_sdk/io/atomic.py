"""Write every output under a temporary name in the same folder, then rename it into place.

A reader never sees half a file, and a killed run leaves at most a hidden ``.*.tmp-*`` file
(never a truncated result). Folders are built the same way: in a temporary sibling, then renamed.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

from ..errors import OutputError

TMP_MARK = ".tmp-"


def temp_sibling(path: Path) -> Path:
    """A unique hidden name next to ``path`` (same file system, so the rename is atomic)."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_path(path: "str | os.PathLike[str]", *, keep_suffix: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is renamed to ``path``, on error removed.

    ``keep_suffix``: the temporary name ends with the same suffix, for writers that pick the
    format from the extension (GeoTIFF, PNG, safetensors)."""
    path = Path(path)
    tmp = temp_sibling(path)
    if keep_suffix and path.suffix:
        tmp = tmp.with_name(tmp.name + path.suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: "str | os.PathLike[str]", data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def atomic_write_text(path: "str | os.PathLike[str]", text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: "str | os.PathLike[str]", obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(path: "str | os.PathLike[str]") -> Iterator[Path]:
    """Yield an empty temporary folder; on success it becomes ``path``, on error it is removed.

    ``path`` must not exist, or be an empty folder: an existing folder with files is refused
    (the caller decides what may be replaced, see :mod:`.run_folder`)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise OutputError(f"{path}: already exists and is not empty; refusing to replace it")
    tmp = temp_sibling(path)
    tmp.mkdir(parents=False)
    try:
        yield tmp
        if path.is_dir():
            path.rmdir()  # empty, checked above
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
