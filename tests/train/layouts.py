"""Tiny datasets in each published layout, written by the tests (nothing is downloaded).

Each writer returns the arguments of its registered dataset. Images are small PNGs / TIFFs of
random pixels; masks are simple shapes whose pixels the tests know.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from earthmind_sdk.train.formats.coco import rle_counts_to_string, rle_encode

SIZE = 32


def image(path: Path, seed: int, size: int = SIZE, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path)
    return path


def box_mask(y0: int, y1: int, x0: int, x1: int, size: int = SIZE) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[y0:y1, x0:x1] = True
    return m


def llava(root: Path, n: int = 3) -> dict:
    """Conversations: one multi-turn with <image> after the question, one single-turn without
    <image>, one referring segmentation with a mask file."""
    rows = []
    for i in range(n):
        image(root / "images" / f"s{i}.png", i)
        rows.append({"id": f"c{i}", "image": f"s{i}.png", "conversations": [
            {"from": "human", "value": f"What is in scene {i}?\n<image>"}, {"from": "gpt", "value": "A harbour."},
            {"from": "human", "value": "How many ships?"}, {"from": "gpt", "value": str(i + 1)}]})
    rows.append({"id": "plain", "image": "s0.png", "conversations": [
        {"from": "human", "value": "Describe the scene."}, {"from": "gpt", "value": "Fields and a road."}]})
    Image.fromarray(box_mask(4, 12, 4, 20).astype(np.uint8) * 255).save(root / "images" / "s0_road.png")
    rows.append({"id": "seg", "image": "s0.png", "masks": ["s0_road.png"], "conversations": [
        {"from": "human", "value": "<image>\nPlease segment the road."}, {"from": "gpt", "value": "Sure, [SEG]."}]})
    (root / "train.json").write_text(json.dumps(rows))
    return {"annotations": str(root / "train.json"), "image_dir": str(root / "images")}


RRSISD_MASKS = {  # ann id -> (mask, how it is stored)
    1: (box_mask(2, 10, 3, 15), "polygon"),
    2: (box_mask(16, 30, 0, 8), "rle"),
    3: (box_mask(5, 25, 20, 31), "compressed"),
}


def _segmentation(mask: np.ndarray, how: str):
    if how == "polygon":
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        return [[float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0), float(y1)]]
    rle = rle_encode(mask)
    if how == "compressed":
        rle = {"size": rle["size"], "counts": rle_counts_to_string(rle["counts"])}
    return [rle]  # RRSIS-D wraps one RLE in a list


def rrsisd(root: Path) -> dict:
    """RRSIS-D as RMSIN ships it: refs(unc).p + instances.json + images/rrsisd/JPEGImages."""
    images, anns, refs = [], [], []
    for k, (ann_id, (mask, how)) in enumerate(RRSISD_MASKS.items()):
        name = f"{ann_id:05d}.jpg"
        image(root / "images" / "rrsisd" / "JPEGImages" / name, ann_id)
        images.append({"id": 100 + ann_id, "file_name": name, "height": SIZE, "width": SIZE})
        anns.append({"id": ann_id, "image_id": 100 + ann_id, "segmentation": _segmentation(mask, how),
                     "category_id": 1, "iscrowd": 0})
        refs.append({"ref_id": ann_id, "ann_id": ann_id, "image_id": 100 + ann_id, "category_id": 1,
                     "split": "test" if ann_id == 3 else "train", "file_name": name,
                     "sentences": [{"raw": f"The object number {ann_id}", "sent": f"the object number {ann_id}",
                                    "tokens": ["the", "object"], "sent_id": 10 * ann_id},
                                   {"raw": "it", "sent": "it", "tokens": ["it"], "sent_id": 10 * ann_id + 1}]})
    (root / "rrsisd").mkdir(parents=True, exist_ok=True)
    (root / "rrsisd" / "instances.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                                "categories": [{"id": 1, "name": "thing"}]}))
    with open(root / "rrsisd" / "refs(unc).p", "wb") as fh:
        pickle.dump(refs, fh, protocol=2)  # RefCOCO's pickles are protocol 2 (Python 2 era)
    return {"root": str(root)}


def refsegrs(root: Path) -> dict:
    """RefSegRS: images/<id>.tif, masks/<id>.tif, output_phrase_<split>.txt ("<id> <phrase>")."""
    for ident in (0, 1, 2):
        image(root / "images" / f"{ident}.tif", ident)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(box_mask(ident, ident + 10, 2, 12).astype(np.uint8) * 255).save(root / "masks" / f"{ident}.tif")
    (root / "output_phrase_train.txt").write_text("0 paved road\n1 low vegetation\n")
    (root / "output_phrase_test.txt").write_text("2 the long white building\n")
    return {"root": str(root)}


def osprey(root: Path) -> dict:
    image(root / "images" / "o.png", 7)
    rle = rle_encode(box_mask(20, 30, 20, 30))
    rows = [{"id": "o1", "file_name": "o.png", "height": SIZE, "width": SIZE,
             "annotations": [{"segmentation": _segmentation(box_mask(0, 8, 0, 8), "polygon")},
                             {"segmentation": rle}],
             "conversations": [{"from": "human", "value": "<image>\nWhat is <region1>?"},
                               {"from": "gpt", "value": "A small roof."},
                               {"from": "human", "value": "And <region2> <mask><pos>?"},
                               {"from": "gpt", "value": "A pond."}]}]
    (root / "regions.json").write_text(json.dumps(rows))
    return {"annotations": str(root / "regions.json"), "image_dir": str(root / "images")}


def paired(root: Path, n: int = 2) -> dict:
    rows = []
    for i in range(n):
        image(root / "img" / "train" / "rgb" / "img" / f"p{i}.png", 20 + i)
        image(root / "img" / "train" / "sar" / "img" / f"p{i}.png", 40 + i, mode="L")
        rows.append({"id": f"p{i}", "image": f"p{i}.json", "conversations": [
            {"from": "human", "value": "<image>\nIs there water?"}, {"from": "gpt", "value": "Yes" if i else "No"}]})
    (root / "train.json").write_text(json.dumps(rows))
    return {"root": str(root), "annotations": "train.json"}


def global_batch() -> list:
    """8 generated records for the distributed checks: 3 with masks, 2 of them in the first
    half, so the two ranks' loss means carry unequal weights."""
    from earthmind_sdk.train.data import SyntheticScenes

    pool = list(SyntheticScenes(4, size=56, sensors=("optical",)))
    seg = [r for r in pool if r.masks][:3]
    plain = [r for r in pool if not r.masks][:5]
    assert len(seg) == 3 and len(plain) == 5
    return [seg[0], seg[1], plain[0], plain[1], seg[2], plain[2], plain[3], plain[4]]
