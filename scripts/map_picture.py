"""Draw the README picture of ``earthmind map`` over a real scene (tests/data/optical_rmnp_rgb.tif).

It runs the map job twice with the *tiny* model (random weights), once as a question (answer
grid) and once as a segmentation request (mask + objects), then draws, on the scene: the answer
cells read back from the GeoPackage and burned onto the raster grid, and the mask COG. What it
shows is that the layers land on the scene's grid, not what a trained model would find.

Run: ``python scripts/map_picture.py [OUT.png]`` (default docs/assets/map_example.png).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

SCENE = Path(__file__).resolve().parents[1] / "tests/data/optical_rmnp_rgb.tif"


def main(dest: Path) -> None:
    import pyogrio.raw
    import rasterio
    import shapely
    from PIL import Image, ImageDraw
    from rasterio.features import rasterize

    from earthmind_sdk.inference.map_job import map_scenes
    from earthmind_sdk.io import read_raster, render_rgb

    with tempfile.TemporaryDirectory() as tmp:
        kw = dict(model="tiny", window=48, overlap=12, max_new_tokens=4, progress=False)
        q = map_scenes("Is there a lake?", {"image": str(SCENE)}, f"{tmp}/q", **kw)
        s = map_scenes("Please segment the lake.", {"image": str(SCENE)}, f"{tmp}/s", probability=True, **kw)
        qrec = _record(q)
        srec = _record(s)
        raster = read_raster(SCENE)
        rgb = render_rgb(raster)
        t = rasterio.Affine(*raster.transform)
        _, _, geoms, _ = pyogrio.raw.read(qrec["files"]["cells_gpkg"])
        cells = shapely.from_wkb(geoms)
        edges = rasterize([(c.boundary, 1) for c in cells], out_shape=rgb.shape[:2], transform=t, all_touched=True)
        with rasterio.open(srec["files"]["mask"]) as m:
            assert m.transform == t and m.crs.to_string() == raster.crs  # same grid, bit for bit
            mask = m.read(1)
        with rasterio.open(srec["files"]["probability"]) as p:
            prob = np.nan_to_num(p.read(1))
    left = rgb.copy()
    left[edges.astype(bool)] = (255, 220, 0)
    right = (rgb * 0.5).astype(np.uint8)
    right[..., 0] = np.maximum(right[..., 0], (prob / max(prob.max(), 1e-6) * 255).astype(np.uint8))
    right[mask == 1] = (255, 40, 40)
    scale = 4
    tiles = [Image.fromarray(a).resize((a.shape[1] * scale, a.shape[0] * scale), Image.NEAREST) for a in (left, right)]
    w, h = tiles[0].size
    canvas = Image.new("RGB", (2 * w + 10, h + 28), "white")
    canvas.paste(tiles[0], (0, 28))
    canvas.paste(tiles[1], (w + 10, 28))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 6), f"answer grid: {len(cells)} cells (GeoPackage, burned back on the grid)", fill="black")
    draw.text((w + 14, 6), f"probability (red) + mask COG: {srec['objects']} objects", fill="black")
    dest.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(dest)
    print(f"wrote {dest}: {len(cells)} cells, {srec['objects']} objects, prob max {prob.max():.3f}")


def _record(summary) -> dict:
    from earthmind_sdk.jobs import read_jsonl

    return list(read_jsonl(summary["records"]))[-1]


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs/assets/map_example.png")
