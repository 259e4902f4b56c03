"""Multispectral sensors: Sentinel-2 L1C/L2A and Landsat 8/9 OLI.

``prepare``: digital numbers -> reflectance (per product rules below) -> the band grouping's
triplets -> a stretch per frame -> (F, 3, H, W) frames. Groupings (``grouping=``) are in
:mod:`.bands`; ``groups=[["B04", "B03", "B02"], ...]`` gives your own. A grouping whose bands
are missing raises an error naming them (``missing="skip"`` drops those frames instead).

Sentinel-2 reflectance: ``(DN + offset) / 10000``; ``offset`` is -1000 from processing
baseline 04.00 on (products since 25 January 2022, L1C and L2A), else 0. The baseline comes
from ``processing_baseline=`` or the file's ``PROCESSING_BASELINE`` tag; without either it
is taken as older than 04.00 and that is recorded in ``raster.meta["s2_offset_source"]``.
Float data whose valid values all lie in [-0.2, 2] is taken as reflectance already.
Integer DN 0 is nodata (the Sentinel-2 and Landsat fill value).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, Sequence

import numpy as np

from earthmind_sdk.contracts import Raster, SensorImage
from earthmind_sdk.errors import RasterError, name_list
from earthmind_sdk.io.raster import read_raster, replace_data
from earthmind_sdk.sensors.bandnames import landsat_name, sentinel2_name
from earthmind_sdk.sensors.base import Sensor, Source, is_generic
from earthmind_sdk.sensors.scaling import linear_scale, percentile_stretch, require_valid, valid_mask

from .bands import (LANDSAT_GROUPINGS, LANDSAT_NAMES, LANDSAT_OLI_BANDS, LANDSAT_STACKS, S2_BANDS,
                    S2_GROUPINGS, S2_NAMES, S2_STACKS)

STRETCHES = ("percentile", "clip")


class MultispectralSensor(Sensor):
    """Shared logic: band naming and checking, groupings, stretches, per-band files."""

    family = "multispectral"
    names: ClassVar[tuple[str, ...]] = ()
    stacks: ClassVar[dict[int, tuple[str, ...]]] = {}
    groupings: ClassVar[dict[str, dict]] = {}
    default_grouping: ClassVar[str] = "truecolor"

    def __init__(self, grouping: Optional[str] = None, groups: Optional[Sequence[Sequence[str]]] = None,
                 stretch: Optional[str] = None, percentiles: Optional[Sequence[float]] = None,
                 clip: Optional[Sequence[float]] = None, missing: str = "error",
                 max_frames: Optional[int] = None, resampling: str = "bilinear",
                 band_names: Optional[Sequence[str]] = None):
        super().__init__(band_names=band_names)
        grouping = grouping or self.default_grouping
        if groups is None and grouping not in self.groupings:
            raise RasterError(f"{self.name}: unknown grouping {grouping!r}; choose one of "
                              f"{', '.join(self.groupings)} or give groups=[[...], ...]")
        spec = dict(self.groupings.get(grouping, {"stretch": "percentile", "percentiles": (2.0, 98.0)}))
        if groups is not None:
            groups = tuple(tuple(self.normalise(b) for b in g) for g in groups)
            for g in groups:
                if len(g) not in (1, 3):
                    raise RasterError(f"{self.name}: each group must name 1 or 3 bands, got {list(g)}")
                unknown = [b for b in g if b not in self.names]
                if unknown:
                    raise RasterError(f"{self.name}: unknown band(s) {name_list(unknown)}; bands are {name_list(self.names)}")
            spec["groups"] = groups
            grouping = "custom"
        self.grouping = grouping
        self.groups: tuple[tuple[str, ...], ...] = tuple(spec["groups"])
        self.stretch = stretch or spec.get("stretch", "percentile")
        if self.stretch not in STRETCHES:
            raise RasterError(f"{self.name}: unknown stretch {self.stretch!r}; choose one of {', '.join(STRETCHES)}")
        self.percentiles = tuple(float(p) for p in (percentiles or spec.get("percentiles", (2.0, 98.0))))
        self.clip = tuple(float(c) for c in (clip or spec.get("clip", (0.0, 0.3))))
        if not (len(self.percentiles) == 2 and 0 <= self.percentiles[0] < self.percentiles[1] <= 100):
            raise RasterError(f"{self.name}: percentiles must be (low, high) in 0..100, got {percentiles}")
        if not (len(self.clip) == 2 and self.clip[0] < self.clip[1]):
            raise RasterError(f"{self.name}: clip must be (low, high) reflectance, got {clip}")
        if missing not in ("error", "skip"):
            raise RasterError(f"{self.name}: missing must be 'error' or 'skip', got {missing!r}")
        self.missing = missing
        self.max_frames = max_frames
        self.resampling = resampling

    # -- names -----------------------------------------------------------------------------
    def normalise(self, name: str) -> str:  # pragma: no cover - per sensor
        return name

    # -- reading ---------------------------------------------------------------------------
    def read(self, source: Source | Mapping[str, Any]) -> Raster:
        """A path, array, Raster, a ``{band: path}`` mapping, or a folder of per-band files
        (e.g. a SAFE ``IMG_DATA`` folder): per-band files are resampled onto the grid of the
        finest band, so 20 and 60 m bands land on the 10 m grid."""
        if isinstance(source, Mapping):
            return self.validate(self._stack_files({self.normalise(k): Path(v) for k, v in source.items()},
                                                   where=", ".join(str(v) for v in source.values())))
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            return self.validate(self._stack_files(self._band_files(Path(source)), where=str(source)))
        return super().read(source)

    def _band_files(self, folder: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        pattern = self.file_pattern()
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() not in (".jp2", ".tif", ".tiff"):
                continue
            m = pattern.search(p.stem)
            if m:
                name = self.normalise(m.group(1))
                if name in self.names and (name not in found or _res_hint(p) < _res_hint(found[name])):
                    found[name] = p
        if not found:
            raise RasterError(f"{folder}: no per-band files of {self.name} found (looked for names like *_B04.jp2)")
        return found

    def file_pattern(self) -> "re.Pattern[str]":  # pragma: no cover - per sensor
        raise NotImplementedError

    def _stack_files(self, files: Mapping[str, Path], where: str) -> Raster:
        from earthmind_sdk.io.resample import resample_like, resize

        rasters = {}
        for name, path in files.items():
            r = read_raster(path)
            if r.data.shape[0] != 1:
                raise RasterError(f"{path}: band {name} file must hold one band, it holds {r.data.shape[0]}")
            rasters[name] = r
        ordered = [n for n in self.names if n in rasters]
        ref_name = min(ordered, key=lambda n: (rasters[n].meta.get("res", (np.inf,))[0] if rasters[n].georeferenced
                                                else -rasters[n].height * rasters[n].width))
        ref = rasters[ref_name]
        planes, resampled = [], False
        for n in ordered:
            r = rasters[n]
            if (r.height, r.width) == (ref.height, ref.width) and r.transform == ref.transform:
                planes.append(r.data[0])
                continue
            if r.georeferenced and ref.georeferenced:
                out = resample_like(r, ref, resampling=self.resampling)
            elif not r.georeferenced and not ref.georeferenced:
                out = resize(r, (ref.height, ref.width), resampling=self.resampling)
            else:
                raise RasterError(f"{r.source}: band {n} and reference band {ref_name} ({ref.source}) "
                                  f"must both be georeferenced or both not")
            planes.append(out.data[0])
            resampled = True
        if resampled:  # float32 with NaN where a coarse band had no data
            data = np.stack([_as_float_nan(p, rasters[n].nodata) for p, n in zip(planes, ordered)])
            nodata = float("nan")
        else:
            data = np.stack(planes)
            nodata = ref.nodata
        meta = dict(ref.meta)
        meta.update(band_files={n: str(files[n]) for n in ordered}, grid_band=ref_name)
        return Raster(data=data, band_names=tuple(ordered), crs=ref.crs, transform=ref.transform,
                      nodata=nodata, source=where, meta=meta)

    def validate(self, raster: Raster) -> Raster:
        raster = super().validate(raster)
        where = raster.source or "array"
        n = raster.data.shape[0]
        if is_generic(raster.band_names) and self.band_names is None:
            if n not in self.stacks:
                raise RasterError(
                    f"{where}: {n} unnamed bands; {self.name} recognises unnamed stacks of "
                    f"{', '.join(f'{k} ({len(v)} bands: {v[0]}..{v[-1]})' for k, v in self.stacks.items())}; "
                    f"otherwise name the bands with band_names=(...)"
                )
            return replace_data(raster, raster.data, band_names=self.stacks[n])
        names = tuple(self.normalise(b) for b in raster.band_names)
        unknown = [b for b, nb in zip(raster.band_names, names) if nb not in self.names]
        if unknown:
            raise RasterError(f"{where}: band(s) {name_list(unknown)} are not {self.name} bands "
                              f"({name_list(self.names)})")
        dup = sorted({b for b in names if names.count(b) > 1})
        if dup:
            raise RasterError(f"{where}: band(s) {', '.join(dup)} appear twice")
        return replace_data(raster, raster.data, band_names=names) if names != raster.band_names else raster

    # -- preparing -------------------------------------------------------------------------
    def reflectance(self, raster: Raster, valid: np.ndarray) -> tuple[np.ndarray, dict]:  # pragma: no cover
        raise NotImplementedError

    def prepare(self, raster: Raster) -> SensorImage:
        raster = self.validate(raster)
        where = raster.source or "array"
        nodata = raster.nodata
        if nodata is None and raster.data.dtype.kind in "iu":
            nodata = 0  # Sentinel-2 / Landsat fill value
        valid = valid_mask(raster.data, nodata)
        require_valid(raster, valid, self.name)
        refl, info = self.reflectance(raster, valid)
        frames, used = [], []
        for group in self.groups:
            missing = [b for b in group if b not in raster.band_names]
            if missing:
                if self.missing == "skip":
                    continue
                raise RasterError(f"{where}: grouping {self.grouping!r} needs band(s) {name_list(missing)} for "
                                  f"frame {'/'.join(group)}; the raster has {name_list(raster.band_names)} "
                                  f"(missing='skip' drops such frames)")
            planes = [self._stretch(refl[raster.band_names.index(b)], valid) for b in group]
            frames.append(np.stack(planes * 3 if len(planes) == 1 else planes))
            used.append("/".join(group))
        if not frames:
            raise RasterError(f"{where}: none of the frames of grouping {self.grouping!r} can be made from "
                              f"bands {name_list(raster.band_names)}")
        if self.max_frames is not None:
            frames, used = frames[: self.max_frames], used[: self.max_frames]
        kept = replace_data(raster, raster.data)
        kept.meta.update(info)
        kept.meta["frames"] = used
        return self._image(kept, np.stack(frames), valid, f"{self.grouping}:" + ",".join(used))

    def _stretch(self, band: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if self.stretch == "clip":
            return linear_scale(band, *self.clip)
        return percentile_stretch(band, valid, *self.percentiles)


def _as_float_nan(plane: np.ndarray, nodata) -> np.ndarray:
    out = plane.astype(np.float32)
    if nodata is not None and np.isfinite(nodata):
        out[plane == nodata] = np.nan
    if plane.dtype.kind in "iu" and nodata is None:
        out[plane == 0] = np.nan  # integer fill value of Sentinel-2 / Landsat
    return out


def _res_hint(p: Path) -> int:
    m = re.search(r"_(\d+)m$", p.stem)
    return int(m.group(1)) if m else 0


def _looks_like_reflectance(data: np.ndarray, valid: np.ndarray) -> bool:
    if data.dtype.kind != "f":
        return False
    v = data[:, valid]
    return bool(v.size) and float(v.min()) >= -0.2 and float(v.max()) <= 2.0


class Sentinel2Sensor(MultispectralSensor):
    """Sentinel-2 MSI L1C/L2A: 13 bands at 10/20/60 m, reflectance scaling, the authors' groupings."""

    name = "sentinel2"
    bands = S2_BANDS
    names = S2_NAMES
    stacks = S2_STACKS
    groupings = S2_GROUPINGS
    default_grouping = "v2"

    def __init__(self, grouping: Optional[str] = None, processing_baseline: Optional[str] = None,
                 boa_offset: Optional[float] = None, **kwargs: Any):
        super().__init__(grouping=grouping, **kwargs)
        self.processing_baseline = processing_baseline
        self.boa_offset = boa_offset

    def normalise(self, name: str) -> str:
        return sentinel2_name(name) or str(name).strip().upper()

    def file_pattern(self) -> "re.Pattern[str]":
        return re.compile(r"(?:^|_)(B(?:0[1-9]|1[0-2]|8A))(?:_\d+m)?$", re.IGNORECASE)

    def offset(self, raster: Raster) -> tuple[float, str]:
        if self.boa_offset is not None:
            return float(self.boa_offset), "boa_offset argument"
        baseline = self.processing_baseline
        source = "processing_baseline argument"
        if baseline is None:
            tags = raster.meta.get("tags") or {}
            for key in ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET"):
                if key in tags:
                    return float(tags[key]), f"{key} tag"
            baseline = tags.get("PROCESSING_BASELINE")
            source = "PROCESSING_BASELINE tag"
        if baseline is None:
            return 0.0, "assumed processing baseline < 04.00 (no offset); pass processing_baseline= to change"
        try:
            b = float(baseline)
        except ValueError:
            raise RasterError(f"{raster.source or 'array'}: processing baseline {baseline!r} is not a number like '04.00'") from None
        return (-1000.0 if b >= 4.0 else 0.0), source

    def reflectance(self, raster: Raster, valid: np.ndarray) -> tuple[np.ndarray, dict]:
        if _looks_like_reflectance(raster.data, valid):
            return raster.data.astype(np.float64), {"s2_scaling": "input already reflectance"}
        off, why = self.offset(raster)
        refl = (raster.data.astype(np.float64) + off) / 10000.0
        return refl, {"s2_scaling": f"(DN + {off:g}) / 10000", "s2_offset_source": why}


class LandsatOLISensor(MultispectralSensor):
    """Landsat 8/9 OLI/TIRS: 11 bands; Collection 2 scaling by processing level.

    ``level``: ``"L1"`` TOA reflectance = DN * 2e-5 - 0.1; ``"L2"`` surface reflectance =
    DN * 2.75e-5 - 0.2; ``"dn"`` no physical scaling (the stretch still applies); ``"auto"``
    reads the ``PROCESSING_LEVEL`` tag (L1*/L2*), takes float data in [-0.2, 2] as reflectance,
    and otherwise keeps DN. Thermal bands (B10, B11) are not reflectance and are only used
    when a custom group asks for them.
    """

    name = "landsat8"
    bands = LANDSAT_OLI_BANDS
    names = LANDSAT_NAMES
    stacks = LANDSAT_STACKS
    groupings = LANDSAT_GROUPINGS
    default_grouping = "truecolor"
    LEVELS = ("auto", "L1", "L2", "dn", "reflectance")

    def __init__(self, grouping: Optional[str] = None, level: str = "auto", **kwargs: Any):
        super().__init__(grouping=grouping, **kwargs)
        if level not in self.LEVELS:
            raise RasterError(f"{self.name}: unknown level {level!r}; choose one of {', '.join(self.LEVELS)}")
        self.level = level

    def normalise(self, name: str) -> str:
        return landsat_name(name) or str(name).strip().upper()

    def file_pattern(self) -> "re.Pattern[str]":
        return re.compile(r"(?:^|_)((?:SR_|ST_)?B(?:1[01]|[1-9]))$", re.IGNORECASE)

    def reflectance(self, raster: Raster, valid: np.ndarray) -> tuple[np.ndarray, dict]:
        level = self.level
        if level == "auto":
            if _looks_like_reflectance(raster.data, valid):
                level = "reflectance"
            else:
                tag = str((raster.meta.get("tags") or {}).get("PROCESSING_LEVEL", "")).upper()
                level = "L1" if tag.startswith("L1") else "L2" if tag.startswith("L2") else "dn"
        x = raster.data.astype(np.float64)
        if level == "L1":
            return x * 2e-5 - 0.1, {"landsat_scaling": "L1 TOA: DN * 2e-5 - 0.1"}
        if level == "L2":
            return x * 2.75e-5 - 0.2, {"landsat_scaling": "L2 SR: DN * 2.75e-5 - 0.2"}
        return x, {"landsat_scaling": "none" if level == "reflectance" else "DN (no physical scaling)"}


class Landsat9Sensor(LandsatOLISensor):
    """Landsat 9 OLI-2/TIRS-2: the same bands and scaling as Landsat 8."""

    name = "landsat9"
