"""Our side of the parity harness (run in the project venv; imports only earthmind_sdk).

    python ours.py prepare WORK     # tokenizer + 8-bit PNG inputs from tests/data
    python ours.py run WORK [--only CASE ...]
    python ours.py roundtrip WORK   # load each folder and write it back with earthmind_sdk.save

``run`` loads the checkpoints the authors' code saved (``WORK/ckpt``) with ``earthmind_sdk.load``
(no hints: fusion and sensors are decided from the folder's contents), answers each case with
our :class:`Pipeline` from the image files, and writes the same quantities as ``theirs.py`` to
``WORK/ours/<case>.safetensors`` + ``.json``. Capture points wrap methods of our model instance
(``encode_images``, ``embed``, ``language_model.generate``, ``seg_prompts``, ``decode_masks``)
and record inputs/outputs; the one intervention is the same forced ``[SEG]`` step as theirs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
import cases as C  # noqa: E402

DATA = REPO / "tests" / "data"


# -- prepare --------------------------------------------------------------------------------
def _stretch(band, lo_pct=2.0, hi_pct=98.0):
    import numpy as np

    valid = band[np.isfinite(band)]
    lo, hi = np.percentile(valid, [lo_pct, hi_pct])
    scaled = np.nan_to_num(np.clip((band - lo) / max(hi - lo, 1e-12), 0, 1), nan=0.0)  # nodata -> 0
    return (scaled * 255).round().astype("uint8")


def _write_png(arr, path: Path) -> None:
    from PIL import Image

    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(arr, mode="RGB").save(tmp)
    os.replace(tmp, path)


def prepare(work: Path) -> None:
    """8-bit 3-channel PNGs (the authors' input format) and the tokenizer, into WORK."""
    import numpy as np
    import tifffile
    from PIL import Image

    from earthmind_sdk.text.tokenizer import default_tokenizer

    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    rgb = np.array(Image.open(DATA / "optical_rmnp_rgb.png").convert("RGB"))  # 96 x 128
    _write_png(rgb, inputs / "optical_rmnp_rgb.png")
    _write_png(np.ascontiguousarray(rgb[:, 16:112]), inputs / "optical_sq96.png")
    s2 = tifffile.imread(DATA / "sentinel2_b02_b03_b04_b08.tif").astype("float64")  # 96 x 96 x 4
    s2rgb = np.stack([_stretch(s2[..., b]) for b in (2, 1, 0)], axis=-1)  # B04, B03, B02
    s1 = tifffile.imread(DATA / "sentinel1_synthetic_vv_vh.tif").astype("float64")  # 48 x 48 x 2
    vv = s1[..., 0]
    vv_db = np.where(vv > 0, 10 * np.log10(np.maximum(vv, 1e-12)), np.nan)
    gray = _stretch(vv_db)
    s1rgb = np.repeat(np.repeat(np.repeat(gray[..., None], 3, -1), 2, 0), 2, 1)  # 96 x 96, nearest x2
    _write_png(s2rgb, inputs / "s2_sq96.png")
    _write_png(np.ascontiguousarray(s1rgb), inputs / "s1_sq96.png")
    _write_png(np.ascontiguousarray(s2rgb[12:84]), inputs / "s2_96x72.png")
    _write_png(np.ascontiguousarray(s1rgb[12:84]), inputs / "s1_96x72.png")
    tok = default_tokenizer()
    tok.save_pretrained(str(work / "tokenizer"))
    print(f"[ours] prepared {sorted(p.name for p in inputs.glob('*.png'))} and tokenizer ({len(tok)} tokens)")


# -- run ------------------------------------------------------------------------------------
def fusion_of(model) -> str | None:
    """The fusion the loader chose, as the release would call it: "concat" for a plain tile-by-tile
    join (also an "mma" module with reweight off), "hca", or "<name>(args)" for anything else."""
    spec = getattr(model.spec, "fusion", None)
    if not spec:
        return None
    if not isinstance(spec, dict):
        return str(spec)
    name, args = spec.get("name"), dict(spec.get("args") or {})
    if name == "mma" and args.get("reweight") is False:
        return "concat"
    shown = {k: v for k, v in args.items() if k not in ("num_queries",)}
    return name + (f"({shown})" if name not in ("concat", "hca") and shown else "")


def fusion_report(work: Path) -> dict:
    """Load every folder without hints and record the fusion our loader picked."""
    import gc

    import earthmind_sdk

    out = {}
    for version, m in C.MODELS.items():
        for folder in [m["folder"], *m["aliases"]]:
            path = work / "ckpt" / folder
            if not path.is_dir():
                continue
            try:
                model, info = earthmind_sdk.load(path)
                out[folder] = {"version": version, "expected": m["fusion"], "picked": fusion_of(model),
                               "sensors": list(getattr(model.spec, "sensors", [])),
                               "notes": [str(n) for n in (info.get("notes") or [])][:10]}
                del model
            except Exception as exc:  # noqa: BLE001 - reported in the table
                out[folder] = {"version": version, "expected": m["fusion"], "picked": None,
                               "error": f"{type(exc).__name__}: {exc}"[:400]}
            gc.collect()
            print(f"[ours] load {folder}: {out[folder]}", flush=True)
    return out


def run_case(pipe, model, case: dict, inputs: Path, out_dir: Path, extra: dict) -> None:
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers import LogitsProcessorList

    from earthmind_sdk.contracts import Sample

    tok = pipe.tokenizer
    seg_id = tok.convert_tokens_to_ids("[SEG]")
    img_end_id = tok.convert_tokens_to_ids("</img>")
    ctx_id = tok.convert_tokens_to_ids("<IMG_CONTEXT>")

    r = C.Recorder()
    rec = r.rec
    rec["pix"], rec["tok"] = [], []

    def w_encode(orig):
        def f(pixel_values, *a, **kw):
            out = orig(pixel_values, *a, **kw)
            rec["pix"].append(pixel_values.detach().clone())
            rec["tok"].append(out.detach().clone())
            return out
        return f

    def w_embed(orig):
        def f(input_ids, image_embeds=None, *a, **kw):
            out = orig(input_ids, image_embeds, *a, **kw)
            rec.setdefault("embed_calls", []).append((input_ids.detach().clone(), out.detach().clone()))
            return out
        return f

    def w_gen(orig):
        def f(*a, **kw):
            kw["logits_processor"] = LogitsProcessorList([C.force_seg(seg_id)])
            kw["output_logits"] = True
            kw["return_dict_in_generate"] = True
            out = orig(*a, **kw)
            rec["step_logits"] = torch.stack([x[0] for x in out.logits]).detach().clone()
            rec["sequences"] = out.sequences[0].detach().clone()
            return out.sequences
        return f

    def w_seg(orig):
        def f(hidden, *a, **kw):
            out = orig(hidden, *a, **kw)
            rec["seg_hidden"], rec["seg_prompt"] = hidden.detach().clone(), out.detach().clone()
            return out
        return f

    def w_dec(orig):
        def f(sam_images, prompts, sizes, *a, **kw):
            out = orig(sam_images, prompts, sizes, *a, **kw)
            rec["sam_pixels"] = sam_images[0].detach().clone()
            rec["mask_logits"] = out[0].detach().clone()
            return out
        return f

    r.wrap(model, "encode_images", w_encode)
    r.wrap(model, "embed", w_embed)
    r.wrap(model.language_model, "generate", w_gen)
    r.wrap(model, "seg_prompts", w_seg)
    r.wrap(model, "decode_masks", w_dec)
    images = {s: str(inputs / f) for s, f in case["images"].items()}
    t0 = time.time()
    try:
        with torch.no_grad():
            res = pipe(Sample(images=images, prompt=C.QUESTION, task="vqa"), max_new_tokens=C.NEW_TOKENS)
    finally:
        r.restore()
    ids, emb = rec["embed_calls"][0]
    ids, emb = ids[0], emb[0]
    last_end = int((ids == img_end_id).nonzero().max()) + 1
    k_text = ids.numel() - last_end
    with torch.no_grad():
        lm = model.language_model
        out = lm(inputs_embeds=emb[None], attention_mask=torch.ones_like(ids)[None], logits_to_keep=k_text)
        text_logits = out.logits[0, -k_text:]
    t = {
        "pixel_values": torch.cat(rec["pix"]),
        "image_tokens": torch.cat(rec["tok"]),
        "placed_image_embeds": emb[ids == ctx_id],
        "input_ids": ids,
        "text_logits": text_logits,
        "step_logits": rec["step_logits"],
        "greedy_tokens": rec["sequences"],
    }
    for k in ("sam_pixels", "seg_hidden", "seg_prompt", "mask_logits"):
        if k in rec:
            t[k] = rec[k]
    if res.masks:
        t["masks"] = torch.from_numpy(np.stack(res.masks)).to(torch.uint8)
    for s, wgt in (res.fusion_weights or {}).items():
        t[f"fusion_weight_{s}"] = torch.as_tensor(np.asarray(wgt)).reshape(-1)
    arrays = {k: v.detach().float().contiguous().cpu().numpy() if v.is_floating_point() else v.contiguous().cpu().numpy()
              for k, v in t.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(out_dir / f"{case['name']}.safetensors.tmp"))
    os.replace(out_dir / f"{case['name']}.safetensors.tmp", out_dir / f"{case['name']}.safetensors")
    meta = {"prediction": res.answer, "k_text": k_text, "seconds": round(time.time() - t0, 1),
            "encode_calls": [int(p.shape[0]) for p in rec["pix"]], **extra}
    (out_dir / f"{case['name']}.json").write_text(json.dumps(meta, indent=1))
    print(f"[ours] {case['name']}: {ids.numel()} prompt ids, tiles {meta['encode_calls']}, "
          f"{len(res.masks)} mask(s), {meta['seconds']}s", flush=True)


def bare_prompt_ids(pipe, case: dict, inputs: Path):
    """Token ids our builder lays out for the question without ``<image>``."""
    from earthmind_sdk.contracts import Sample

    images = {s: str(inputs / f) for s, f in case["images"].items()}
    batch = pipe.builder.build([Sample(images=images, prompt=C.QUESTION_BARE, task="vqa")])
    return batch.input_ids[0][batch.attention_mask[0].bool()]


def run(work: Path, only) -> None:
    import gc

    import torch
    from safetensors.numpy import save_file

    import earthmind_sdk
    from earthmind_sdk.inference.pipeline import Pipeline
    from earthmind_sdk.text.tokenizer import load_tokenizer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    print(f"[ours] earthmind_sdk from {Path(earthmind_sdk.__file__).parent}", flush=True)
    out_dir = work / "ours"
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = [c for c in C.CASES if not only or c["name"] in only]
    if not only:
        (out_dir / "fusion.json").write_text(json.dumps(fusion_report(work), indent=1))
    for version, m in C.MODELS.items():
        todo = [c for c in wanted if c["model"] == version]
        if not todo:
            continue
        path = work / "ckpt" / m["folder"]
        model, info = earthmind_sdk.load(path)
        model.eval()
        pipe = Pipeline(model, load_tokenizer(path))
        for case in todo:
            extra = {"fusion": fusion_of(model)}
            run_case(pipe, model, case, work / "inputs", out_dir, extra)
            if case["name"] == "v1_optical_1tile":
                with torch.no_grad():
                    ids = bare_prompt_ids(pipe, case, work / "inputs")
                save_file({"input_ids": ids.cpu().numpy()}, str(out_dir / "bare_prompt.safetensors"))
        del model, pipe
        gc.collect()


def roundtrip(work: Path) -> None:
    """Each checkpoint the authors' code saved, loaded and saved again by us into
    ``WORK/ours_saved/<folder>`` (theirs.py --load-ours then loads it with their from_pretrained)."""
    import gc
    import shutil

    import earthmind_sdk
    from earthmind_sdk.text.tokenizer import load_tokenizer

    for version, m in C.MODELS.items():
        src = work / "ckpt" / m["folder"]
        dst = work / "ours_saved" / m["folder"]
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model, _info = earthmind_sdk.load(src)
        names = earthmind_sdk.save(model, tmp, tokenizer=load_tokenizer(src))
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
        print(f"[ours] saved {version} -> {dst} ({', '.join(names)})", flush=True)
        del model
        gc.collect()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=["prepare", "run", "roundtrip"])
    ap.add_argument("work", type=Path)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args(argv)
    work = args.work.resolve()
    if args.step == "prepare":
        prepare(work)
    elif args.step == "roundtrip":
        roundtrip(work)
    else:
        run(work, args.only)


if __name__ == "__main__":
    main()
