"""The training datasets that yield records (:class:`~earthmind_sdk.contracts.Record`: one
question about one scene with its target answer and, for segmentation, one target mask per
``[SEG]`` in the answer). Two readers ship with the core: generated scenes
(:mod:`.synthetic`) and a JSON-lines file for custom data::

    {"images": {"optical": "a.tif", "sar": "a_sar.tif"}, "question": "...", "answer": "Sure, [SEG].",
     "masks": ["a_water.tif"], "task": "referring_segmentation"}

Paths are relative to the JSONL file. Every problem names the file and line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..contracts import Raster, Record, Sample
from ..errors import EarthMindError
from ..jobs.jsonl import json_lines

SEG = "[SEG]"


class SyntheticScenes:
    """Generated co-registered optical + SAR scenes (see :mod:`earthmind_sdk.train.synthetic`).

    Scenes are handed over as georeferenced rasters (SAR as linear power), so the model's own
    sensors prepare them exactly as they prepare files at inference time. Each record's meta
    holds its ``task_type`` (the subtask) and ``hidden`` (asked about what thick cloud hides); a
    closed question about an object that is there has it as ``focus`` (water for existence and
    the water-first spatial question, buildings for counting and the buildings-first one, the
    land around them for land cover); a hidden question ``needs`` the non-optical sensors (only
    they see under the cloud). ``repeat`` ({subtask: n}) yields each question of a subtask n
    times (ids suffixed ``-r1``, ``-r2``...): a training-mixture weight."""

    def __init__(self, n_scenes: int = 256, size: int = 112, seed: int = 0, sensors=("sar", "optical"),
                 repeat: dict[str, int] | None = None):
        from .synthetic import CLOSED_SUBTASKS, make_scenes

        self.repeat = dict(repeat or {})
        for subtask, n in self.repeat.items():
            if subtask not in (*CLOSED_SUBTASKS, "referring_segmentation"):
                raise EarthMindError(f"data.repeat: unknown subtask {subtask!r} (known: {', '.join(CLOSED_SUBTASKS)}, "
                                 "referring_segmentation)")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise EarthMindError(f"data.repeat.{subtask}: a whole number of times >= 1, got {n!r}")
        self.scenes = make_scenes(n_scenes, seed=seed, size=size)
        self.sensors = tuple(sensors)

    def __iter__(self) -> Iterator[Record]:
        for i, scene in enumerate(self.scenes):
            rasters = scene_rasters(scene, i)
            images = {s: rasters["sar" if s != "optical" else "optical"] for s in self.sensors}
            radar = tuple(s for s in self.sensors if s != "optical")
            for j, qa in enumerate(scene.qa):
                masks = [qa["mask"]] if "mask" in qa else []
                meta = {"task_type": qa["subtask"], "hidden": qa["hidden"], "scene": i}
                for k in range(self.repeat.get(qa["subtask"], 1)):
                    sample = Sample(images=images, prompt=qa["question"], task=qa["task"],
                                    task_args=dict(qa["task_args"]), id=f"scene{i}-q{j}" + (f"-r{k}" if k else ""))
                    yield Record(sample, qa["answer"], masks, dict(meta), focus=qa.get("focus"),
                                 needs=radar if qa["hidden"] else ())

    def __len__(self) -> int:
        return sum(self.repeat.get(qa["subtask"], 1) for s in self.scenes for qa in s.qa)


def scene_rasters(scene, index: int) -> dict[str, Raster]:
    """A scene as two rasters on one (made-up) 10 m UTM grid: optical reflectance, SAR power."""
    size = scene.optical.shape[-1]
    transform = (10.0, 0.0, 500000.0 + index * size * 10.0, 0.0, -10.0, 5000000.0)
    common = dict(crs="EPSG:32633", transform=transform, meta={"synthetic": True})
    return {"optical": Raster(scene.optical, ("red", "green", "blue"), **common),
            "sar": Raster(scene.sar, ("VV",), **common)}


class JsonlRecords:
    """Custom training data as JSON lines (format in the module docstring)."""

    def __init__(self, path: str):
        self.path = Path(path)
        if not self.path.is_file():
            raise EarthMindError(f"{self.path}: training data file not found")
        self.records = list(self._read())

    def _read(self) -> Iterator[Record]:
        from ..io import read_raster

        root = self.path.parent
        for n, row in json_lines(self.path):
            where = f"{self.path}:{n}"
            for key in ("images", "question", "answer"):
                if key not in row:
                    raise EarthMindError(f"{where}: missing key {key!r}")
            if not isinstance(row["images"], dict) or not row["images"]:
                raise EarthMindError(f"{where}: 'images' must map sensor names to paths")
            masks = []
            for m in row.get("masks", []):
                raster = read_raster(str(root / m))
                masks.append(raster.data[0] > 0)
            n_seg = row["answer"].count(SEG)
            if n_seg != len(masks):
                raise EarthMindError(f"{where}: answer has {n_seg} {SEG} but {len(masks)} mask(s) are given")
            images = {k: str(root / v) for k, v in row["images"].items()}
            yield Record(Sample(images=images, prompt=row["question"], task=row.get("task"),
                                task_args=row.get("task_args", {}), id=row.get("id", where)),
                         row["answer"], masks)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)
