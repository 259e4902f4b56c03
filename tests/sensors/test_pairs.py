"""Pairs: same grid passes, different grids are resampled onto the primary, misalignment refused."""
from pathlib import Path

import numpy as np
import pytest
from rasterio.warp import calculate_default_transform

from earthmind_sdk.contracts import Raster
from earthmind_sdk.errors import AlignmentError
from earthmind_sdk.io import footprint, read_raster, reproject_to
from earthmind_sdk.sensors.optical import OpticalSensor
from earthmind_sdk.sensors.pairs import align_pair, load_pair

DATA = Path(__file__).resolve().parents[1] / "data"
S1 = DATA / "sentinel1_synthetic_vv_vh.tif"
S2 = DATA / "sentinel2_b02_b03_b04_b08.tif"


def _shifted(r: Raster, dx_pixels: float, source: str) -> Raster:
    t = list(r.transform)
    t[2] += dx_pixels * t[0]
    return Raster(r.data, r.band_names, r.crs, tuple(t), r.nodata, source, dict(r.meta))


def test_same_grid_is_returned_unchanged():
    s2 = read_raster(S2)
    assert align_pair(s2, read_raster(S2)).data is not s2.data
    same = read_raster(S2)
    assert align_pair(s2, same) is same


def test_10m_secondary_is_resampled_onto_the_20m_primary():
    s1, s2 = read_raster(S1), read_raster(S2)
    out = align_pair(s1, s2, resampling="average")
    assert out.shape == (4, 48, 48)
    assert (out.crs, out.transform) == (s1.crs, s1.transform)
    # each 20 m pixel covers exactly four 10 m pixels: "average" gives their mean
    blocks = s2.data.astype(np.float64).reshape(4, 48, 2, 48, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(out.data, blocks, rtol=1e-5)
    assert out.meta["aligned_to"] == str(S1) and out.meta["overlap"] == pytest.approx(1.0)


def test_other_crs_is_reprojected_back_onto_the_primary():
    s2 = read_raster(S2)
    west, south, east, north = footprint(s2)
    t, w, h = calculate_default_transform(s2.crs, "EPSG:4326", s2.width, s2.height, west, south, east, north)
    geo = reproject_to(s2, "EPSG:4326", tuple(t)[:6], (h, w))
    geo.source = "s2_in_lonlat.tif"
    back = align_pair(s2, geo)
    assert back.crs == s2.crs and back.shape == s2.shape
    inner = back.data[:, 4:-4, 4:-4]
    assert np.isfinite(inner).all()
    corr = np.corrcoef(inner[2].ravel(), s2.data[2, 4:-4, 4:-4].ravel())[0, 1]
    assert corr > 0.9


def test_partial_overlap_leaves_uncovered_pixels_invalid():
    s2 = read_raster(S2)
    moved = _shifted(s2, 24, "moved.tif")  # a quarter of the width off to the east
    out = align_pair(s2, moved, resampling="nearest")
    assert np.isnan(out.data[:, :, :24]).all() and np.isfinite(out.data[:, :, 24:]).all()
    np.testing.assert_array_equal(out.data[:, :, 24:], s2.data[:, :, :-24].astype(np.float32))
    image = OpticalSensor(rgb=("B04", "B03", "B02")).prepare(out)
    assert not image.valid[:, :24].any() and image.valid[:, 24:].all()


def test_disjoint_and_thin_overlaps_are_refused_naming_both():
    s2 = read_raster(S2)
    with pytest.raises(AlignmentError) as e:
        align_pair(s2, _shifted(s2, 500, "far_away.tif"))
    assert "far_away.tif" in str(e.value) and str(S2) in str(e.value) and "disjoint" in str(e.value)
    with pytest.raises(AlignmentError, match="covers only 25%"):
        align_pair(s2, _shifted(s2, 72, "edge.tif"))
    landsat = read_raster(DATA / "landsat8_oli_b2_b3_b4.tif")
    with pytest.raises(AlignmentError, match="not a pair"):
        align_pair(s2, landsat)


def test_ungeoreferenced_pairs():
    png = read_raster(DATA / "optical_rmnp_rgb.png")
    jpg = read_raster(DATA / "optical_rmnp_rgb.jpg")
    assert align_pair(png, jpg).meta["alignment"].startswith("assumed co-registered")
    small = Raster(png.data[:, ::2, ::2], png.band_names, source="half.png")
    with pytest.raises(AlignmentError) as e:
        align_pair(png, small)
    assert "half.png" in str(e.value) and "optical_rmnp_rgb.png" in str(e.value) and "allow_resize" in str(e.value)
    resized = align_pair(png, small, allow_resize=True)
    assert resized.shape == png.shape


def test_one_georeferenced_one_not():
    tif = read_raster(DATA / "optical_rmnp_rgb.tif")
    png = read_raster(DATA / "optical_rmnp_rgb.png")
    out = align_pair(tif, png)  # same size: takes the primary's grid
    assert out.crs == tif.crs and out.transform == tif.transform
    with pytest.raises(AlignmentError, match="is not georeferenced"):
        align_pair(tif, Raster(png.data[:, :50], png.band_names, source="cut.png"))


def test_load_pair_prepares_both_on_one_grid():
    a, b = load_pair(OpticalSensor(), DATA / "optical_rmnp_rgb.tif", OpticalSensor(), DATA / "optical_rmnp_rgb.png")
    assert a.frames.shape == b.frames.shape and b.raster.crs == "EPSG:4326"
