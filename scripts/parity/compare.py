"""Compare what theirs.py and ours.py wrote; print target / measured / pass; exit 1 on any fail.

    python compare.py WORK [--json OUT]

Needs only numpy and safetensors (either venv)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cases as C  # noqa: E402


def _load(path: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path)) if path.is_file() else {}


def _maxdiff(a, b, flat=False):
    if flat and a is not None and b is not None:
        a, b = a.reshape(-1), b.reshape(-1)
    if a is None or b is None:
        return None, "missing " + ("theirs" if a is None else "ours")
    if a.shape != b.shape:
        return None, f"shape theirs {tuple(a.shape)} vs ours {tuple(b.shape)}"
    if a.size == 0:
        return 0.0, "empty"
    d = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    return d, f"max|diff| {d:.3g} (max|ref| {float(np.max(np.abs(a))):.3g})"


def rows_for_case(name: str, th: dict, ou: dict) -> list[tuple]:
    rows = []

    def close(qty, key, tol, target=None, flat=False):
        d, txt = _maxdiff(th.get(key), ou.get(key), flat)
        ok = d is not None and d <= tol
        rows.append((name, qty, target or (f"max|diff| <= {tol:g}" if tol else "bit-equal"), txt, ok))
        return d

    def equal(qty, key, target="identical"):
        a, b = th.get(key), ou.get(key)
        if a is None or b is None:
            rows.append((name, qty, target, "missing " + ("theirs" if a is None else "ours"), False))
            return
        if a.shape != b.shape:
            rows.append((name, qty, target, f"shape theirs {a.shape} vs ours {b.shape}", False))
            return
        n = int(np.sum(a != b))
        first = int(np.argmax(a != b)) if n else -1
        txt = "identical" if n == 0 else f"{n}/{a.size} differ (first at {first})"
        rows.append((name, qty, target, txt, n == 0))

    equal("prompt token ids", "input_ids")
    close("tile pixel values", "pixel_values", 0.0)
    close("SAM2 input pixels", "sam_pixels", 0.0)
    close("image tokens (encoder+mlp1)", "image_tokens", C.TOL)
    qty = "fused tokens (HCA)" if name.startswith("v2") else (
        "placed tokens (tile-by-tile)" if "paired" in name else "placed image tokens")
    close(qty, "placed_image_embeds", C.TOL)
    close("logits, text after </img>", "text_logits", C.TOL)
    close("logits, generated steps", "step_logits", C.TOL)
    equal("greedy tokens", "greedy_tokens")
    close("[SEG] hidden state (diag.)", "seg_hidden", C.TOL)
    close("mask logits", "mask_logits", C.TOL)
    equal("masks", "masks")
    m = th.get("masks")
    if m is not None:
        frac = float(m.mean())
        rows.append((name, "mask positive fraction (theirs)", "1% .. 99%", f"{100 * frac:.1f}%",
                     0.01 <= frac <= 0.99))
    if "fusion_weight_optical" in th:
        close("HCA optical weight (diag.)", "fusion_weight_optical", C.TOL, flat=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    work = args.work
    rows = []
    for case in C.CASES:
        th = _load(work / "theirs" / f"{case['name']}.safetensors")
        ou = _load(work / "ours" / f"{case['name']}.safetensors")
        if not th or not ou:
            rows.append((case["name"], "(case ran)", "both sides ran", f"theirs {bool(th)}, ours {bool(ou)}", False))
            continue
        rows.extend(rows_for_case(case["name"], th, ou))
    # prompt placement without <image>: ours must lay it out as the authors' training data did
    bare = _load(work / "ours" / "bare_prompt.safetensors").get("input_ids")
    ref = _load(work / "theirs" / "v1_optical_1tile.safetensors").get("input_ids")
    if bare is not None and ref is not None:
        same = bare.shape == ref.shape and bool(np.all(bare == ref))
        rows.append(("v1_optical_1tile", "ids, question without <image>", "= theirs with '<image>\\n'+q",
                     "identical" if same else f"{bare.size} vs {ref.size} ids, differ", same))
    fus = work / "ours" / "fusion.json"
    if fus.is_file():
        for folder, r in json.loads(fus.read_text()).items():
            got = r.get("picked") or r.get("error", "none")
            ok = r.get("picked") == r["expected"]
            rows.append((f"load {folder}", "fusion picked, no hints", f"{r['expected']} ({r['version']})",
                         str(got)[:60], ok))
    for version, m in C.MODELS.items():
        rt = work / "theirs" / f"roundtrip_{version}.json"
        if not rt.is_file():
            continue
        r = json.loads(rt.read_text())
        if "error" in r:
            rows.append((f"save {m['folder']}", "their from_pretrained on our save", "loads", r["error"][:60], False))
            continue
        miss, unexp = r.get("missing_keys", []), r.get("unexpected_keys", [])
        rows.append((f"save {m['folder']}", "keys: our save vs their model", "none missing/unexpected",
                     f"{len(miss)} missing, {len(unexp)} unexpected" + (f" e.g. {(miss + unexp)[0]}" if miss + unexp else ""),
                     not miss and not unexp))
        rows.append((f"save {m['folder']}", "tensors after their load", f"= their save ({r['n_reference_tensors']})",
                     f"{r['n_differing']} differ" + (f" e.g. {r['tensors_differing_from_their_save'][0]}"
                                                     if r["n_differing"] else ""), r["n_differing"] == 0))
    w = [max(len(str(r[i])) for r in rows) for i in range(4)]
    head = ("case", "quantity", "target", "measured")
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)) + "  pass")
    for r in rows:
        print("  ".join(str(r[i]).ljust(w[i]) for i in range(4)) + ("  PASS" if r[4] else "  FAIL"))
    n_fail = sum(not r[4] for r in rows)
    print(f"\n{len(rows) - n_fail}/{len(rows)} checks pass")
    if args.json:
        args.json.write_text(json.dumps([dict(zip(head + ("pass",), r)) for r in rows], indent=1))
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
