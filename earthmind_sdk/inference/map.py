"""``earthmind map``: a question over a whole scene, window by window, as map layers.

The output grid is the grid of the raster the model segments (for a paired EarthMind the SAR,
as the pair rule says; for an optical model the optical image). The scene is read in
overlapping windows at native resolution (:mod:`.windows`); windows go to the model in
batches; each window's mask probability is kept on disk (so memory does not grow with the
scene and an interrupted run resumes from the windows already done); at the end the
probabilities are blended across seams block by block and written as Cloud-Optimized GeoTIFFs
and as polygons (GeoPackage + GeoJSON, one feature per object with its score and area). A
question that is not a segmentation request gives a grid layer: one cell per window with the
answer and its parsed value.

The model is reached through a *predictor*: any callable ``predict(windows) -> answers`` taking
a list of :class:`~.windows.SceneWindow` and returning one :class:`WindowAnswer` per window.
:class:`ModelPredictor` wraps a :class:`~.pipeline.Pipeline`; tests pass a stand-in that
returns known probabilities, which makes blending and polygon merging checkable exactly.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import EarthMindError, RasterError
from .windows import SceneReader, SceneWindow, Window, WindowPlan, blend_weights

#: Pixels per side of the blocks the final pass blends and writes (memory: a few of these).
BLOCK = 512
#: GDAL's block cache while writing, in MB: a constant, so memory does not follow scene size.
GDAL_CACHE_MB = 64


@dataclass
class WindowAnswer:
    """What a predictor returns for one window.

    ``probability``: (h, w) float in [0, 1] on the window's pixels (the mask probability), or
    None when the answer holds no mask (a question, not a segmentation request).
    """

    probability: Optional[np.ndarray] = None
    answer: str = ""
    parsed: Any = None


Predictor = Callable[[Sequence[SceneWindow]], Sequence[WindowAnswer]]

#: Tasks whose answers carry masks: mapped as mask + objects; anything else as an answer grid.
SEGMENT_TASKS = ("referring_segmentation", "grounded_conversation")


class ModelPredictor:
    """The model as a predictor: one sample per window, answered in batches; the window's
    probability is the per-pixel maximum over the answer's masks (zeros when it has none)."""

    def __init__(self, pipe, question: str, task: str, *, max_new_tokens: int = 64, batch_size: int = 8):
        self.pipe, self.question, self.task = pipe, question, task
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.segments = task in SEGMENT_TASKS

    def __call__(self, windows: Sequence[SceneWindow]) -> list[WindowAnswer]:
        from ..contracts import Sample

        samples = [Sample(images=dict(w.images), prompt=self.question, task=self.task, id=str(w.window.index))
                   for w in windows]
        results = self.pipe(samples, batch_size=self.batch_size, max_new_tokens=self.max_new_tokens)
        out = []
        for w, res in zip(windows, results):
            prob = None
            if self.segments:
                prob = np.zeros((w.window.height, w.window.width), np.float32)
                for p in res.mask_probs:
                    np.maximum(prob, np.asarray(p, np.float32), out=prob)
            out.append(WindowAnswer(prob, res.answer, res.as_dict()["parsed"]))
        return out


@dataclass
class MapResult:
    """What a map run wrote and counted (JSON-able through :meth:`as_dict`)."""

    files: dict[str, str] = field(default_factory=dict)
    windows: int = 0
    skipped: int = 0
    resumed: int = 0
    objects: int = 0
    grid: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "windows": self.windows, "skipped": self.skipped,
                "resumed": self.resumed, "objects": self.objects, "grid": self.grid}


# -- the run ------------------------------------------------------------------------------------
def map_windows(images: dict[str, str], predictor: Predictor, out_dir: "str | os.PathLike[str]", *,
                primary: str, stem: str, segment: bool = True, window: int = 448, overlap: int = 112,
                batch_size: int = 8, threshold: float = 0.5, probability: bool = False,
                progress: Any = None, min_overlap: float = 0.5) -> MapResult:
    """Run ``predictor`` over every window of the scene and write the layers into ``out_dir``.

    ``images``: sensor -> path; ``primary``: the sensor whose raster is the output grid.
    ``segment``: write mask + objects (True) or the answer grid (False). Work in progress lives
    in ``out_dir/.<stem>.work`` and is picked up by a rerun with the same arguments.
    ``progress``: as :class:`earthmind_sdk.jobs.Progress` takes it (None: the process default).
    ``min_overlap``: the share of the primary's footprint a georeferenced partner must cover.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = out / f".{stem}.work"
    result = MapResult()
    import rasterio

    # GDAL's block cache defaults to a share of RAM and would keep the scene's blocks: cap it.
    # A scene without georeferencing is mapped in pixel coordinates; GDAL's warning about it is noise.
    with warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), \
            SceneReader(images, primary, min_overlap=min_overlap) as reader:
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        plan = reader.plan(window, overlap)
        result.windows = len(plan)
        result.grid = {"crs": reader.crs, "transform": reader.transform,
                       "height": reader.height, "width": reader.width}
        store = _WindowStore(work, {"images": images, "primary": primary, "window": window,
                                    "overlap": overlap, "segment": segment})
        result.resumed = len(store.done)
        try:
            _predict_all(reader, plan, predictor, store, batch_size, progress)
        finally:
            store.close()
        result.skipped = store.skipped
        if segment:
            _write_segmentation(reader, plan, store, out, stem, threshold, probability, result)
        else:
            _write_cells(reader, plan, store, out, stem, result)
    shutil.rmtree(work)  # our own scratch folder, finished with
    return result


def _predict_all(reader: SceneReader, plan: WindowPlan, predictor: Predictor, store: "_WindowStore",
                 batch_size: int, progress) -> None:
    from ..jobs import Progress

    batch: list[SceneWindow] = []
    with Progress(len(plan), "map", progress=progress, unit="window", initial=len(store.done)) as bar:
        def flush():
            answers = list(predictor(batch))
            if len(answers) != len(batch):
                raise EarthMindError(f"the predictor returned {len(answers)} answers for {len(batch)} windows")
            store.save([w.window for w in batch], answers)
            bar.update(len(batch))
            batch.clear()

        for w in plan:
            if w.index in store.done:
                continue
            if reader.is_empty(w):
                store.skip(w)
                bar.update(1)
                continue
            batch.append(reader.read(w))
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()


class _WindowStore:
    """Per-window results on disk: ``<index>.npy`` probabilities and one JSON line per window
    (written after its array), so a rerun skips exactly the windows that finished."""

    def __init__(self, work: Path, request: dict[str, Any]):
        from ..jobs import JsonlStream, atomic_write_text

        self.work = work
        req = json.dumps(request, sort_keys=True, default=str)
        marker = work / "request.json"
        if work.exists() and (not marker.exists() or marker.read_text() != req):
            raise EarthMindError(f"{work}: unfinished work of a different map request is here; "
                                 "remove the folder or choose another output folder")
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_text(marker, req)
        self._stream = JsonlStream(work / "windows.jsonl")
        self.done: dict[int, dict[str, Any]] = {int(r["id"]): r for r in self._stream.rows()}

    @property
    def skipped(self) -> int:
        return sum(1 for r in self.done.values() if r.get("skipped"))

    def path(self, index: int) -> Path:
        return self.work / f"{index:07d}.npy"

    def probability(self, index: int) -> Optional[np.ndarray]:
        row = self.done.get(index)
        if not row or not row.get("probability"):
            return None
        return np.load(self.path(index), mmap_mode="r")

    def save(self, windows: Sequence[Window], answers: Sequence[WindowAnswer]) -> None:
        from ..jobs import atomic_path

        rows = []
        for window, answer in zip(windows, answers):
            if answer.probability is not None:
                p = np.asarray(answer.probability, dtype=np.float32)
                if p.shape != (window.height, window.width):
                    raise EarthMindError(f"window {window.index}: probability of shape {p.shape}, expected "
                                         f"{(window.height, window.width)}")
                with atomic_path(self.path(window.index)) as tmp:
                    np.save(tmp, p)
            rows.append({"id": window.index, "answer": answer.answer, "parsed": answer.parsed,
                         "probability": answer.probability is not None})
        self._write(rows)

    def skip(self, window: Window) -> None:
        self._write([{"id": window.index, "skipped": True}])

    def _write(self, rows: list[dict[str, Any]]) -> None:
        self._stream.write(rows)
        self.done.update((int(r["id"]), r) for r in rows)

    def close(self) -> None:
        self._stream.close()


# -- rasters ------------------------------------------------------------------------------------
def _blend_block(plan: WindowPlan, store: _WindowStore, weights: np.ndarray,
                 r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean probability over rows [r0, r1) x cols [c0, c1), and the weight sum."""
    acc = np.zeros((r1 - r0, c1 - c0), np.float64)
    wsum = np.zeros_like(acc)
    for w in plan.touching(r0, r1, c0, c1):
        p = store.probability(w.index)
        if p is None:
            continue
        ya, yb = max(r0, w.row_off), min(r1, w.row_off + w.height)
        xa, xb = max(c0, w.col_off), min(c1, w.col_off + w.width)
        wy, wx = slice(ya - w.row_off, yb - w.row_off), slice(xa - w.col_off, xb - w.col_off)
        ww = weights[wy, wx]
        acc[ya - r0:yb - r0, xa - c0:xb - c0] += ww * p[wy, wx]
        wsum[ya - r0:yb - r0, xa - c0:xb - c0] += ww
    with np.errstate(invalid="ignore", divide="ignore"):
        prob = np.where(wsum > 0, acc / wsum, np.nan).astype(np.float32)
    return prob, wsum


def _blocks(height: int, width: int):
    for r0 in range(0, height, BLOCK):
        for c0 in range(0, width, BLOCK):
            yield r0, min(height, r0 + BLOCK), c0, min(width, c0 + BLOCK)


def _profile(reader: SceneReader, dtype: str, nodata) -> dict[str, Any]:
    from rasterio import Affine

    p = dict(driver="GTiff", count=1, height=reader.height, width=reader.width, dtype=dtype, nodata=nodata,
             tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    if reader.transform is not None:
        p.update(crs=reader.crs, transform=Affine(*reader.transform))
    return p


def _write_segmentation(reader, plan, store, out: Path, stem: str, threshold: float, probability: bool,
                        result: MapResult) -> None:
    import rasterio

    weights = blend_weights(min(plan.size, plan.height), min(plan.size, plan.width), plan.overlap)
    mask_tmp, prob_tmp = store.work / "mask.tif", store.work / "probability.tif"
    with rasterio.open(mask_tmp, "w", **_profile(reader, "uint8", 255)) as m, \
            rasterio.open(prob_tmp, "w", **_profile(reader, "float32", float("nan"))) as p:
        m.update_tags(VALUES="1 object, 0 background, 255 not seen (nodata windows)",
                      THRESHOLD=str(threshold))
        from rasterio.windows import Window as RW

        for r0, r1, c0, c1 in _blocks(reader.height, reader.width):
            prob, wsum = _blend_block(plan, store, weights, r0, r1, c0, c1)
            mask = np.where(wsum > 0, prob > threshold, 255).astype(np.uint8)
            win = RW(c0, r0, c1 - c0, r1 - r0)
            m.write(mask, 1, window=win)
            p.write(prob, 1, window=win)
    from .polygons import objects_from_mask, write_objects

    objects = objects_from_mask(mask_tmp, prob_tmp, block=BLOCK)
    result.objects = len(objects)
    result.files["mask"] = str(_cog(mask_tmp, out / f"{stem}_mask.tif"))
    if probability:
        result.files["probability"] = str(_cog(prob_tmp, out / f"{stem}_probability.tif"))
    result.files.update(write_objects(objects, out / f"{stem}_objects", crs=reader.crs,
                                      transform=reader.transform))


def _cog(src_path: Path, dest: Path) -> Path:
    """Copy a tiled GeoTIFF to a Cloud-Optimized GeoTIFF at ``dest`` (written aside, then renamed)."""
    from rasterio.shutil import copy as rio_copy

    from ..jobs import atomic_path

    with atomic_path(dest) as tmp:
        rio_copy(src_path, tmp, driver="COG", compress="deflate")
    return dest


# -- answers as a grid ------------------------------------------------------------------------
def cell_bounds(offsets: list[int], size: int, length: int) -> list[tuple[int, int]]:
    """Non-overlapping [start, end) per window along one axis: neighbours split their overlap
    in the middle, so the cells tile the scene."""
    size = min(size, length)
    out = []
    for i, o in enumerate(offsets):
        start = 0 if i == 0 else (offsets[i - 1] + size + o) // 2
        end = length if i == len(offsets) - 1 else (o + size + offsets[i + 1]) // 2
        out.append((start, end))
    return out


def _write_cells(reader, plan: WindowPlan, store, out: Path, stem: str, result: MapResult) -> None:
    from shapely.geometry import box

    from .polygons import write_features

    rows = cell_bounds(plan.row_offsets, plan.size, plan.height)
    cols = cell_bounds(plan.col_offsets, plan.size, plan.width)
    geoms, fields = [], {"window": [], "answer": [], "value": []}
    for w in plan:
        row = store.done.get(w.index, {})
        if row.get("skipped") or not row:
            continue
        (r0, r1), (c0, c1) = rows[w.index // len(cols)], cols[w.index % len(cols)]
        geoms.append(box(c0, r0, c1, r1))
        fields["window"].append(w.index)
        fields["answer"].append(row.get("answer", ""))
        fields["value"].append(json.dumps(row.get("parsed"), default=str))
    result.objects = len(geoms)
    result.files.update(write_features(geoms, fields, out / f"{stem}_cells", crs=reader.crs,
                                       transform=reader.transform))
