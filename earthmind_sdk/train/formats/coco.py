"""COCO-style instance masks (polygons, RLE) and the RefCOCO ``refs`` pickle, read as data.

``refs(unc).p`` is a Python pickle. A pickle can name any importable callable, so it is read
with :class:`PlainUnpickler`, which refuses every global: only the opcodes for dicts, lists,
tuples, strings, bytes, numbers, booleans and None can run, so loading it cannot execute code
and what comes back is plain data (checked against the expected shape afterwards).
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """How protocol-2 pickles of Python 3 write ``bytes``: ``_codecs.encode(text, "latin1")``."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode is admitted only to rebuild latin-1 bytes")
    return text.encode("latin1")


class PlainUnpickler(pickle.Unpickler):
    """An unpickler that admits plain containers, strings, bytes and numbers only."""

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        raise pickle.UnpicklingError(f"refers to {module}.{name}; only plain data is admitted")


def load_plain_pickle(path: Path) -> Any:
    """The content of a pickle holding plain data; anything else is a one-line DataError."""
    if not path.is_file():
        raise DataError(f"{path}: refs pickle not found")
    try:  # Python 2 pickles (RefCOCO's) store text as byte strings: decode them as UTF-8
        return PlainUnpickler(io.BytesIO(path.read_bytes()), encoding="utf-8").load()
    except (pickle.UnpicklingError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a plain-data pickle ({exc})") from None


def decode_segmentation(seg: Any, height: int, width: int, where: str) -> np.ndarray:
    """(H, W) bool mask of a COCO ``segmentation``: polygons ``[[x0, y0, x1, y1, ...], ...]``,
    uncompressed RLE ``{"size": [h, w], "counts": [int, ...]}`` or compressed RLE (string
    counts); a list holding one RLE is accepted as RRSIS-D exports it."""
    if isinstance(seg, list) and len(seg) == 1 and isinstance(seg[0], dict):
        seg = seg[0]
    if isinstance(seg, dict):
        return _rle(seg, where)
    if isinstance(seg, list) and seg and all(isinstance(p, list) for p in seg):
        return _polygons(seg, height, width, where)
    raise DataError(f"{where}: segmentation must be polygons or RLE, found {type(seg).__name__}")


def _polygons(polys: list, height: int, width: int, where: str) -> np.ndarray:
    """Pixels whose centre lies inside any polygon (even-odd rule), so a box polygon from x0 to
    x1 covers columns x0 .. x1 - 1, as COCO's area counts it."""
    mask = np.zeros((int(height), int(width)), bool)
    for k, poly in enumerate(polys):
        if len(poly) < 6 or len(poly) % 2 or not all(isinstance(v, (int, float)) for v in poly):
            raise DataError(f"{where}: polygon {k} must hold at least 3 (x, y) number pairs")
        xs, ys = np.asarray(poly[0::2], float), np.asarray(poly[1::2], float)
        c0, c1 = max(0, int(np.floor(xs.min()))), min(mask.shape[1], int(np.ceil(xs.max())) + 1)
        r0, r1 = max(0, int(np.floor(ys.min()))), min(mask.shape[0], int(np.ceil(ys.max())) + 1)
        if c0 >= c1 or r0 >= r1:
            continue
        cy, cx = np.mgrid[r0:r1, c0:c1] + 0.5
        inside = np.zeros(cx.shape, bool)
        for (xa, ya), (xb, yb) in zip(zip(xs, ys), zip(np.roll(xs, 1), np.roll(ys, 1))):
            crosses = (ya > cy) != (yb > cy)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_at = xa + (cy - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (cx < x_at)
        mask[r0:r1, c0:c1] |= inside
    return mask


def _rle(rle: dict, where: str) -> np.ndarray:
    size, counts = rle.get("size"), rle.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise DataError(f"{where}: RLE 'size' must be [height, width], found {size!r}")
    if isinstance(counts, (str, bytes)):
        counts = rle_counts_from_string(counts.decode("ascii") if isinstance(counts, bytes) else counts, where)
    if not isinstance(counts, list) or not all(isinstance(c, int) and c >= 0 for c in counts):
        raise DataError(f"{where}: RLE 'counts' must be non-negative integers or a COCO string")
    h, w = size
    if sum(counts) != h * w:
        raise DataError(f"{where}: RLE counts cover {sum(counts)} pixels, size says {h} x {w} = {h * w}")
    flat = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
    return flat.reshape(w, h).T.copy()  # COCO runs go down columns


def rle_counts_from_string(s: str, where: str = "RLE") -> list[int]:
    """COCO's compressed counts: 5-bit groups (offset 48, bit 0x20 = more, 0x10 = sign on the
    last group), each run after the second stored as the difference to the run two before."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise DataError(f"{where}: truncated compressed RLE counts")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise DataError(f"{where}: character {s[p]!r} is not compressed RLE")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_counts_to_string(counts: list[int]) -> str:
    """Inverse of :func:`rle_counts_from_string` (used to write fixtures and masks)."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if c & 0x10 else (x != 0)
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out)


def rle_encode(mask: np.ndarray) -> dict:
    """(H, W) bool -> uncompressed COCO RLE (column-major runs, starting with background)."""
    flat = np.asarray(mask, bool).T.reshape(-1)
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(r) for r in runs]}
