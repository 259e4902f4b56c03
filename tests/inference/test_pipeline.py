from pathlib import Path

import numpy as np
import pytest
import torch

from earthmind_sdk.contracts import SensorImage
from earthmind_sdk.errors import EarthMindError
from earthmind_sdk.contracts import Sample
from earthmind_sdk.inference import Pipeline

OPTICAL = str(Path(__file__).resolve().parents[1] / "data" / "optical_rmnp_rgb.tif")


def frames(seed, h=56, w=56):
    g = torch.Generator().manual_seed(seed)
    return SensorImage(torch.rand(1, 3, h, w, generator=g), sensor="x")


def assert_batched_equals_single(pipe, samples):
    batched, mask = pipe.logits(samples)
    for b, s in enumerate(samples):
        single, _ = pipe.logits([s])
        n = single.shape[1]
        assert mask[b, -n:].all() and not mask[b, :-n].any()
        torch.testing.assert_close(batched[b, -n:], single[0], atol=1e-5, rtol=0)


def test_batched_logits_equal_single_optical(tiny):
    pipe = Pipeline(*tiny)
    samples = [
        Sample(images={"optical": OPTICAL}, prompt="Is there a lake?"),
        Sample(images={"optical": np.random.default_rng(0).random((3, 40, 90)).astype("float32")},
               prompt="Describe the image in detail, please.", task="captioning"),
        Sample(images={"optical": frames(2, 30, 30)}, prompt="How many roads?", history=[("Hi", "Hello")]),
    ]
    assert_batched_equals_single(pipe, samples)


def test_batched_logits_equal_single_paired_with_fusion(tiny_paired):
    pipe = Pipeline(*tiny_paired)
    samples = [Sample(images={"sar": frames(i), "optical": frames(10 + i)}, prompt=q)
               for i, q in enumerate(["Is there water?", "Classify the scene, with a long question here."])]
    assert_batched_equals_single(pipe, samples)


def test_generation_results_and_fusion_weights(tiny_paired):
    pipe = Pipeline(*tiny_paired)
    samples = [Sample(images={"sar": frames(i), "optical": frames(5 + i)}, prompt="Classify the scene.",
                      task="scene_classification", task_args={"labels": ["forest", "urban"]}, id=f"s{i}")
               for i in range(3)]
    results = pipe(samples, batch_size=2, max_new_tokens=4)
    assert [r.id for r in results] == ["s0", "s1", "s2"]
    for r in results:
        assert isinstance(r.answer, str) and r.parsed.kind == "label"
        assert set(r.fusion_weights) == {"sar", "optical"}
        n = pipe.model.tokens_per_tile
        assert r.fusion_weights["sar"].shape == (n,)
        assert np.allclose(r.fusion_weights["sar"] + r.fusion_weights["optical"], 1.0, atol=1e-5)
        assert {"encode", "generate", "masks"} <= set(r.timings)
        assert "Choose one of: forest, urban" in r.prompt


def test_chat_keeps_history(tiny):
    pipe = Pipeline(*tiny)
    s = Sample(images={"optical": frames(0)}, prompt="What is this?")
    first = pipe.chat(s, max_new_tokens=3)
    s.prompt = "And where?"
    second = pipe.chat(s, max_new_tokens=3)
    assert second.history[0] == ("What is this?", first.answer)
    assert "What is this?<|end|>\n<|assistant|>\n" + first.answer in second.prompt


def test_seg_tokens_give_one_mask_each_with_one_sam_pass(tiny, monkeypatch):
    pipe = Pipeline(*tiny)
    ids = pipe.ids
    tok = pipe.tokenizer
    answer0 = tok("It is [SEG] and [SEG].", add_special_tokens=False)["input_ids"]
    answer1 = tok("A small harbor.", add_special_tokens=False)["input_ids"]
    width = max(len(answer0), len(answer1))
    fake = torch.full((2, width), ids["pad"])
    fake[0, :len(answer0)] = torch.tensor(answer0)
    fake[1, :len(answer1)] = torch.tensor(answer1)
    monkeypatch.setattr(pipe.model.language_model, "generate", lambda **kw: fake)
    calls = []
    real_encode = pipe.model.grounding_encoder.encode
    monkeypatch.setattr(pipe.model.grounding_encoder, "encode", lambda x: calls.append(x.shape[0]) or real_encode(x))
    samples = [Sample(images={"optical": frames(3, 40, 52)}, prompt="Segment the ships.",
                      task="referring_segmentation"),
               Sample(images={"optical": frames(4)}, prompt="Anything?")]
    r0, r1 = pipe(samples)
    assert r0.answer == "It is [SEG] and [SEG]." and r0.parsed.value == 2
    assert len(r0.masks) == 2 and all(m.shape == (40, 52) and m.dtype == bool for m in r0.masks)
    assert len(r0.mask_scores) == 2
    assert r1.masks == [] and r1.parsed.value == "small harbor"
    assert calls == [1]  # one SAM2 image-encoder pass, for the one image that needs masks


def test_seg_hidden_state_is_where_seg_is_the_input(tiny, monkeypatch):
    """The [SEG] prompt comes from the last-layer state at the [SEG] position (also when it is last)."""
    pipe = Pipeline(*tiny)
    seg = pipe.ids["seg"]
    fake = torch.tensor([[seg]])
    monkeypatch.setattr(pipe.model.language_model, "generate", lambda **kw: fake)
    seen = []
    real = pipe.model.seg_prompts
    monkeypatch.setattr(pipe.model, "seg_prompts", lambda h: seen.append(h.clone()) or real(h))
    s = Sample(images={"optical": frames(1)}, prompt="Segment it.")
    res = pipe(s)
    assert len(res.masks) == 1
    batch = pipe.builder.build([s])
    emb = pipe.model.embed(torch.cat([batch.input_ids, fake], 1), batch.image_embeds)
    out = pipe.model.language_model(inputs_embeds=emb, output_hidden_states=True)
    torch.testing.assert_close(seen[0][0], out.hidden_states[-1][0, -1], atol=1e-5, rtol=0)


def test_bad_samples_are_named(tiny, tiny_paired):
    pipe = Pipeline(*tiny)
    with pytest.raises(EarthMindError, match="sample s9: sensor\\(s\\) 'sar' are not inputs of this model"):
        pipe(Sample(images={"sar": frames(0)}, prompt="?", id="s9"))
    with pytest.raises(EarthMindError, match="no image"):
        pipe(Sample(images={}, prompt="?"))
    paired = Pipeline(*tiny_paired)
    from earthmind_sdk.errors import AlignmentError

    with pytest.raises(AlignmentError):
        paired(Sample(images={"sar": np.ones((1, 30, 30), "float32"),
                              "optical": np.zeros((3, 40, 40), "float32")}, prompt="?"))


def test_region_prompts_from_mask_and_box(tiny):
    pipe = Pipeline(*tiny)
    mask = np.zeros((56, 56), bool)
    mask[:28, :28] = True
    s = Sample(images={"optical": frames(7)}, prompt="What is in region1 and region2?",
               task="region_captioning", regions=[mask, (28, 28, 56, 56)])
    batch = pipe.builder.build([s])
    text = batch.texts[0]
    assert "There are 2 part regions in the picture: region1<vp>" in text and "region2<vp>" in text
    n_ctx = int((batch.input_ids[0] == pipe.ids["img_context"]).sum())
    assert n_ctx == batch.image_embeds[0].shape[0] > pipe.model.tokens_per_tile  # image + region tokens
    logits, _ = pipe.logits([s])
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("raw, answer", [
    ("Right<|end|>\n<|user|>", "Right"),   # generation ran past the end of turn
    ("Right<|end", "Right"),               # max_new_tokens cut the stop word short
    ("Three<|", "Three"),
    ("Yes", "Yes"),
    ("a<b", "a<b"),                        # not a stop word's beginning: kept
])
def test_answers_lose_whole_and_cut_short_stop_words(raw, answer):
    from earthmind_sdk.inference.pipeline import _clean

    assert _clean(raw, ["<|end|>"]) == answer
