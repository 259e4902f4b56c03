"""Sentinel-1 and generic SAR sensors on the generated dual-pol sample and on variants of it."""
import importlib.metadata as md
from pathlib import Path

import numpy as np
import pytest

from earthmind_sdk.contracts import Raster
from earthmind_sdk.errors import RasterError
from earthmind_sdk.io import read_raster, write_mask, write_raster
from earthmind_sdk.plugins import PluginSystem, registry
from earthmind_sdk.sensors.testing import check_image

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"
S1 = DATA / "sentinel1_synthetic_vv_vh.tif"


def s1(**kw):
    return registry("sensors").build("sentinel1", **kw)


def _db(x):
    with np.errstate(divide="ignore"):
        return 10 * np.log10(x)


def test_sample_grey_composite_values_masks_and_metadata():
    raster = read_raster(S1)
    image = s1().load(S1)
    check_image(image, raster)
    assert image.frames.shape == (1, 3, 48, 48) and image.composite == "grey"
    valid = image.valid.numpy()
    assert not valid[:, :2].any()      # border-noise columns
    assert not valid[-2:].any()        # GRD nodata rows (value 0)
    assert valid[:-2, 2:].mean() > 0.99
    expect = np.clip((_db(raster.data[0].astype(np.float64)) + 25) / 25, 0, 1)
    np.testing.assert_allclose(image.frames[0, 0].numpy()[valid], expect[valid], atol=1e-6)
    assert image.raster.crs == raster.crs and image.raster.transform == raster.transform
    assert image.raster.meta["sar_units"] == "power"  # from the file's UNITS tag
    assert image.raster.meta["polarisations"] == ["VV", "VH"]


def test_vv_vh_ratio_composite():
    raster = read_raster(S1)
    image = s1(composite="vv_vh_ratio").load(S1)
    vv, vh = (_db(np.maximum(raster.data[i].astype(np.float64), 1e-10)) for i in (0, 1))
    v = image.valid.numpy()
    f = image.frames[0].numpy()
    np.testing.assert_allclose(f[0][v], np.clip((vv + 25) / 25, 0, 1)[v], atol=1e-6)
    np.testing.assert_allclose(f[1][v], np.clip((vh + 32) / 27, 0, 1)[v], atol=1e-6)
    np.testing.assert_allclose(f[2][v], np.clip((vv - vh) / 15, 0, 1)[v], atol=1e-6)


@pytest.mark.parametrize("units, convert", [
    ("amplitude", np.sqrt),
    ("db", lambda p: 10 * np.log10(np.where(p > 0, p, 1e-30))),
])
def test_amplitude_and_db_inputs_give_the_power_result(units, convert):
    raster = read_raster(S1)
    ref = s1(border_noise_db=None).load(raster)
    data = convert(raster.data.astype(np.float64)).astype(np.float32)
    data[raster.data == 0] = np.nan
    other = Raster(data, raster.band_names, raster.crs, raster.transform, None, "converted.tif")
    declared = s1(units=units, border_noise_db=None).load(other)
    np.testing.assert_allclose(declared.frames.numpy(), ref.frames.numpy(), atol=1e-4)
    if units == "db":  # negative values: detected without being told
        detected = s1(border_noise_db=None).load(other)
        assert detected.raster.meta["sar_units"] == "db"
        np.testing.assert_allclose(detected.frames.numpy(), ref.frames.numpy(), atol=1e-4)


def test_unit_detection_for_integer_and_8bit():
    amp = (np.random.default_rng(0).random((1, 8, 8)) * 400 + 1).astype(np.uint16)
    assert s1(border_noise_db=None).load(amp).raster.meta["sar_units"] == "amplitude"
    grey = registry("sensors").build("sar").load(DATA / "optical_rmnp_rgb.png")
    assert grey.composite == "display" and grey.raster.meta["sar_units"] == "display"


def test_single_polarisation_and_hh_hv():
    raster = read_raster(S1)
    vv = Raster(raster.data[:1], (), raster.crs, raster.transform, 0.0, "vv_only.tif")
    vv.band_names = ("band1",)
    image = s1().load(vv)
    assert image.raster.band_names == ("VV",)
    with pytest.raises(RasterError) as e:
        s1(composite="vv_vh_ratio").load(vv)
    assert "vv_only.tif" in str(e.value) and "cross-pol" in str(e.value)
    hh = Raster(raster.data, ("HH", "HV"), raster.crs, raster.transform, 0.0, "hh.tif")
    ratio = s1(composite="vv_vh_ratio").load(hh)
    assert ratio.raster.meta["polarisations"] == ["HH", "HV"]


def test_speckle_filter_smooths_the_sample():
    raw = s1().load(S1)
    for name in ("lee", "refined_lee"):
        filt = s1(speckle_filter=name).load(S1)
        assert filt.raster.meta["speckle_filter"] == name
        assert np.array_equal(filt.valid.numpy(), raw.valid.numpy())  # masks come from the raw values
        v = raw.valid.numpy()
        assert filt.frames[0, 0].numpy()[v].std() < raw.frames[0, 0].numpy()[v].std()


def test_recipe_style_construction_and_bad_arguments():
    sensor = s1(composite="vv_vh_ratio", speckle_filter="lee", clip_db={"VV": (-20, -5)})
    assert sensor.composite == "vv_vh_ratio" and sensor.speckle_filter == "lee"
    for kwargs, msg in [(dict(composite="rgb"), "grey"), (dict(units="kelvin"), "unknown units"),
                        (dict(speckle_filter="gauss"), "refined_lee"), (dict(clip_db=(0, -5)), "low < high"),
                        (dict(window=4), "odd")]:
        with pytest.raises(RasterError, match=msg):
            s1(**kwargs)


def test_generic_sar_needs_one_band_or_a_choice():
    sar = registry("sensors").build("sar")
    with pytest.raises(RasterError) as e:
        sar.load(S1)
    assert "sentinel1_synthetic_vv_vh.tif" in str(e.value) and "band=" in str(e.value)
    vh = registry("sensors").build("sar", band="VH").load(S1)
    assert vh.raster.meta["polarisations"] == ["VH"] and vh.frames.shape == (1, 3, 48, 48)


def test_bad_sentinel1_bands_are_named():
    with pytest.raises(RasterError, match="B04"):
        s1().load(Raster(np.ones((2, 4, 4), np.float32), ("B04", "B08"), source="s2.tif"))
    with pytest.raises(RasterError, match="3 unnamed bands"):
        s1().load(np.ones((3, 4, 4), np.float32))


def test_mask_written_on_the_sar_grid(tmp_path):
    image = s1().load(S1)
    out = write_mask(image.frames[0, 0] > 0.5, tmp_path / "bright", source=image)
    back = read_raster(out["mask"])
    assert (back.crs, back.transform) == (image.raster.crs, image.raster.transform)


def test_registered_through_the_entry_point_and_removable(monkeypatch):
    eps = [ep for ep in md.entry_points(group="earthmind") if ep.name == "sar"]
    assert len(eps) == 1 and eps[0].value == "earthmind_sar.plugin"
    with_plugin = PluginSystem(entry_points=eps).load()
    assert {"sentinel1", "sar"} <= set(with_plugin.registry("sensors").names())
    info = next(i for i in with_plugin.plugin_infos() if i.name == "sar")
    assert info.distribution == "earthmind-sar" and info.components["sensors"] == ["sentinel1", "sar"]
    without = PluginSystem(entry_points=[]).load()  # what an uninstalled plugin leaves
    assert "sentinel1" not in without.registry("sensors")
    monkeypatch.setenv("EARTHMIND_BLOCK_PLUGINS", "sar")
    assert "sentinel1" not in PluginSystem(entry_points=eps).load().registry("sensors")


def test_core_never_names_the_plugin():
    core = Path(__file__).resolve().parents[3] / "earthmind_sdk"
    offenders = [p for p in core.rglob("*.py") if "earthmind_sar" in p.read_text()]
    assert offenders == []


def test_per_polarisation_files_and_folders(tmp_path):
    raster = read_raster(S1)
    for k, pol in enumerate(("vv", "vh")):
        one = Raster(raster.data[k:k + 1], (pol.upper(),), raster.crs, raster.transform, 0.0, "x")
        write_raster(tmp_path / f"s1a-iw-grd-{pol}-20240101t000000-001.tiff", one)
    stacked = s1().read(tmp_path)
    assert stacked.band_names == ("VV", "VH") and stacked.crs == raster.crs
    np.testing.assert_array_equal(stacked.data, raster.data)
    np.testing.assert_array_equal(s1().load(tmp_path).frames.numpy(), s1().load(S1).frames.numpy())
    only_vh = s1().read({"vh": tmp_path / "s1a-iw-grd-vh-20240101t000000-001.tiff"})
    assert only_vh.band_names == ("VH",)
    with pytest.raises(RasterError, match="no per-polarisation files"):
        (tmp_path / "empty").mkdir()
        s1().read(tmp_path / "empty")
