"""End to end: batched inference (batch 1 vs 16) and one LoRA training step of the whole model.

Inference times what a batch costs from prepared images to generated tokens: tiling, vision
encoder, fusion, embedding, then ``generate`` for a fixed number of new tokens with EOS ignored
(``min_new_tokens`` = ``max_new_tokens``), one tile per image (image side = the model's tile
size), greedy. Target (CUDA): batch 16 gives >= 4x the images per second of batch 1.
Models: on CPU the ``tiny`` spec laid out as EarthMind-4B (SAR + optical, v1 join); on CUDA
``earthmind-4b`` itself at its real sizes, random weights built on the meta device and then
materialised on the GPU in bf16. The SAM2 decoder is left out (``decoder: null``): masks are not
part of the timed path and the ``sam2`` package may be absent.
"""
import time

import pytest
import torch
from benchcore import CUDA, DEVICE, DEVICE_NAME, ROWS, sync, write_summary

from earthmind_sdk.contracts import SensorImage
from earthmind_sdk.contracts import Sample
from earthmind_sdk.inference import Pipeline
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec

SPEC = "earthmind-4b" if CUDA else "tiny"
NEW_TOKENS = 32 if CUDA else 8
BATCHES = (1, 16)
TRAIN_BATCH = 4
ROUNDS = 3


def _model(spec_name: str):
    raw = load_spec(spec_name).to_dict()
    base = load_spec("earthmind-4b").to_dict()
    raw.update(sensors=base["sensors"], segment_sensor=base["segment_sensor"], fusion=base["fusion"], decoder=None)
    if not CUDA:
        torch.manual_seed(0)
        return build_model(raw).eval()
    return materialised(raw, DEVICE, torch.bfloat16).eval()


def materialised(raw: dict, device, dtype):
    """Build on the meta device (no host memory, no init cost), then allocate on ``device`` and fill
    with random weights (norms 1, biases 0); non-persistent buffers (rotary frequencies) rebuilt."""
    import earthmind_sdk.model.graph  # noqa: F401  (module constants are computed before the meta device is on)

    with torch.device("meta"):
        m = build_model(raw)
    m = m.to_empty(device=device).to(dtype)
    m.language_model.tie_weights()  # to_empty gives tied weights (embeddings / lm_head) separate storage
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02, generator=g)
            else:
                p.fill_(1.0 if "norm" in name or name.endswith(("ls1", "ls2")) else 0.0)
        for parent in m.modules():
            for child_name, child in list(parent.named_children()):
                if child_name == "rotary_emb":
                    setattr(parent, child_name, type(child)(child.config).to(device))  # built on the CPU, then moved
    return m


@pytest.fixture(scope="module")
def pipe():
    from earthmind_sdk.text.tokenizer import default_tokenizer

    model = _model(SPEC)
    p = Pipeline(model, default_tokenizer())
    p.spec_name = SPEC
    p.params = sum(t.numel() for t in model.parameters())
    return p


def _samples(pipe, n, seed):
    size = int(pipe.model.spec.image["size"])  # one tile per image
    g = torch.Generator().manual_seed(seed)
    return [Sample(images={k: SensorImage(torch.rand(1, 3, size, size, generator=g), sensor=k)
                           for k in pipe.sensor_names}, prompt="What is in this image?") for _ in range(n)]


def _row(pipe, mode, provider, seconds, **extra):
    row = {"op": "e2e", "mode": mode, "provider": provider, "device": DEVICE_NAME,
           "case": f"{pipe.spec_name} ({pipe.params / 1e6:.1f}M params, {'+'.join(pipe.sensor_names)})",
           "dtype": str(next(pipe.model.parameters()).dtype), "seconds_min": seconds, **extra}
    ROWS.append(row)
    write_summary(final=False)
    print(f"\ne2e {mode:9s} {provider:8s} {row['case']}: {seconds * 1e3:.1f} ms "
          + " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()))
    return row


def _best(fn):
    fn()  # warm-up (compilation, caches)
    best = float("inf")
    for _ in range(ROUNDS):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def test_batched_inference_images_per_second(pipe):
    ids = pipe.ids
    per_batch = {}
    for bs in BATCHES:
        samples = _samples(pipe, bs, seed=bs)

        def run():
            batch = pipe.builder.build(samples)
            embeds = pipe.model.embed(batch.input_ids, batch.image_embeds)
            out = pipe.model.language_model.generate(
                inputs_embeds=embeds, attention_mask=batch.attention_mask, max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=ids["eos"], pad_token_id=ids["pad"])
            assert out.shape == (bs, NEW_TOKENS), f"generated {tuple(out.shape)}, expected ({bs}, {NEW_TOKENS})"

        t = _best(run)
        per_batch[bs] = bs / t
        extra = {"batch": bs, "new_tokens": NEW_TOKENS, "images_per_second": bs / t}
        if bs != BATCHES[0]:
            extra["speedup_vs_batch1"] = per_batch[bs] / per_batch[BATCHES[0]]
        _row(pipe, "inference", f"batch{bs}", t, **extra)
    assert per_batch[BATCHES[-1]] > 0


def test_lora_training_step(pipe):
    pytest.importorskip("peft", reason="LoRA needs peft")
    from earthmind_sdk.train.trainer import apply_lora

    model = pipe.model
    apply_lora(model, {"r": 16, "alpha": 32, "dropout": 0.0})
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    samples = _samples(pipe, TRAIN_BATCH, seed=7)
    answers = ["A field next to a river."] * TRAIN_BATCH
    model.train()

    def step():
        batch = pipe.builder.build(samples, answers)
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, image_embeds=batch.image_embeds,
                    position_ids=batch.position_ids, labels=batch.labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        assert torch.isfinite(out.loss)

    if CUDA:
        torch.cuda.reset_peak_memory_stats()
    t = _best(step)
    extra = {"batch": TRAIN_BATCH, "trainable_params": sum(p.numel() for p in params),
             "samples_per_second": TRAIN_BATCH / t}
    if CUDA:
        extra["peak_bytes"] = torch.cuda.max_memory_allocated()
    _row(pipe, "train", "lora", t, **extra)
    model.eval()
