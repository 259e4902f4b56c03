import shutil
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


def _single_band(src: Path, dst: Path, band: int) -> None:
    import rasterio

    with rasterio.open(src) as s:
        profile = dict(s.profile, count=1)
        with rasterio.open(dst, "w", **profile) as d:
            d.write(s.read(band), 1)
            d.set_band_description(1, s.descriptions[band - 1])
            d.update_tags(**s.tags())


def _untagged_copy(src: Path, dst: Path) -> None:
    """The bands and grid of ``src`` without its product metadata (no spacecraft tag)."""
    import rasterio

    with rasterio.open(src) as s:
        with rasterio.open(dst, "w", **s.profile) as d:
            d.write(s.read())
            for i, name in enumerate(s.descriptions, 1):
                d.set_band_description(i, name)


@pytest.fixture(scope="session")
def workspace(quickstart_run):
    """The scratch folder the documented examples run in: ``recipes/``, ``tests/``, the
    quickstart's ``out/quickstart`` and every input file the docs name, made from ``tests/data``.
    Optical inputs of a pair and their SAR overlap (the generated S1/S2 pair on one UTM grid)."""
    work, res = quickstart_run
    assert res.returncode == 0, res.stderr[-3000:]
    s1, s2, rgb = DATA / "sentinel1_synthetic_vv_vh.tif", DATA / "sentinel2_b02_b03_b04_b08.tif", DATA / "optical_rmnp_rgb.tif"
    for name in ("s2.tif", "s2_rgb.tif", "a.tif", "s2_b02_b03_b04_b08.tif"):
        shutil.copy(s2, work / name)
    for name in ("s1.tif", "s1_grd.tif", "a_sar.tif"):
        _single_band(s1, work / name, 1)
    shutil.copy(s1, work / "s1_vv_vh.tif")
    for name in ("scene.tif", "b.tif", "c.tif"):
        shutil.copy(rgb, work / name)
    _untagged_copy(DATA / "landsat8_oli_b2_b3_b4.tif", work / "stack.tif")
    (work / "tiles").mkdir()
    shutil.copy(rgb, work / "tiles" / "t1.tif")
    (work / "scenes.csv").write_text("image\nscene.tif\nb.tif\n")
    (work / "items.json").write_text(_stac_items(rgb))
    np.random.seed(0)
    return work


def _stac_items(href: Path) -> str:
    import json

    item = {"type": "Feature", "stac_version": "1.0.0", "id": "rmnp", "geometry": None,
            "properties": {"datetime": "2020-01-01T00:00:00Z"}, "links": [],
            "assets": {"visual": {"href": str(href), "type": "image/tiff; application=geotiff"}}}
    return json.dumps({"type": "FeatureCollection", "features": [item]})


@pytest.fixture(scope="session")
def seg_paired_checkpoint(workspace):
    """A tiny paired checkpoint taught to answer the README's segmentation sample with one
    ``[SEG]`` (the smoke-trained quickstart model is too short-trained to say it), so the README's
    Python example can be checked to print masks. Saved in the released layout."""
    import torch

    from earthmind_sdk.checkpoint import save
    from earthmind_sdk.contracts import Record, Sample
    from earthmind_sdk.jobs.open_model import open_model
    from earthmind_sdk.train.trainer import Trainer, TrainConfig

    torch.manual_seed(0)
    model, tok = open_model("tiny-paired")
    mask = np.zeros((48, 48), bool)  # the SAR grid (the primary sensor of a pair)
    mask[10:30, 15:40] = True
    sample = Sample(images={"sar": str(workspace / "s1.tif"), "optical": str(workspace / "s2.tif")}, prompt="",
                    task="referring_segmentation", task_args={"expression": "the flooded fields"})
    trainer = Trainer(model, tok, TrainConfig(steps=60, batch_size=1, lr=1e-2, warmup_ratio=0.0,
                                              weight_decay=0.0, freeze=(), num_points=256))
    history = trainer.fit([Record(sample, "Sure, [SEG].", [mask])])
    assert history[-1]["lm"] < 0.2 * history[0]["lm"]
    path = workspace / "seg-paired"
    save(model.eval(), path, tokenizer=tok)
    return path
