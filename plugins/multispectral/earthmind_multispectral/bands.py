"""Band tables as data: names, centre wavelengths (nm), native resolutions (m), and the
band groupings that turn a band stack into the 3-channel frames the encoder expects.

Sentinel-2 wavelengths are the Sentinel-2A MSI centre wavelengths (ESA spectral response
functions); Landsat 8/9 OLI/TIRS centres from the USGS band designations.
"""
from __future__ import annotations

from earthmind_sdk.contracts import Band
from earthmind_sdk.sensors.bandnames import convention_bands

#: True colour and the usual false-colour triplets, from the core band-name table.
S2_RGB = convention_bands("sentinel2", "red", "green", "blue")          # B04, B03, B02
S2_NIR_RG = convention_bands("sentinel2", "nir", "red", "green")        # B08, B04, B03
OLI_RGB = convention_bands("landsat_oli", "red", "green", "blue")       # B4, B3, B2
OLI_NIR_RG = convention_bands("landsat_oli", "nir", "red", "green")     # B5, B4, B3
OLI_SWIR = convention_bands("landsat_oli", "swir2", "swir1", "nir")     # B7, B6, B5

S2_BANDS: tuple[Band, ...] = (
    Band("B01", 442.7, 60.0, description="coastal aerosol"),
    Band("B02", 492.4, 10.0, description="blue"),
    Band("B03", 559.8, 10.0, description="green"),
    Band("B04", 664.6, 10.0, description="red"),
    Band("B05", 704.1, 20.0, description="vegetation red edge 1"),
    Band("B06", 740.5, 20.0, description="vegetation red edge 2"),
    Band("B07", 782.8, 20.0, description="vegetation red edge 3"),
    Band("B08", 832.8, 10.0, description="near infrared (broad)"),
    Band("B8A", 864.7, 20.0, description="near infrared (narrow)"),
    Band("B09", 945.1, 60.0, description="water vapour"),
    Band("B10", 1373.5, 60.0, description="cirrus (L1C only)"),
    Band("B11", 1613.7, 20.0, description="short-wave infrared 1"),
    Band("B12", 2202.4, 20.0, description="short-wave infrared 2"),
)
S2_NAMES = tuple(b.name for b in S2_BANDS)

#: Unnamed Sentinel-2 stacks recognised by their band count.
S2_STACKS: dict[int, tuple[str, ...]] = {
    13: S2_NAMES,
    12: tuple(n for n in S2_NAMES if n != "B10"),                  # L2A / BigEarthNet order
    10: ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),  # 10 + 20 m bands
    4: ("B02", "B03", "B04", "B08"),                                # the 10 m bands
}

#: The authors' groupings. v1: every three consecutive bands of B01..B12 with B8A, clipped
#: to DN 0..3000 (reflectance 0..0.3) and divided by 3000. v2: true colour, then triplets,
#: each with a 2-98 percentile stretch. The third member of v2's last triplet is not given in
#: the paper; B08 is the one band of the twelve that is left, so it completes it.
S2_GROUPINGS: dict[str, dict] = {
    "v1": {
        "groups": (("B01", "B02", "B03"), ("B04", "B05", "B06"), ("B07", "B08", "B8A"), ("B09", "B11", "B12")),
        "stretch": "clip", "clip": (0.0, 0.3),
    },
    "v2": {
        "groups": (S2_RGB, ("B05", "B06", "B07"), ("B8A", "B11", "B12"), ("B01", "B09", "B08")),
        "stretch": "percentile", "percentiles": (2.0, 98.0),
    },
    "truecolor": {"groups": (S2_RGB,), "stretch": "percentile", "percentiles": (2.0, 98.0)},
    "rgbn": {
        "groups": (S2_RGB, S2_NIR_RG),
        "stretch": "percentile", "percentiles": (2.0, 98.0),
    },
}

LANDSAT_OLI_BANDS: tuple[Band, ...] = (
    Band("B1", 443.0, 30.0, description="coastal aerosol"),
    Band("B2", 482.0, 30.0, description="blue"),
    Band("B3", 561.5, 30.0, description="green"),
    Band("B4", 654.5, 30.0, description="red"),
    Band("B5", 865.0, 30.0, description="near infrared"),
    Band("B6", 1608.5, 30.0, description="short-wave infrared 1"),
    Band("B7", 2200.5, 30.0, description="short-wave infrared 2"),
    Band("B8", 589.5, 15.0, description="panchromatic"),
    Band("B9", 1373.5, 30.0, description="cirrus"),
    Band("B10", 10895.0, 100.0, description="thermal infrared 1 (TIRS, resampled to 30 m)"),
    Band("B11", 12005.0, 100.0, description="thermal infrared 2 (TIRS, resampled to 30 m)"),
)
LANDSAT_NAMES = tuple(b.name for b in LANDSAT_OLI_BANDS)
LANDSAT_STACKS: dict[int, tuple[str, ...]] = {
    11: LANDSAT_NAMES,
    7: LANDSAT_NAMES[:7],   # the reflective bands of a Collection 2 surface-reflectance stack
}
LANDSAT_GROUPINGS: dict[str, dict] = {
    "truecolor": {"groups": (OLI_RGB,), "stretch": "percentile", "percentiles": (2.0, 98.0)},
    "v2": {
        "groups": (OLI_RGB, OLI_NIR_RG, OLI_SWIR),
        "stretch": "percentile", "percentiles": (2.0, 98.0),
    },
}
