"""Sentinel-2: band naming, reflectance scaling, the authors' groupings, per-band files on the 10 m grid."""
import importlib.metadata as md
from pathlib import Path

import numpy as np
import pytest

from earthmind_sdk.contracts import Raster
from earthmind_sdk.errors import AlignmentError, RasterError
from earthmind_sdk.io import read_raster, write_mask, write_raster
from earthmind_sdk.plugins import PluginSystem, registry
from earthmind_sdk.sensors.pairs import load_pair
from earthmind_sdk.sensors.testing import check_image
from earthmind_multispectral.bands import S2_BANDS, S2_NAMES

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"
S2 = DATA / "sentinel2_b02_b03_b04_b08.tif"
S1 = DATA / "sentinel1_synthetic_vv_vh.tif"
TWELVE = tuple(n for n in S2_NAMES if n != "B10")


def s2(**kw):
    return registry("sensors").build("sentinel2", **kw)


def _pstretch(x, lo=2, hi=98):
    a, b = np.percentile(x, [lo, hi])
    return np.clip((x - a) / (b - a), 0, 1)


def _cube(names=TWELVE, h=12, w=10, seed=0):
    """DN stack where every band differs (band k around 1000 + 300 k)."""
    rng = np.random.default_rng(seed)
    return np.stack([1000 + 300 * k + rng.integers(0, 500, (h, w)) for k in range(len(names))]).astype(np.uint16)


def test_band_table():
    assert len(S2_BANDS) == 13
    res = {b.name: b.gsd_m for b in S2_BANDS}
    assert [n for n, r in res.items() if r == 10] == ["B02", "B03", "B04", "B08"]
    assert [n for n, r in res.items() if r == 60] == ["B01", "B09", "B10"]
    assert s2().band("B8A").wavelength_nm == pytest.approx(864.7)


def test_real_crop_true_colour_and_rgbn():
    raster = read_raster(S2)
    tc = s2(grouping="truecolor").load(S2)
    check_image(tc, raster)
    assert tc.frames.shape == (1, 3, 96, 96) and tc.composite == "truecolor:B04/B03/B02"
    np.testing.assert_allclose(tc.frames[0, 0].numpy(), _pstretch(raster.data[2].astype(float) / 1e4), atol=1e-6)
    rgbn = s2(grouping="rgbn").load(S2)
    assert rgbn.frames.shape == (2, 3, 96, 96)
    np.testing.assert_allclose(rgbn.frames[1, 0].numpy(), _pstretch(raster.data[3].astype(float)), atol=1e-6)
    assert rgbn.raster.crs == raster.crs and rgbn.raster.transform == raster.transform
    assert rgbn.raster.band_names == ("B02", "B03", "B04", "B08")


def test_real_crop_lacks_v2_bands_error_or_skip():
    with pytest.raises(RasterError) as e:
        s2(grouping="v2").load(S2)
    assert "B05, B06, B07" in str(e.value) and "sentinel2_b02_b03_b04_b08.tif" in str(e.value)
    skipped = s2(grouping="v2", missing="skip").load(S2)
    assert skipped.frames.shape[0] == 1 and skipped.raster.meta["frames"] == ["B04/B03/B02"]


def test_v1_triplets_clip_and_baseline_offset():
    dn = _cube()
    r = Raster(dn, TWELVE, source="l2a.tif")
    old = s2(grouping="v1").load(r)
    new = s2(grouping="v1", processing_baseline="04.00").load(r)
    assert old.frames.shape == new.frames.shape == (4, 3, 12, 10)
    assert new.raster.meta["s2_scaling"] == "(DN + -1000) / 10000"
    order = [b for g in s2(grouping="v1").groups for b in g]
    assert order == ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
    for f, group in enumerate(s2(grouping="v1").groups):
        for c, band in enumerate(group):
            x = dn[TWELVE.index(band)].astype(float)
            np.testing.assert_allclose(old.frames[f, c].numpy(), np.clip(x / 3000, 0, 1), atol=1e-6)
            np.testing.assert_allclose(new.frames[f, c].numpy(), np.clip((x - 1000) / 3000, 0, 1), atol=1e-6)


def test_baseline_from_file_tag(tmp_path):
    r = Raster(_cube(), TWELVE, crs="EPSG:32633", transform=(10.0, 0, 500000.0, 0, -10.0, 5000000.0))
    path = write_raster(tmp_path / "tagged.tif", r, tags={"PROCESSING_BASELINE": "05.09"})
    image = s2(grouping="v1").load(path)
    assert image.raster.meta["s2_offset_source"] == "PROCESSING_BASELINE tag"
    assert image.raster.meta["s2_scaling"] == "(DN + -1000) / 10000"


def test_v2_groups_and_stretch():
    dn = _cube(seed=1)
    image = s2().load(Raster(dn, TWELVE))  # v2 is the default
    assert image.composite.startswith("v2:B04/B03/B02,B05/B06/B07,B8A/B11/B12,B01/B09/B08")
    for f, group in enumerate(s2().groups):
        for c, band in enumerate(group):
            np.testing.assert_allclose(image.frames[f, c].numpy(), _pstretch(dn[TWELVE.index(band)].astype(float)),
                                       atol=1e-6)


@pytest.mark.parametrize("n, first, last", [(13, "B01", "B12"), (12, "B01", "B12"), (10, "B02", "B12"), (4, "B02", "B08")])
def test_unnamed_stacks_are_named_by_count(n, first, last):
    r = s2().read(np.ones((n, 3, 3), np.uint16))
    assert r.band_names[0] == first and r.band_names[-1] == last and len(r.band_names) == n


def test_unnamed_unknown_count_and_foreign_names_refused():
    with pytest.raises(RasterError, match="5 unnamed bands"):
        s2().read(np.ones((5, 3, 3), np.uint16))
    with pytest.raises(RasterError, match="VV"):
        s2().read(Raster(np.ones((2, 3, 3)), ("VV", "B04"), source="mixed.tif"))
    with pytest.raises(RasterError, match="unknown grouping"):
        s2(grouping="v3")


def test_band_name_normalisation_and_custom_groups():
    r = s2(groups=[["b8", "B4", "band3"]]).load(Raster(_cube(("B8", "B4", "B3")), ("B8", "b4", "B3")))
    assert r.raster.band_names == ("B08", "B04", "B03") and r.composite == "custom:B08/B04/B03"


def test_reflectance_float_input_kept():
    refl = (_cube().astype(np.float32) / 10000.0)
    image = s2(grouping="v1").load(Raster(refl, TWELVE))
    assert image.raster.meta["s2_scaling"] == "input already reflectance"
    np.testing.assert_allclose(image.frames[0, 0].numpy(), np.clip(refl[0] / 0.3, 0, 1), atol=1e-6)


def test_per_band_files_land_on_the_10m_grid(tmp_path):
    rng = np.random.default_rng(2)
    res = {b.name: b.gsd_m for b in S2_BANDS}
    expected = {}
    for name in TWELVE:
        size = {10.0: 60, 20.0: 30, 60.0: 10}[res[name]]
        px = res[name]
        data = (rng.integers(500, 4000, (1, size, size))).astype(np.uint16)
        expected[name] = np.kron(data[0], np.ones((int(px // 10),) * 2, dtype=np.uint16))
        r = Raster(data, (name,), crs="EPSG:32633", transform=(px, 0.0, 600000.0, 0.0, -px, 4000020.0))
        write_raster(tmp_path / f"T33XYZ_20240101T000000_{name}_{int(px)}m.tif", r)
    sensor = s2(resampling="nearest")
    raster = sensor.read(tmp_path)
    assert raster.shape == (12, 60, 60) and raster.band_names == TWELVE
    assert raster.transform == (10.0, 0.0, 600000.0, 0.0, -10.0, 4000020.0)
    for k, name in enumerate(TWELVE):
        np.testing.assert_array_equal(raster.data[k], expected[name])
    image = sensor.prepare(raster)
    assert image.frames.shape == (4, 3, 60, 60)
    by_map = sensor.read({"B04": tmp_path / "T33XYZ_20240101T000000_B04_10m.tif",
                          "B8A": tmp_path / "T33XYZ_20240101T000000_B8A_20m.tif"})
    assert by_map.band_names == ("B04", "B8A") and by_map.shape == (2, 60, 60)


def test_s1_s2_pair_on_the_sar_grid(tmp_path):
    sar, opt = load_pair(registry("sensors").build("sentinel1"), S1,
                         s2(grouping="rgbn"), S2)
    assert sar.frames.shape[-2:] == opt.frames.shape[-2:] == (48, 48)
    assert opt.raster.crs == sar.raster.crs and opt.raster.transform == sar.raster.transform
    check_image(opt)
    out = write_mask(opt.frames[1, 0] > 0.5, tmp_path / "veg", source=opt)  # NIR-bright on the SAR grid
    assert read_raster(out["mask"]).transform == read_raster(S1).transform


def test_misaligned_pair_is_refused():
    far = Raster(np.ones((4, 10, 10), np.uint16), ("B02", "B03", "B04", "B08"), "EPSG:32633",
                 (10.0, 0.0, 900000.0, 0.0, -10.0, 5000000.0), None, "elsewhere.tif")
    with pytest.raises(AlignmentError) as e:
        load_pair(registry("sensors").build("sentinel1"), S1, s2(grouping="truecolor"), far)
    assert "elsewhere.tif" in str(e.value) and "sentinel1_synthetic_vv_vh.tif" in str(e.value)


def test_registered_through_the_entry_point():
    eps = [ep for ep in md.entry_points(group="earthmind") if ep.name == "multispectral"]
    assert len(eps) == 1
    system = PluginSystem(entry_points=eps).load()
    assert {"sentinel2", "landsat8", "landsat9"} <= set(system.registry("sensors").names())
    assert "sentinel2" not in PluginSystem(entry_points=[]).load().registry("sensors")
