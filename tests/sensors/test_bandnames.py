"""True colour from the band names users have: one small GeoTIFF per naming convention (written
here) plus the real crops in tests/data. Each case checks that the optical sensor, left to
itself, shows exactly the bands an explicit rgb=(...) would."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from earthmind_sdk.contracts import Raster
from earthmind_sdk.errors import RasterError
from earthmind_sdk.io import read_raster
from earthmind_sdk.sensors.bandnames import AmbiguousBandsError, convention_bands, landsat_name, sentinel2_name
from earthmind_sdk.sensors.optical import OpticalSensor
from earthmind_sdk.sensors.optical_bands import BandSelectionWarning

DATA = Path(__file__).resolve().parents[1] / "data"


def write_stack(path, names, tags=None, colorinterp=None, n=None, dtype="uint16"):
    """A small georeferenced stack whose band k holds values around 1000*(k+1) (tells bands apart)."""
    n = n or len(names)
    rng = np.random.default_rng(n)
    data = (np.arange(1, n + 1)[:, None, None] * 1000 + rng.integers(0, 500, (n, 24, 20))).astype(dtype)
    profile = dict(driver="GTiff", count=n, height=24, width=20, dtype=dtype, crs="EPSG:32633",
                   transform=rasterio.Affine(10, 0, 500000, 0, -10, 5000000))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names or (), start=1):
            dst.set_band_description(i, name)
        if tags:
            dst.update_tags(**tags)
        if colorinterp:
            dst.colorinterp = colorinterp
    return path


def shown_bands(path_or_raster):
    """(composite, frames) from the sensor's own choice."""
    image = OpticalSensor().load(path_or_raster)
    return image.composite, image.frames[0].numpy()


def explicit(path_or_raster, rgb):
    return OpticalSensor(rgb=rgb).load(path_or_raster).frames[0].numpy()


CASES = [
    # (file name, band names, tags, expected red/green/blue names)
    ("s2.tif", ["B02", "B03", "B04", "B08"], None, ("B04", "B03", "B02")),                 # zero-padded: S2
    ("s2_short.tif", ["B2", "B3", "B4", "B8"], {"SPACECRAFT_NAME": "Sentinel-2A"}, ("B4", "B3", "B2")),
    ("s2_product.tif", ["B2", "B3", "B4"], {"PRODUCT_ID": "S2B_MSIL2A_20230601T101559_N0509"}, ("B4", "B3", "B2")),
    ("oli.tif", ["B2", "B3", "B4", "B5"], {"LANDSAT_PRODUCT_ID": "LC08_L1TP_224078_20200518_02_T1"}, ("B4", "B3", "B2")),
    ("oli_sr.tif", ["SR_B2", "SR_B3", "SR_B4"], {"SPACECRAFT_ID": "LANDSAT_9"}, ("SR_B4", "SR_B3", "SR_B2")),
    ("etm.tif", ["B1", "B2", "B3", "B4"], {"LANDSAT_PRODUCT_ID": "LE07_L2SP_044034_20210508_02_T1"}, ("B3", "B2", "B1")),
    ("LT05_L2SP_044034_19990508_20200907_02_T1_stack.tif", ["SR_B1", "SR_B2", "SR_B3", "SR_B4"], None,
     ("SR_B3", "SR_B2", "SR_B1")),                                                          # TM from the file name
    ("colours.tif", ["nir", "blue", "green", "red"], None, ("red", "green", "blue")),
    ("coastal.tif", ["coastal", "Blue", "Green", "Red", "NIR"], None, ("Red", "Green", "Blue")),
]


@pytest.mark.parametrize("fname,names,tags,rgb", CASES, ids=[c[0] for c in CASES])
def test_conventions_give_true_colour(tmp_path, fname, names, tags, rgb):
    path = write_stack(tmp_path / fname, names, tags)
    composite, frames = shown_bands(path)
    np.testing.assert_array_equal(frames, explicit(path, rgb))
    assert composite in ("rgb", "+".join(rgb))
    # the red channel is the band named red (values ~1000 * its position), not the first band
    red_pos = names.index(rgb[0])
    raw = read_raster(path).data[red_pos].astype(float)
    lo, hi = np.percentile(raw, [2, 98])
    np.testing.assert_allclose(frames[0], np.clip((raw - lo) / (hi - lo), 0, 1), atol=1e-6)


def test_real_sentinel2_crop_is_not_shown_blue_as_red():
    composite, frames = shown_bands(DATA / "sentinel2_b02_b03_b04_b08.tif")
    assert composite == "B04+B03+B02"
    np.testing.assert_array_equal(frames, explicit(DATA / "sentinel2_b02_b03_b04_b08.tif", ("B04", "B03", "B02")))


def test_real_landsat_crop_decided_by_its_spacecraft_tag():
    composite, frames = shown_bands(DATA / "landsat8_oli_b2_b3_b4.tif")
    assert composite == "B4+B3+B2"  # the file says SPACECRAFT=LANDSAT_8: OLI, so B4 is red


def test_colour_interpretation_alone(tmp_path):
    path = write_stack(tmp_path / "ci.tif", None, n=3,
                       colorinterp=[ColorInterp.blue, ColorInterp.green, ColorInterp.red])
    composite, frames = shown_bands(path)
    assert composite == "rgb" and read_raster(path).band_names == ("blue", "green", "red")
    np.testing.assert_array_equal(frames, explicit(path, ("red", "green", "blue")))


def test_full_sentinel2_stack_by_name(tmp_path):
    names = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
    path = write_stack(tmp_path / "s2_12.tif", names)
    composite, _ = shown_bands(path)
    assert composite == "B04+B03+B02"


def test_ambiguous_names_are_refused_in_one_line(tmp_path):
    path = write_stack(tmp_path / "stack.tif", ["B2", "B3", "B4"])
    with pytest.raises(AmbiguousBandsError) as err:
        OpticalSensor().load(path)
    msg = str(err.value)
    assert "\n" not in msg and "stack.tif" in msg and "rgb=(" in msg and "TM" in msg
    # the answer it asks for works
    assert OpticalSensor(rgb=("B4", "B3", "B2")).load(path).composite == "B4+B3+B2"


def test_tm_bands_without_blue_are_refused(tmp_path):
    path = write_stack(tmp_path / "tm.tif", ["B2", "B3", "B4"], {"SPACECRAFT_ID": "LANDSAT_5"})
    with pytest.raises(RasterError, match="no blue band"):
        OpticalSensor().load(path)


def test_unnamed_fourth_band_is_reported(tmp_path):
    path = write_stack(tmp_path / "plain.tif", None, n=4)
    with pytest.warns(BandSelectionWarning, match=r"bands 1, 2, 3 .* band 4 \(band4\) ignored"):
        composite, _ = shown_bands(path)
    assert composite == "rgb"
    three = write_stack(tmp_path / "plain3.tif", None, n=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BandSelectionWarning)  # three unnamed bands are RGB: nothing to say
        shown_bands(three)


def test_many_bands_error_is_capped():
    raster = Raster(np.ones((128, 4, 4), np.uint16), band_names=tuple(f"band{i}" for i in range(1, 129)))
    with pytest.raises(RasterError) as err:
        OpticalSensor().load(raster)
    msg = str(err.value)
    assert "… and 118 more" in msg and "band128" not in msg and len(msg) < 400


def test_core_table_names_the_plugins_bands():
    assert convention_bands("sentinel2", "red", "green", "blue") == ("B04", "B03", "B02")
    assert [sentinel2_name(n) for n in ("B2", "b02", "BAND_8A", "SR_B2", "B13")] == ["B02", "B02", "B8A", None, None]
    assert [landsat_name(n) for n in ("SR_B4", "B04", "ST_B10", "B12")] == ["B4", "B4", "B10", None]
    from earthmind_multispectral.sensors import LandsatOLISensor, Sentinel2Sensor

    assert Sentinel2Sensor().normalise("b8") == "B08" and LandsatOLISensor().normalise("SR_B4") == "B4"
    assert Sentinel2Sensor(grouping="truecolor").groups == (("B04", "B03", "B02"),)


def test_unnamed_file_bands_are_placeholders_for_every_sensor(tmp_path):
    """GDAL reads band 1 of an undescribed GeoTIFF as 'gray': still an unnamed stack, so the
    Sentinel-2 sensor takes its 4 bands as the 10 m bands instead of refusing 'gray'."""
    from earthmind_sdk.plugins import registry

    path = write_stack(tmp_path / "plain.tif", None, n=4)
    assert read_raster(path).band_names[0] == "gray"
    image = registry("sensors").build("sentinel2", grouping="truecolor").load(path)
    assert image.raster.band_names == ("B02", "B03", "B04", "B08") and image.composite == "truecolor:B04/B03/B02"
