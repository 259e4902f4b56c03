"""Masks back to disk: GeoTIFF on the source grid when georeferenced, PNG otherwise, plus overlay."""
from pathlib import Path

import numpy as np
import pytest
import torch

from earthmind_sdk.errors import RasterError
from earthmind_sdk.io import read_raster, write_mask
from earthmind_sdk.sensors.optical import OpticalSensor

DATA = Path(__file__).resolve().parents[1] / "data"


def _mask(h=96, w=128):
    m = np.zeros((h, w), dtype=bool)
    m[20:50, 30:90] = True
    return m


def test_georeferenced_source_gives_geotiff_on_the_same_grid(tmp_path):
    src = read_raster(DATA / "optical_rmnp_rgb.tif")
    out = write_mask(_mask(), tmp_path / "lake", source=src)
    assert out["mask"] == tmp_path / "lake.tif" and out["overlay"] == tmp_path / "lake_overlay.png"
    back = read_raster(out["mask"])
    assert back.crs == src.crs and back.transform == src.transform
    np.testing.assert_array_equal(back.data[0], _mask().astype(np.uint8))
    ov = read_raster(out["overlay"])
    assert ov.shape == (3, 96, 128) and not ov.georeferenced
    inside, outside = _mask(), ~_mask()
    # the tint pulls the red channel up inside the mask and leaves the rest as rendered
    assert ov.data[0][inside].mean() > ov.data[0][outside].mean() + 20


def test_no_georeferencing_gives_png(tmp_path):
    src = read_raster(DATA / "optical_rmnp_rgb.png")
    out = write_mask(torch.from_numpy(_mask()), tmp_path / "m.tif", source=src, overlay=False)
    assert out == {"mask": tmp_path / "m.png"}
    back = read_raster(out["mask"])
    assert set(np.unique(back.data)) == {0, 255}
    np.testing.assert_array_equal(back.data[0] == 255, _mask())


def test_sensor_image_source_draws_on_its_frame(tmp_path):
    image = OpticalSensor().load(DATA / "optical_rmnp_rgb.tif")
    out = write_mask(_mask().astype(np.float32) * 0.9, tmp_path / "p", source=image)
    assert read_raster(out["mask"]).crs == "EPSG:4326"
    ov = read_raster(out["overlay"]).data
    frame = (image.frames[0].numpy() * 255 + 0.5).astype(np.uint8)
    outside = ~_mask()
    outside[19:51, 29:91] = False  # not the outline either
    np.testing.assert_array_equal(ov[:, outside], frame[:, outside])


def test_probabilities_are_thresholded(tmp_path):
    probs = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    out = write_mask(probs, tmp_path / "p", threshold=0.5, overlay=False)
    np.testing.assert_array_equal(read_raster(out["mask"]).data[0] == 255, probs > 0.5)


@pytest.mark.parametrize("mask, msg", [
    (np.zeros((10, 10), bool), "does not match the reference raster"),
    (np.full((96, 128), np.nan, np.float32), "NaN or inf"),
    (np.zeros((2, 3, 96, 128), bool), "must be \\(H, W\\)"),
])
def test_bad_masks_are_refused_with_reason(tmp_path, mask, msg):
    src = read_raster(DATA / "optical_rmnp_rgb.tif")
    with pytest.raises(RasterError, match=msg):
        write_mask(mask, tmp_path / "bad", source=src)


def test_write_masks_writes_one_named_pair_per_mask_and_hands_each_file_to_record(tmp_path):
    from earthmind_sdk.contracts import Result
    from earthmind_sdk.io import write_masks

    src = read_raster(DATA / "optical_rmnp_rgb.tif")
    result = Result(answer="Sure, [SEG] and [SEG].", parsed=None, masks=[_mask(), ~_mask()], rasters={"optical": src})
    recorded = []
    written = write_masks(result, tmp_path / "out", stem="scene-abc", record=lambda *p: recorded.extend(p))
    assert [w["mask"].name for w in written] == ["scene-abc_mask0.tif", "scene-abc_mask1.tif"]
    assert sorted(recorded) == sorted(p for w in written for p in w.values())
    np.testing.assert_array_equal(read_raster(written[1]["mask"]).data[0], (~_mask()).astype(np.uint8))
    assert read_raster(written[0]["mask"]).crs == src.crs


def test_write_masks_without_masks_writes_nothing(tmp_path):
    from earthmind_sdk.contracts import Result
    from earthmind_sdk.io import write_masks

    assert write_masks(Result(answer="no", parsed=None), tmp_path / "out", stem="s") == []
    assert not (tmp_path / "out").exists()
