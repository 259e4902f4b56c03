"""Which bands of a raster the optical sensor shows as red, green and blue.

Kept apart from the scaling in :mod:`.optical` so each can change alone. The order of rules:
``rgb=(...)`` given -> those bands; bands recognised by name, colour interpretation or
mission convention (:mod:`.bandnames`) -> true colour; 1 band -> grey; 2 bands -> grey +
alpha; 3 or 4 unrecognised bands -> the first three, with a one-line
:class:`BandSelectionWarning` when a choice was guessed (4 bands, or names that mean nothing).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

from ..contracts import Raster
from ..errors import RasterError, name_list
from .bandnames import band_roles, true_colour
from .base import is_generic
from .scaling import band_index


class BandSelectionWarning(UserWarning):
    """The optical sensor guessed which bands are red, green and blue; the message says which."""


@dataclass(frozen=True)
class Selection:
    indices: list[int]
    composite: str


def check_layout(raster: Raster, rgb: Optional[Sequence[str]], sensor: str) -> None:
    """Refuse, in one line, a raster whose true-colour bands cannot be found."""
    select_bands(raster, rgb, sensor, warn=False)


def select_bands(raster: Raster, rgb: Optional[Sequence[str]], sensor: str = "optical",
                 *, warn: bool = True) -> Selection:
    where = raster.source or "array"
    names = raster.band_names
    n = raster.data.shape[0]
    if rgb is not None:
        return Selection(band_index(raster, rgb, sensor), "+".join(rgb))
    if n == 1:
        return Selection([0], "grey")
    if n == 2:
        if not is_alpha(raster, 1):
            raise RasterError(f"{where}: 2 bands ({name_list(names)}) are read as grey + alpha, "
                              f"but band 2 is not an alpha band; pick bands with rgb=(...)")
        return Selection([0], "grey")
    found = true_colour(raster)
    if found is not None:
        named = found.how.startswith("band names")
        return Selection(list(found.indices), "rgb" if named else "+".join(found.names))
    roles, _ = band_roles(raster)
    colours = sorted({r for r in roles.values() if r in ("red", "green", "blue")})
    if colours:
        missing = [c for c in ("red", "green", "blue") if c not in roles.values()]
        raise RasterError(
            f"{where}: bands {name_list(names)} hold {', '.join(colours)} but no {' or '.join(missing)} band; "
            f"pick three with rgb=(...)")
    if n > 4:
        raise RasterError(
            f"{where}: the optical sensor takes 1 to 4 bands, this raster has {n} ({name_list(names)}) and "
            f"none is named as a colour; pick three with rgb=(...) or use a multispectral sensor")
    label = [names[i] if i < len(names) else f"band{i + 1}" for i in range(n)]
    if warn and (n == 4 and not is_alpha(raster, 3) or not is_generic(names)):
        extra = f"; band 4 ({label[3]}) ignored" if n == 4 and not is_alpha(raster, 3) else ""
        warnings.warn(
            f"{where}: bands 1, 2, 3 ({', '.join(label[:3])}) taken as red, green, blue (their names say no colour){extra}; "
            f"name the bands or pass rgb=(...) if that is wrong", BandSelectionWarning, stacklevel=3)
    return Selection([0, 1, 2], "rgb")


def is_alpha(raster: Raster, i: int) -> bool:
    names = raster.band_names
    if i < len(names) and names[i].lower() == "alpha":
        return True
    ci = raster.meta.get("colorinterp") or []
    return i < len(ci) and ci[i] == "alpha"
