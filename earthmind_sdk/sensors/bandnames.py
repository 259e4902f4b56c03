"""The one table of band-name conventions: which stored band name means which colour.

Users' rasters name bands after their mission (Sentinel-2 ``B02``, Landsat OLI ``B2`` or
``SR_B2``, Landsat TM/ETM+ ``B1``), after the colour (``blue``, ``nir``) or only through GDAL
colour interpretation. :func:`true_colour` turns such names into the red, green, blue band
positions; sensors (the optical sensor here, the multispectral plugin's ``normalise``) read
this table instead of keeping their own.

``B2``..``B4`` are blue-green-red on Sentinel-2 and Landsat 8/9 OLI but green-red-NIR on
Landsat 4/5 TM and 7 ETM+; the file's product metadata (a product id such as ``LC08_...``,
``LE07_...``, ``LT05_...`` or a spacecraft tag) decides, and without it the caller is asked
to name the bands (:class:`AmbiguousBandsError`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..contracts import Raster
from ..errors import RasterError, name_list
from .base import is_placeholder

#: Colour roles every convention maps to.
ROLES = ("coastal", "blue", "green", "red", "nir", "swir1", "swir2", "pan")

#: Band-naming conventions: canonical band name -> role (only bands with a colour role).
CONVENTIONS: dict[str, dict[str, str]] = {
    "sentinel2": {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B08": "nir",
                  "B11": "swir1", "B12": "swir2"},
    "landsat_oli": {"B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "nir",
                    "B6": "swir1", "B7": "swir2", "B8": "pan"},
    "landsat_tm": {"B1": "blue", "B2": "green", "B3": "red", "B4": "nir", "B5": "swir1", "B7": "swir2"},
}
#: Human names of the conventions, for messages and docs.
CONVENTION_TITLES = {"sentinel2": "Sentinel-2 MSI", "landsat_oli": "Landsat 8/9 OLI",
                     "landsat_tm": "Landsat 4/5 TM or 7 ETM+"}

#: Names that are a role whatever the mission (case-insensitive).
ROLE_ALIASES: dict[str, str] = {
    "red": "red", "r": "red", "green": "green", "g": "green", "blue": "blue", "b": "blue",
    "nir": "nir", "near infrared": "nir", "near-infrared": "nir", "nir08": "nir",
    "coastal": "coastal", "coastal aerosol": "coastal", "swir1": "swir1", "swir16": "swir1",
    "swir2": "swir2", "swir22": "swir2", "pan": "pan", "panchromatic": "pan",
}
#: GDAL colour interpretations that are a role.
COLORINTERP_ROLES = {"red": "red", "green": "green", "blue": "blue"}

_S2 = re.compile(r"(?:B|BAND)[_ ]?(?:(0\d|1[0-2])|(8A|08A))", re.IGNORECASE)
_NUMBERED = re.compile(r"(?:(SR|ST|TOA)_)?(?:B|BAND)[_ ]?0*(\d{1,2})", re.IGNORECASE)

#: Product evidence -> convention: Landsat product ids / scene ids and spacecraft names.
_PRODUCT_PATTERNS: tuple[tuple[str, "re.Pattern[str]"], ...] = (
    ("landsat_oli", re.compile(r"(?<![A-Z0-9])L[CO]0?[89][_0-9]|LANDSAT[_ -]?[89](?!\d)", re.IGNORECASE)),
    ("landsat_tm", re.compile(r"(?<![A-Z0-9])L[ET]0?[457][_0-9]|LANDSAT[_ -]?[457](?!\d)", re.IGNORECASE)),
    ("sentinel2", re.compile(r"(?<![A-Z0-9])S2[ABCD]?_MSI|SENTINEL[_ -]?2", re.IGNORECASE)),
)


class AmbiguousBandsError(RasterError):
    """Band names that mean different colours on different sensors, with nothing to decide."""


def convention_bands(convention: str, *roles: str) -> tuple[str, ...]:
    """Band names of ``roles`` in one convention: ``("sentinel2", "red", "green", "blue")`` ->
    ``("B04", "B03", "B02")``; sensors build their groupings from it."""
    by_role = {r: b for b, r in CONVENTIONS[convention].items()}
    return tuple(by_role[r] for r in roles)


def sentinel2_name(name: str) -> Optional[str]:
    """``B2``, ``b02``, ``BAND_8A`` -> ``B02``, ``B8A``; None when it is no Sentinel-2 band name."""
    m = _NUMBERED.fullmatch(str(name).strip())
    if m and not m.group(1) and 1 <= int(m.group(2)) <= 12:
        return f"B{int(m.group(2)):02d}"
    m = _S2.fullmatch(str(name).strip())
    if m and m.group(2):
        return "B8A"
    return None


def landsat_name(name: str) -> Optional[str]:
    """``SR_B4``, ``B04``, ``band4`` -> ``B4``; None when it is no Landsat band name."""
    m = _NUMBERED.fullmatch(str(name).strip())
    if m and 1 <= int(m.group(2)) <= 11:
        return f"B{int(m.group(2))}"
    return None


def product_convention(raster: Raster) -> Optional[str]:
    """The convention the file's product metadata names (tags, then the file name), or None."""
    tags = raster.meta.get("tags") or {}
    texts = [f"{k}={v}" for k, v in tags.items()]
    if raster.source and raster.source != "array":
        texts.append(Path(raster.source).name)
    for text in texts:
        for convention, pattern in _PRODUCT_PATTERNS:
            if pattern.search(text):
                return convention
    return None


@dataclass(frozen=True)
class TrueColour:
    """Positions of the red, green and blue bands, and how they were recognised."""

    indices: tuple[int, int, int]
    names: tuple[str, str, str]
    how: str


def band_roles(raster: Raster) -> tuple[dict[int, str], str]:
    """Role of each recognised band (position -> role) and the rule that gave it.

    Colour names and GDAL colour interpretation come first; then mission names, with the
    convention from product metadata, from names only one convention uses (zero-padded
    ``B02``, ``B8A``: Sentinel-2), or, for ``B1``..``B4``, none (ambiguous: ``{}``, "ambiguous").
    """
    names = list(raster.band_names)
    roles = {i: ROLE_ALIASES[n.strip().lower()] for i, n in enumerate(names) if n.strip().lower() in ROLE_ALIASES}
    ci = raster.meta.get("colorinterp") or []
    for i, c in enumerate(ci[: len(names)]):
        if i not in roles and c in COLORINTERP_ROLES:
            roles[i] = COLORINTERP_ROLES[c]
    if _has_rgb(roles):
        return roles, "band names / colour interpretation"
    numbered = {i: n for i, n in enumerate(names) if not is_placeholder(n, i)
                and (_NUMBERED.fullmatch(n.strip()) or _S2.fullmatch(n.strip()))}
    if not numbered:
        return roles, "none"
    convention = product_convention(raster)
    how = "product metadata"
    if convention is None:
        convention, how = _convention_from_names(list(numbered.values())), "band names"
    if convention is None:
        return {}, "ambiguous"
    normalise = sentinel2_name if convention == "sentinel2" else landsat_name
    table = CONVENTIONS[convention]
    mission = {i: table[c] for i, n in numbered.items() if (c := normalise(n)) in table}
    return {**mission, **roles}, f"{CONVENTION_TITLES[convention]} names ({how})"


def _convention_from_names(names: list[str]) -> Optional[str]:
    """A convention when the names alone settle it; None when B1..B4 could be either."""
    stripped = [n.strip().upper() for n in names]
    if any(_S2.fullmatch(n) and re.search(r"(?:B|BAND)[_ ]?(0\d|8A|08A)$", n) for n in stripped):
        return "sentinel2"
    numbers = {int(m.group(2)) for n in stripped if (m := _NUMBERED.fullmatch(n))}
    if numbers and min(numbers) >= 5:
        return "landsat_oli"  # no colour band among them either way
    return None


def _has_rgb(roles: dict[int, str]) -> bool:
    return all(c in roles.values() for c in ("red", "green", "blue"))


def true_colour(raster: Raster) -> Optional[TrueColour]:
    """The red, green and blue bands by name, or None when the names say nothing about colour.

    Raises :class:`AmbiguousBandsError` for ``B1``..``B4`` style names without product
    metadata (Sentinel-2/OLI and TM/ETM+ read them differently)."""
    roles, how = band_roles(raster)
    if how == "ambiguous":
        names = raster.band_names
        example = [n for k in (4, 3, 2) for n in names if landsat_name(n) == f"B{k}"][:3]
        example = example if len(example) == 3 else ["B4", "B3", "B2"]
        raise AmbiguousBandsError(
            f"{raster.source or 'array'}: bands {name_list(names, 6)} are blue-green-red on Sentinel-2 and "
            f"Landsat 8/9 OLI but green-red-NIR on Landsat 4/5 TM and 7 ETM+, and the file names no product "
            f"or spacecraft; name the true-colour bands with rgb=(red, green, blue), "
            f"e.g. --image-opt rgb={','.join(example)} on the command line"
        )
    if not _has_rgb(roles):
        return None
    idx = tuple(next(i for i, r in sorted(roles.items()) if r == c) for c in ("red", "green", "blue"))
    return TrueColour(idx, tuple(raster.band_names[i] for i in idx), how)  # type: ignore[arg-type]
