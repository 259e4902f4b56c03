"""The built-in optical sensor on real crops and on every band layout it accepts."""
from pathlib import Path

import numpy as np
import pytest
import torch

from earthmind_sdk.contracts import Raster
from earthmind_sdk.errors import RasterError
from earthmind_sdk.io import read_raster, write_mask
from earthmind_sdk.plugins import registry
from earthmind_sdk.sensors.optical import OpticalSensor
from earthmind_sdk.sensors.testing import check_image

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("name", ["optical_rmnp_rgb.tif", "optical_rmnp_rgb.png", "optical_rmnp_rgb.jpg"])
def test_real_rgb_crops(name):
    image = registry("sensors").build("optical").load(DATA / name)
    check_image(image)
    assert image.frames.shape == (1, 3, 96, 128) and image.composite == "rgb"
    raw = read_raster(DATA / name)
    expect = raw.data.astype(np.float32) / 255
    valid = image.valid.numpy()
    np.testing.assert_allclose(image.frames[0].numpy()[:, valid], expect[:, valid], atol=1e-6)


def test_nodata_pixels_are_invalid_and_georeferencing_kept():
    raster = read_raster(DATA / "optical_rmnp_rgb.tif")
    image = OpticalSensor().prepare(raster)
    nodata = (raster.data == 255).any(axis=0)
    assert nodata.any()
    np.testing.assert_array_equal(image.valid.numpy(), ~nodata)
    assert image.raster.crs == "EPSG:4326" and image.raster.transform == raster.transform
    assert (image.frames[:, :, torch.from_numpy(nodata)] == 0).all()


def test_16bit_landsat_gets_a_percentile_stretch():
    raster = read_raster(DATA / "landsat8_oli_b2_b3_b4.tif")
    image = OpticalSensor(rgb=("B4", "B3", "B2")).prepare(raster)
    check_image(image, raster)
    red = image.frames[0, 0].numpy()
    assert image.composite == "B4+B3+B2"
    assert (red == 0).mean() == pytest.approx(0.02, abs=0.015)
    assert (red == 1).mean() == pytest.approx(0.02, abs=0.015)
    b4 = raster.data[2].astype(float)
    lo, hi = np.percentile(b4, [2, 98])
    np.testing.assert_allclose(red, np.clip((b4 - lo) / (hi - lo), 0, 1), atol=1e-6)


def test_grey_grey_alpha_and_rgba():
    grey = np.arange(20, dtype=np.uint8).reshape(1, 4, 5) * 10
    img = OpticalSensor().load(grey)
    assert img.composite == "grey" and torch.equal(img.frames[0, 0], img.frames[0, 2])
    alpha = np.zeros((1, 4, 5), np.uint8)
    alpha[0, :2] = 255
    img = OpticalSensor().load(Raster(np.concatenate([grey, alpha]), band_names=("gray", "alpha")))
    assert img.valid[:2].all() and not img.valid[2:].any()
    rgba = Raster(np.concatenate([grey, grey, grey, alpha]), band_names=("red", "green", "blue", "alpha"))
    img = OpticalSensor().load(rgba)
    assert img.composite == "rgb" and int(img.valid.sum()) == 10
    rgbn = Raster(np.concatenate([grey, grey, grey, grey]))  # fourth band not alpha: ignored
    assert bool(OpticalSensor().load(rgbn).valid.all())


def test_float_input_in_unit_range_is_kept():
    data = np.random.default_rng(0).random((3, 6, 7)).astype(np.float32)
    img = OpticalSensor().load(data)
    np.testing.assert_allclose(img.frames[0].numpy(), data, atol=1e-7)


def test_nan_and_inf_become_invalid_not_values():
    data = np.random.default_rng(1).random((3, 6, 7)).astype(np.float32)
    data[0, 1, 1] = np.nan
    data[2, 3, 4] = np.inf
    img = OpticalSensor().load(data)
    assert not img.valid[1, 1] and not img.valid[3, 4] and int(img.valid.sum()) == 40
    assert torch.isfinite(img.frames).all()


@pytest.mark.parametrize("data, words", [
    (np.zeros((5, 4, 4), np.uint8), ["array", "1 to 4 bands", "5"]),
    (np.zeros((2, 4, 4), np.uint8), ["not an alpha band"]),
    (np.full((3, 4, 4), np.nan, np.float32), ["no valid pixel"]),
])
def test_clear_errors(data, words):
    with pytest.raises(RasterError) as e:
        OpticalSensor().load(data)
    for w in words:
        assert w in str(e.value)


def test_missing_named_band_error_names_file_and_band():
    with pytest.raises(RasterError) as e:
        OpticalSensor(rgb=("B5", "B4", "B3")).load(DATA / "landsat8_oli_b2_b3_b4.tif")
    assert "landsat8_oli_b2_b3_b4.tif" in str(e.value) and "B5" in str(e.value)


def test_bad_arguments_refused():
    with pytest.raises(RasterError, match="stretch"):
        OpticalSensor(stretch="log")
    from earthmind_sdk.sensors.choice import SensorChoiceError, build_sensor, parse_choice

    choice = parse_choice({"name": "optical", "args": {"composite": "x"}}, where="sample.sensors.optical")
    with pytest.raises(SensorChoiceError, match=r"sample\.sensors\.optical: sensor 'optical' has no option\(s\) "
                                                r"composite; its options are .*stretch"):
        build_sensor(choice, slot="optical", where="sample.sensors.optical")


def test_georeferencing_survives_read_prepare_mask_write(tmp_path):
    sensor = registry("sensors").build("optical")
    image = sensor.load(DATA / "optical_rmnp_rgb.tif")
    mask = image.frames[0, 2] > image.frames[0, 0]  # "bluer than red": a mask from the frames
    out = write_mask(mask, tmp_path / "blue", source=image)
    back = read_raster(out["mask"])
    src = read_raster(DATA / "optical_rmnp_rgb.tif")
    assert back.crs == src.crs and back.transform == src.transform and back.shape == (1, 96, 128)
    np.testing.assert_array_equal(back.data[0].astype(bool), mask.numpy())


def test_bands_named_by_colour_are_put_in_rgb_order():
    data = np.stack([np.full((3, 3), v, np.uint8) for v in (10, 20, 30)])
    img = OpticalSensor().load(Raster(data, ("blue", "green", "red")))
    assert [round(float(img.frames[0, c, 0, 0]) * 255) for c in range(3)] == [30, 20, 10]
