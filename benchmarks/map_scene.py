"""``earthmind map`` at scene scale, with the tiny model (random weights: speed and memory, not quality).

1. Peak memory vs scene size: a 2,000 x 2,000 and an 8,000 x 8,000 scene, each mapped by a
   fresh process; ``ru_maxrss`` of that process is its peak resident memory. Target: within 10 %.
   Windows of 1,024 px in batches of 4, so that the small scene's 2 x 2 windows are one full
   batch, as every batch of the large scene is (a part batch would flatter the small scene).
2. Windows per second with windows batched (``--batch-size 8``) vs one window at a time, both
   measured in the same process on the same scene.

Run: ``python benchmarks/map_scene.py [--sizes 2000 8000] [--work DIR]``; prints a JSON summary
(recorded in ``benchmarks/RESULTS.md``). Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

WINDOW, OVERLAP, TOKENS, BATCH = 1024, 128, 4, 4


def make_scene(path: Path, size: int) -> None:
    """A 3-band uint8 UTM GeoTIFF written block by block (never whole in memory)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(0)
    prof = dict(driver="GTiff", height=size, width=size, count=3, dtype="uint8", crs="EPSG:32633",
                transform=from_origin(500000, 5000000, 10, 10), tiled=True, blockxsize=512, blockysize=512,
                compress="deflate", nodata=0)
    with rasterio.open(path, "w", **prof) as dst:
        for r0 in range(0, size, 512):
            for c0 in range(0, size, 512):
                h, w = min(512, size - r0), min(512, size - c0)
                rows, cols = np.mgrid[r0:r0 + h, c0:c0 + w]
                base = (np.sin(rows / 97.0) + np.cos(cols / 61.0)) * 60 + 128
                block = np.stack([base, base[::-1], base[:, ::-1]]) + rng.normal(0, 8, (3, h, w))
                dst.write(np.clip(block, 1, 255).astype(np.uint8), window=Window(c0, r0, w, h))


def run_map(scene: Path, out: Path, batch_size: int) -> dict:
    from earthmind_sdk.inference.map_job import map_scenes
    from earthmind_sdk.jobs import read_jsonl

    t0 = time.perf_counter()
    summary = map_scenes("Please segment the flooded fields.", {"image": str(scene)}, str(out), model="tiny",
                         window=WINDOW, overlap=OVERLAP, batch_size=batch_size, max_new_tokens=TOKENS,
                         progress=False)
    rec = list(read_jsonl(summary["records"]))[-1]
    return {"seconds": time.perf_counter() - t0, "windows": rec["windows"], "status": rec["status"]}


def child(args) -> None:
    if args.child == "make":
        make_scene(Path(args.scene), args.size)
        return
    if args.child == "map":
        res = run_map(Path(args.scene), Path(args.out), args.batch_size)
    else:  # "rate": batched vs one at a time, same process, same scene, smaller windows
        import torch

        from earthmind_sdk.inference.cli import open_pipeline
        from earthmind_sdk.inference.map import ModelPredictor, map_windows

        torch.set_num_threads(max(1, os.cpu_count() or 1))
        pipe = open_pipeline("tiny")
        res = {}
        for bs in (1, 8, 1, 8):  # interleaved, best of two each, so a busy moment does not pick the winner
            pred = ModelPredictor(pipe, "Please segment the flooded fields.", "referring_segmentation",
                                  max_new_tokens=TOKENS, batch_size=bs)
            t0 = time.perf_counter()
            r = map_windows({"optical": args.scene}, pred, Path(args.out) / f"bs{bs}-{time.time_ns()}",
                            primary="optical", stem="s", window=224, overlap=32, batch_size=bs, progress=False)
            rate = r.windows / (time.perf_counter() - t0)
            res[f"windows_per_s_batch{bs}"] = max(rate, res.get(f"windows_per_s_batch{bs}", 0.0))
            res["windows"] = r.windows
        res["speedup"] = res["windows_per_s_batch8"] / res["windows_per_s_batch1"]
    res["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def _sub(*extra: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *extra], capture_output=True, text=True, check=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    ap.add_argument("--work", default="/tmp/earthmind-map-bench")
    ap.add_argument("--child", choices=("make", "map", "rate"))
    ap.add_argument("--scene")
    ap.add_argument("--out")
    ap.add_argument("--size", type=int)
    ap.add_argument("--batch-size", type=int, default=BATCH)
    args = ap.parse_args()
    if args.child:
        return child(args)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        scene = work / f"scene{size}.tif"
        if not scene.exists():
            _sub("--child", "make", "--scene", str(scene), "--size", str(size))
        res = _sub("--child", "map", "--scene", str(scene), "--out", str(work / f"out{size}-{time.time_ns()}"))
        rows.append({"size": size, **res})
        print(json.dumps(rows[-1]), file=sys.stderr)
    rate_scene = work / "scene640.tif"
    if not rate_scene.exists():
        _sub("--child", "make", "--scene", str(rate_scene), "--size", "640")
    rate = _sub("--child", "rate", "--scene", str(rate_scene), "--out", str(work / "rate"))
    peaks = [r["maxrss_mb"] for r in rows]
    print(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores", "window": WINDOW,
                      "overlap": OVERLAP, "batch_size": BATCH, "max_new_tokens": TOKENS, "memory": rows,
                      "peak_ratio_max_over_min": max(peaks) / min(peaks), "rate_640px_window224": rate}, indent=2))


if __name__ == "__main__":
    main()
