"""Token pruning (fusion ``keep_ratio`` < 1) reaches what reads tokens by grid position: region
prompts take the tokens of their cells that were kept (a region with none is refused), and the
SAP target is gathered at the kept tokens and sums to 1 over them."""
import numpy as np
import pytest
import torch

from earthmind_sdk.contracts import Sample, SensorImage
from earthmind_sdk.errors import EarthMindError
from earthmind_sdk.model.fusion import dispatch
from earthmind_sdk.model.fusion.sap import sap_target_for_tokens
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec
from earthmind_sdk.text.tokenizer import default_tokenizer
from earthmind_sdk.train.data import SyntheticScenes
from earthmind_sdk.train.trainer import Trainer, TrainConfig


def pruned_model(fusion: str, keep_ratio: float = 0.5):
    raw = load_spec("tiny-paired").to_dict()
    raw["fusion"] = {"name": fusion, "args": {"keep_ratio": keep_ratio}}
    torch.manual_seed(5)
    return build_model(raw).eval()


def frames(seed, size=112):
    g = torch.Generator().manual_seed(seed)
    return SensorImage(torch.rand(1, 3, size, size, generator=g), sensor="x")


def unpruned_whole_tile(builder, sample, fusion):
    """The fused tokens of the primary sensor's whole-image tile with pruning switched off."""
    prepared = [builder.prepare(sample, 0)]
    counts = [builder.region_counts(sample, prepared[0])]
    texts = builder.question_embeds([sample], [builder.question(sample)], counts)
    keep, fusion.keep_ratio = fusion.keep_ratio, 1.0
    try:
        enc = builder.encode(prepared, texts)[0]
        enc.materialize()
        start, stop = builder.whole_image_span(enc)
        return enc.embeds[start:stop], start
    finally:
        fusion.keep_ratio = keep


@pytest.mark.parametrize("fusion", ["mma", "hca"])
def test_region_prompts_take_the_kept_tokens_of_their_cells(fusion):
    from earthmind_sdk.model.batching import BatchBuilder

    model = pruned_model(fusion)
    builder = BatchBuilder(model, default_tokenizer())
    whole = np.ones((112, 112), bool)
    left = np.zeros((112, 112), bool)
    left[:, :56] = True
    s = Sample(images={"sar": frames(1), "optical": frames(2)}, prompt="What is region1?",
               task="region_captioning", regions=[whole, left])
    with torch.no_grad():
        batch = builder.build([s])
        full, start = unpruned_whole_tile(builder, s, model.fusion)
    enc = batch.encoded[0]
    source = enc.fusion.source_index[0]
    n_kept = source.shape[0]
    assert n_kept == enc.fusion.full_length // 2  # keep_ratio 0.5 really pruned
    kept_cells = [c for c in range(16) if start + c in source.tolist()]
    assert 0 < len(kept_cells) < 16  # some cells of the whole-image tile were pruned
    want_whole = full[kept_cells]
    want_left = full[[c for c in kept_cells if c % 4 < 2]]
    got = enc.embeds[n_kept:]
    assert got.shape[0] == len(want_whole) + len(want_left)
    torch.testing.assert_close(got, torch.cat([want_whole, want_left]), atol=1e-6, rtol=0)
    text = batch.texts[0]
    assert f"region1<vp>{'<IMG_CONTEXT>' * len(want_whole)}</vp>" in text


def test_a_region_whose_tokens_were_all_pruned_is_refused():
    from earthmind_sdk.model.batching import BatchBuilder

    model = pruned_model("mma")  # the pruning does not depend on the question
    builder = BatchBuilder(model, default_tokenizer())
    s = Sample(images={"sar": frames(3), "optical": frames(4)}, prompt="q")
    with torch.no_grad():
        source = builder.build([s]).encoded[0].fusion.source_index[0].tolist()
    gone = next(c for c in range(16) if c not in source)  # SAR whole-tile cells sit at 0..15
    cell = np.zeros((112, 112), bool)
    r, c = divmod(gone, 4)
    cell[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28] = True
    s = Sample(images={"sar": frames(3), "optical": frames(4)}, prompt="What is region1?",
               task="region_captioning", regions=[cell], id="p1")
    with pytest.raises(EarthMindError, match=r"sample p1: region 0: token pruning kept none of the 1 token"):
        builder.build([s])


def test_sap_target_is_gathered_at_the_kept_tokens():
    mask = torch.zeros(8, 8)
    mask[0:2, 0:4] = 1  # cells 0 and 1 of a 4 x 4 grid ... pooled 2 x 2 blocks
    mask[7, 7] = 1      # cell 15
    full = sap_target_for_tokens(mask, (4, 4), 32)
    pooled = np.zeros(16)
    pooled[[0, 1, 15]] = 1
    np.testing.assert_allclose(full.numpy(), np.tile(pooled / 3, 2) / 2, atol=1e-7)
    source = torch.tensor([1, 4, 15, 16, 31])
    got = sap_target_for_tokens(mask, (4, 4), 32, source)
    hand = np.tile(pooled, 2)[[1, 4, 15, 16, 31]]
    np.testing.assert_allclose(got.numpy(), hand / hand.sum(), atol=1e-7)
    assert float(got.sum()) == pytest.approx(1.0)
    assert sap_target_for_tokens(mask, (4, 4), 32, torch.tensor([2, 3, 20])) is None  # object pruned away


@pytest.mark.parametrize("fusion", ["mma", "hca"])
def test_training_sap_uses_the_kept_tokens(fusion, monkeypatch):
    from earthmind_sdk.contracts import Record

    model = pruned_model(fusion)
    trainer = Trainer(model, default_tokenizer(), TrainConfig(steps=1, freeze=(), sap=True))
    rec = next(r for r in SyntheticScenes(2, seed=4) if r.masks)
    with torch.no_grad():
        source = trainer.builder.build([rec.sample], [rec.answer]).encoded[0].fusion.source_index[0].tolist()
    gone = next(c for c in range(16) if c not in source and c + 16 not in source)
    left, cell = np.zeros((112, 112), bool), np.zeros((112, 112), bool)
    left[:, :56] = True
    r, c = divmod(gone, 4)
    cell[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28] = True
    records = [Record(rec.sample, rec.answer, [left]), Record(rec.sample, rec.answer, [cell])]
    seen = {}
    real = dispatch.sap_loss

    def spy(q, k, seg_batch, seg_pos, img_pos, target, **kw):
        seen.update(target=target, img_pos=img_pos, loss=real(q, k, seg_batch, seg_pos, img_pos, target, **kw))
        return seen["loss"]

    monkeypatch.setattr(dispatch, "sap_loss", spy)
    parts = trainer.losses(records)
    n_kept = len(source)
    assert seen["img_pos"].shape[1] == n_kept and seen["target"].shape == (1, n_kept)  # the lost row has no target
    # the loss is still a mean over both [SEG] rows, the lost one adding nothing
    assert parts["sap"].item() == pytest.approx(seen["loss"].item() / 2) and parts["sap"].item() > 0
    full = 32 if fusion == "mma" else 16
    laid = np.tile(left.reshape(4, 28, 4, 28).max(axis=(1, 3)).flatten().astype(float), full // 16)[source]
    np.testing.assert_allclose(seen["target"][0].numpy(), laid / laid.sum(), atol=1e-6)
    assert float(seen["target"][0].sum()) == pytest.approx(1.0)
