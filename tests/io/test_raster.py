"""Reading and writing rasters: real crops in, georeferencing and band metadata kept."""
from pathlib import Path

import numpy as np
import pytest
import rasterio

from earthmind_sdk.contracts import Raster
from earthmind_sdk.errors import RasterError
from earthmind_sdk.io import as_raster, read_raster, reproject_to, resample_like, resize, write_raster

DATA = Path(__file__).resolve().parents[1] / "data"


def test_reads_geotiff_with_georeferencing_and_band_names():
    r = read_raster(DATA / "optical_rmnp_rgb.tif")
    assert r.shape == (3, 96, 128) and r.data.dtype == np.uint8
    assert r.crs == "EPSG:4326" and r.georeferenced
    assert r.nodata == 255
    assert r.band_names == ("red", "green", "blue")
    assert r.transform[0] == pytest.approx(0.0015) and r.transform[4] == pytest.approx(-0.0015)
    assert r.meta["res"] == pytest.approx((0.0015, 0.0015))


def test_png_is_lossless_copy_of_the_tiff_and_not_georeferenced():
    tif = read_raster(DATA / "optical_rmnp_rgb.tif")
    png = read_raster(DATA / "optical_rmnp_rgb.png")
    assert not png.georeferenced and png.crs is None and png.transform is None
    np.testing.assert_array_equal(png.data, tif.data)


def test_jpeg_reads_close_to_the_original():
    tif = read_raster(DATA / "optical_rmnp_rgb.tif")
    jpg = read_raster(DATA / "optical_rmnp_rgb.jpg")
    assert jpg.shape == tif.shape and not jpg.georeferenced
    assert np.abs(jpg.data.astype(int) - tif.data.astype(int)).mean() < 6


def test_16bit_landsat_band_selection_by_name_and_index():
    r = read_raster(DATA / "landsat8_oli_b2_b3_b4.tif", bands=["B4", 1])
    assert r.band_names == ("B4", "B2") and r.data.dtype == np.uint16
    full = read_raster(DATA / "landsat8_oli_b2_b3_b4.tif")
    np.testing.assert_array_equal(r.data[0], full.data[2])
    assert full.crs == "EPSG:32621" and full.meta["res"] == (30.0, 30.0)


@pytest.mark.parametrize("bands, words", [(["B9"], ["B9", "B2, B3, B4"]), ([7], ["band index 7", "1..3"])])
def test_bad_band_choice_names_file_and_band(bands, words):
    with pytest.raises(RasterError) as e:
        read_raster(DATA / "landsat8_oli_b2_b3_b4.tif", bands=bands)
    for w in words + ["landsat8_oli_b2_b3_b4.tif"]:
        assert w in str(e.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(RasterError, match="no such file"):
        read_raster(tmp_path / "nope.tif")
    bad = tmp_path / "notes.tif"
    bad.write_text("not a raster")
    with pytest.raises(RasterError, match="notes.tif"):
        read_raster(bad)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_geotiff_round_trip_keeps_everything(tmp_path, dtype):
    rng = np.random.default_rng(0)
    data = (rng.random((2, 9, 7)) * 200).astype(dtype)
    r = Raster(data=data, band_names=("VV", "VH"), crs="EPSG:32633",
               transform=(20.0, 0.0, 500000.0, 0.0, -20.0, 5000000.0), nodata=0, source="x")
    back = read_raster(write_raster(tmp_path / "x.tif", r))
    np.testing.assert_array_equal(back.data, data)
    assert back.data.dtype == np.dtype(dtype)
    assert (back.crs, back.transform, back.nodata, back.band_names) == (r.crs, r.transform, 0, ("VV", "VH"))


def test_cog_output_is_cloud_optimised(tmp_path):
    r = read_raster(DATA / "landsat8_oli_b2_b3_b4.tif")
    path = write_raster(tmp_path / "x.tif", r, cog=True)
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    back = read_raster(path)
    np.testing.assert_array_equal(back.data, r.data)
    assert back.crs == r.crs and back.transform == r.transform and back.band_names == r.band_names


def test_16bit_png_round_trip(tmp_path):
    data = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(1, 12, 5) * 1000
    back = read_raster(write_raster(tmp_path / "x.png", Raster(data=data)))
    np.testing.assert_array_equal(back.data, data)


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((1, 2, 3, 4)), "expected \\(bands, height, width\\)"),
    (np.zeros((0, 4, 4)), "empty raster"),
    (np.zeros((1, 4, 4), dtype=complex), "unsupported pixel type"),
])
def test_as_raster_refuses_bad_arrays(bad, msg):
    with pytest.raises(RasterError, match=msg):
        as_raster(bad)


def test_as_raster_wraps_2d_arrays():
    r = as_raster(np.ones((4, 5), dtype=np.float32))
    assert r.shape == (1, 4, 5) and r.band_names == ("band1",) and not r.georeferenced


def test_resampling_20m_to_10m_keeps_footprint_and_values():
    s1 = read_raster(DATA / "sentinel1_synthetic_vv_vh.tif")  # 48 x 48 at 20 m
    s2 = read_raster(DATA / "sentinel2_b02_b03_b04_b08.tif")  # 96 x 96 at 10 m
    up = resample_like(s1, s2, resampling="nearest")
    assert up.shape == (2, 96, 96) and up.transform == s2.transform and up.crs == s2.crs
    inside = s1.data[0, 10:20, 10:20]
    np.testing.assert_allclose(up.data[0, 20:40:2, 20:40:2], inside)
    assert np.isnan(up.data[:, -4:]).all()  # the S1 nodata rows became NaN, not zeros


def test_resize_without_georeferencing_and_identity_reproject():
    png = read_raster(DATA / "optical_rmnp_rgb.png")
    small = resize(png, (48, 64), resampling="average")
    assert small.shape == (3, 48, 64) and not small.georeferenced
    block = png.data[:, :2, :2].astype(float).mean(axis=(1, 2))
    np.testing.assert_allclose(small.data[:, 0, 0], block, atol=1e-3)
    s2 = read_raster(DATA / "sentinel2_b02_b03_b04_b08.tif")
    same = reproject_to(s2, s2.crs, s2.transform, (s2.height, s2.width), resampling="nearest")
    np.testing.assert_array_equal(same.data, s2.data.astype(np.float32))
