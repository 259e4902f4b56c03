"""Collision-free output names: the input's stem plus a short hash of the request.

Two runs on different images or questions never share a name; the same request reruns to the
same name (so a rerun replaces its own file and never leaves a stale one beside it).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def request_hash(request: Any, length: int = 8) -> str:
    """Hex digest of a JSON-able request (keys sorted), ``length`` characters."""
    blob = json.dumps(request, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def output_stem(input_path: "str | os.PathLike[str] | None", request: Any, *, max_stem: int = 60) -> str:
    """``<input stem>-<request hash>``: file-system-safe and unique per (input, request).

    The input's resolved path is part of the hash, so two ``scene.tif`` in different folders
    do not collide either."""
    if input_path is None:
        return f"output-{request_hash(request)}"
    p = Path(input_path)
    stem = _UNSAFE.sub("_", p.stem)[:max_stem] or "input"
    return f"{stem}-{request_hash({'input': str(p.resolve()), 'request': request})}"
