"""The authors' side of the parity harness (run in the separate parity venv, transformers 4.42.3).

    python theirs.py --v1 CHECKOUT_V1 --v2 CHECKOUT_V2 WORK [--only CASE ...] [--no-build]

1. copies the authors' HF modeling folder (``projects/llava_sam2/hf/models``) of each checkout to
   ``WORK/code/em_v1`` / ``em_v2`` with ``.cuda()`` calls replaced (the checkout is untouched;
   nothing of theirs is copied anywhere else);
2. builds a tiny model with their ``Sa2VAChatModel`` in the published layout (small InternViT,
   2-layer Qwen2 LLM of hidden 2048, the full SAM2 Hiera-L, the real Qwen vocabulary from
   ``WORK/tokenizer``) and saves it as their convert step does (``save_pretrained`` + tokenizer +
   their .py files) to ``WORK/ckpt/<folder>``;
3. runs their ``predict_forward`` / ``predict_forward_multi`` on each case and writes what their
   code computed to ``WORK/theirs/<case>.safetensors`` + ``.json``.

Capture points only wrap their methods on the instance (inputs and outputs are recorded, nothing
is changed); the one intervention is a logits processor that forces ``[SEG]`` at step
``FORCE_SEG_STEP``, applied identically on our side.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cases as C  # noqa: E402

MODELS_SUBDIR = Path("projects/llava_sam2/hf/models")
CUDA_EDITS = [(".cuda(non_blocking=True)", ""), (".cuda()", ""),
              ('torch.device("cuda")', 'torch.device("cpu")')]


def find_models_dir(checkout: Path) -> Path:
    for cand in (checkout / MODELS_SUBDIR, checkout / "EarthMind" / MODELS_SUBDIR):
        if (cand / "modeling_earthmind_chat.py").is_file():
            return cand
    sys.exit(f"{checkout}: no {MODELS_SUBDIR}/modeling_earthmind_chat.py (nor under EarthMind/)")


def scratch_copy(src: Path, dst: Path) -> None:
    """Their .py files into a scratch package, .cuda() replaced there only."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in sorted(src.glob("*.py")):
        text = f.read_text()
        for a, b in CUDA_EDITS:
            text = text.replace(a, b)
        (tmp / f.name).write_text(text)
    (tmp / "__init__.py").write_text("")
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)


def tiny_config(mod_cfg, vocab_size: int):
    vision = dict(architectures=["InternVisionModel"], model_type="intern_vit_6b", hidden_size=64,
                  num_attention_heads=2, intermediate_size=128, num_hidden_layers=2, image_size=448,
                  patch_size=14, qkv_bias=True, qk_normalization=False, norm_type="layer_norm",
                  layer_norm_eps=1e-6, hidden_act="gelu", drop_path_rate=0.0, initializer_factor=1.0,
                  initializer_range=0.02, use_flash_attn=False, num_channels=3)
    llm = dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=2048,
               intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
               vocab_size=vocab_size, max_position_embeddings=32768, rope_theta=1000000.0,
               rms_norm_eps=1e-6, tie_word_embeddings=False, hidden_act="silu", bos_token_id=151643,
               eos_token_id=151645, use_sliding_window=False, sliding_window=32768, max_window_layers=2,
               attention_dropout=0.0, initializer_range=0.02, torch_dtype="float32")
    return mod_cfg.Sa2VAChatConfig(
        vision_config=vision, llm_config=llm, template="phi3_chat", downsample_ratio=0.5,
        force_image_size=448, ps_version="v2", select_layer=-1, dynamic_image_size=True,
        use_thumbnail=True, min_dynamic_patch=1, max_dynamic_patch=12, pad2square=False,
        use_backbone_lora=0, use_llm_lora=0, architectures=["Sa2VAChatModel"],
        auto_map={"AutoConfig": "configuration_earthmind_chat.Sa2VAChatConfig",
                  "AutoModel": "modeling_earthmind_chat.Sa2VAChatModel",
                  "AutoModelForCausalLM": "modeling_earthmind_chat.Sa2VAChatModel"},
        torch_dtype="float32")


def build(version: str, pkg: str, work: Path, tok):
    """Their model, built and saved in the published layout; returns it (fp32, eval)."""
    import torch

    cfg_mod = importlib.import_module(f"{pkg}.configuration_earthmind_chat")
    mdl_mod = importlib.import_module(f"{pkg}.modeling_earthmind_chat")
    config = tiny_config(cfg_mod, len(tok))
    torch.manual_seed(C.SEEDS[version])
    t0 = time.time()
    model = mdl_mod.Sa2VAChatModel(config).float().eval()
    folder = work / "ckpt" / C.MODELS[version]["folder"]
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    for f in (work / "code" / pkg).glob("*.py"):  # as their convert step: cp models/* save_path
        if f.name != "__init__.py":
            shutil.copy(f, tmp / f.name)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    for alias in C.MODELS[version]["aliases"]:  # same files, another neutral name (hard links)
        dst = work / "ckpt" / alias
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir()
        for f in folder.iterdir():
            os.link(f, dst / f.name)
    keys = sorted(model.state_dict().keys())
    (work / "ckpt" / f"{version}_state_dict_keys.json").write_text(json.dumps(keys, indent=0))
    print(f"[theirs] built+saved {version} -> {folder} ({len(keys)} state-dict keys, {time.time() - t0:.0f}s)",
          flush=True)
    return model


def run_case(model, tok, case: dict, inputs: Path, out_dir: Path) -> None:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from safetensors.numpy import save_file
    from transformers import LogitsProcessorList

    seg_id = tok.convert_tokens_to_ids("[SEG]")
    img_end_id = tok.convert_tokens_to_ids("</img>")
    ctx_id = tok.convert_tokens_to_ids("<IMG_CONTEXT>")

    r = C.Recorder()
    rec = r.rec
    rec["pix"], rec["tok"] = [], []

    def w_extract(orig):
        def f(pixel_values):
            out = orig(pixel_values)
            rec["pix"].append(pixel_values.detach().clone())
            rec["tok"].append(out.detach().clone())
            return out
        return f

    def w_gen(orig):
        def f(*a, **kw):
            rec["input_ids"] = kw["input_ids"].detach().clone()
            return orig(*a, **kw)
        return f

    def w_lm_gen(orig):
        def f(*a, **kw):
            emb = kw["inputs_embeds"]
            rec["inputs_embeds"] = emb.detach().clone()
            kw["logits_processor"] = LogitsProcessorList([C.force_seg(seg_id)])
            kw["output_logits"] = True
            out = orig(*a, **kw)
            rec["step_logits"] = torch.stack([x[0] for x in out.logits]).detach().clone()
            rec["sequences"] = out.sequences[0].detach().clone()
            rec["prompt_hidden"] = out.hidden_states[0][-1][0].detach().clone()
            return out
        return f

    def w_sam_emb(orig):
        def f(images):
            rec.setdefault("sam_pixels", images.detach().clone())
            return orig(images)
        return f

    def w_lang(orig):
        def f(state, embd):
            out = orig(state, embd)
            rec.setdefault("mask_lowres", []).append(out.detach().clone())
            return out
        return f

    r.wrap(model, "extract_feature", w_extract)
    r.wrap(model, "generate", w_gen)
    r.wrap(model, "generate_multi", w_gen)
    r.wrap(model.language_model, "generate", w_lm_gen)
    r.wrap(model.grounding_encoder, "get_sam2_embeddings", w_sam_emb)
    r.wrap(model.grounding_encoder, "language_embd_inference", w_lang)
    hook = model.text_hidden_fcs.register_forward_hook(
        lambda m, i, o: rec.update(seg_hidden=i[0].detach().clone(), seg_prompt=o.detach().clone()))
    imgs = {k: Image.open(inputs / v).convert("RGB") for k, v in case["images"].items()}
    t0 = time.time()
    try:
        with torch.no_grad():
            if "sar" in imgs:
                res = model.predict_forward_multi(image=imgs["sar"], rgb_image=imgs["optical"],
                                                  text=C.QUESTION, tokenizer=tok)
            else:
                res = model.predict_forward(image=imgs["optical"], text=C.QUESTION, tokenizer=tok)
    finally:
        hook.remove()
        r.restore()
    ids = rec["input_ids"].reshape(-1)
    last_end = int((ids == img_end_id).nonzero().max()) + 1
    k_text = ids.numel() - last_end
    with torch.no_grad():
        text_logits = model.language_model.lm_head(rec["prompt_hidden"][-k_text:])
    selected = (ids == ctx_id)
    primary = imgs["sar"] if "sar" in imgs else imgs["optical"]
    w, h = primary.size
    mask_logits = [F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
                   for m in rec.get("mask_lowres", [])]
    t = {
        "pixel_values": torch.cat(rec["pix"]),
        "image_tokens": torch.cat(rec["tok"]),
        "placed_image_embeds": rec["inputs_embeds"][0][selected],
        "input_ids": ids,
        "text_logits": text_logits,
        "step_logits": rec["step_logits"],
        "greedy_tokens": rec["sequences"],
        "sam_pixels": rec["sam_pixels"][0],
    }
    if "seg_hidden" in rec:
        t["seg_hidden"], t["seg_prompt"] = rec["seg_hidden"], rec["seg_prompt"]
    if mask_logits:
        t["mask_logits"] = torch.cat(mask_logits)
        t["masks"] = torch.from_numpy(np.concatenate(res["prediction_masks"])).to(torch.uint8)
    if "vis_weight" in res:
        t["fusion_weight_optical"], t["fusion_weight_sar"] = (x[..., 0] for x in res["vis_weight"])
    arrays = {k: v.detach().float().contiguous().numpy() if v.is_floating_point() else v.contiguous().numpy()
              for k, v in t.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(out_dir / f"{case['name']}.safetensors.tmp"))
    os.replace(out_dir / f"{case['name']}.safetensors.tmp", out_dir / f"{case['name']}.safetensors")
    meta = {"prediction": res["prediction"], "n_tiles_per_sensor": [int(p.shape[0]) for p in rec["pix"]],
            "k_text": k_text, "seconds": round(time.time() - t0, 1)}
    (out_dir / f"{case['name']}.json").write_text(json.dumps(meta, indent=1))
    print(f"[theirs] {case['name']}: tiles {meta['n_tiles_per_sensor']}, {ids.numel()} prompt ids, "
          f"{len(mask_logits)} mask(s), {meta['seconds']}s", flush=True)


def load_tokenizer(folder: Path):
    """The tokenizer ours.py wrote (tokenizer.json + special tokens), as a 4.42 fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    specials = {k: cfg[k] for k in ("eos_token", "pad_token", "bos_token", "unk_token") if cfg.get(k)}
    data = json.loads((folder / "tokenizer.json").read_text())
    merges = data["model"].get("merges") or []
    if merges and isinstance(merges[0], list):  # tokenizers >= 0.20 writes pairs; 0.19 reads "a b"
        data["model"]["merges"] = [" ".join(m) for m in merges]
    data["model"].pop("ignore_merges", None)
    legacy = folder.with_name(folder.name + "_legacy.json")
    legacy.write_text(json.dumps(data, ensure_ascii=False))
    return PreTrainedTokenizerFast(tokenizer_file=str(legacy), clean_up_tokenization_spaces=False, **specials)


def load_ours(version: str, pkg: str, work: Path) -> None:
    """Their from_pretrained on the folder our save wrote: missing / unexpected keys, and every
    tensor against the checkpoint their own save wrote."""
    import torch
    from safetensors.torch import load_file

    mdl_mod = importlib.import_module(f"{pkg}.modeling_earthmind_chat")
    folder = C.MODELS[version]["folder"]
    ours_dir = work / "ours_saved" / folder
    if not (ours_dir / "config.json").is_file():
        print(f"[theirs] no {ours_dir}; run ours.py roundtrip first", flush=True)
        return
    report = {"folder": str(ours_dir)}
    try:
        model, info = mdl_mod.Sa2VAChatModel.from_pretrained(str(ours_dir), torch_dtype=torch.float32,
                                                             output_loading_info=True)
        report.update({k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys",
                                                                       "mismatched_keys")})
        ref = {}
        for f in sorted((work / "ckpt" / folder).glob("*.safetensors")):
            ref.update(load_file(str(f)))
        state = model.state_dict()
        diff = [k for k, v in ref.items() if k not in state or state[k].shape != v.shape
                or not torch.equal(state[k].float(), v.float())]
        report["tensors_differing_from_their_save"] = diff[:50]
        report["n_differing"] = len(diff)
        report["n_reference_tensors"] = len(ref)
        del model
    except Exception as exc:  # noqa: BLE001 - reported in the table
        report["error"] = f"{type(exc).__name__}: {exc}"[:600]
    out = work / "theirs" / f"roundtrip_{version}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"[theirs] their from_pretrained on our save ({version}): "
          f"{ {k: (len(v) if isinstance(v, list) else v) for k, v in report.items()} }", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--v1", type=Path, required=True, help="checkout of shuyansy/EarthMind")
    ap.add_argument("--v2", type=Path, required=True, help="checkout of shuyansy/Earth-Observation-VLMs")
    ap.add_argument("work", type=Path)
    ap.add_argument("--only", nargs="*", help="case names (default: all)")
    ap.add_argument("--no-build", action="store_true", help="reuse WORK/ckpt (load it with their from_pretrained)")
    ap.add_argument("--load-ours", action="store_true", help="only: their from_pretrained on WORK/ours_saved")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    work = args.work.resolve()
    (work / "code").mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(work / "code"))
    tok = load_tokenizer(work / "tokenizer")
    wanted = [c for c in C.CASES if not args.only or c["name"] in args.only]
    for version, checkout in (("v1", args.v1), ("v2", args.v2)):
        todo = [c for c in wanted if c["model"] == version]
        pkg = f"em_{version}"
        if args.load_ours:
            scratch_copy(find_models_dir(checkout.resolve()), work / "code" / pkg)
            load_ours(version, pkg, work)
            continue
        if not todo:
            continue
        scratch_copy(find_models_dir(checkout.resolve()), work / "code" / pkg)
        if args.no_build:
            mdl_mod = importlib.import_module(f"{pkg}.modeling_earthmind_chat")
            model = mdl_mod.Sa2VAChatModel.from_pretrained(str(work / "ckpt" / C.MODELS[version]["folder"]),
                                                           torch_dtype=torch.float32).eval()
        else:
            model = build(version, pkg, work, tok)
        model.preparing_for_generation(tok, max_new_tokens=C.NEW_TOKENS, torch_dtype=torch.float32)
        for case in todo:
            run_case(model, tok, case, work / "inputs", work / "theirs")
        del model


if __name__ == "__main__":
    main()
