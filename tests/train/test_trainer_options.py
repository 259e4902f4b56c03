"""Trainer options the quickstart relies on: sensor dropout (closed questions lose a sensor, as
the evaluation's ablation does; segmentation never), learning rates per part, dotted freeze."""
import pytest
import torch

from earthmind_sdk.jobs.open_model import open_model
from earthmind_sdk.train.data import SyntheticScenes
from earthmind_sdk.train.trainer import Trainer, TrainConfig


@pytest.fixture(scope="module")
def paired():
    torch.manual_seed(0)
    model, tok = open_model("tiny-paired")
    return model, tok, list(SyntheticScenes(3, seed=1))


def test_sensor_dropout_removes_sar_from_closed_questions_only(paired):
    model, tok, records = paired
    tr = Trainer(model, tok, TrainConfig(steps=1, freeze=("vision_model",), sensor_dropout={"sar": 1.0}))
    samples = tr._dropout(records)
    for rec, s in zip(records, samples):
        if rec.masks:
            assert s is rec.sample  # masks are learned on the real images
        else:
            assert set(s.images) == {"optical"} and s.images["optical"] is rec.sample.images["optical"]
            assert set(rec.sample.images) == {"sar", "optical"}  # the record itself is untouched
    # never every sensor at once, even when all are asked to drop
    tr.cfg.sensor_dropout = {"sar": 1.0, "optical": 1.0}
    closed = next(r for r in records if not r.masks)
    s = tr._dropout([closed])[0]
    assert len(s.images) == 1
    # a step runs on a batch that mixes paired and optical-only samples
    tr.cfg.sensor_dropout = {"sar": 0.5}
    assert tr.step(0, records[:6])["lm"] > 0


def test_lr_scale_gives_a_part_its_own_rate_through_the_schedule(paired):
    model, tok, records = paired
    tr = Trainer(model, tok, TrainConfig(steps=4, lr=1e-3, freeze=(), warmup_ratio=0.0,
                                         lr_scale={"grounding_encoder": 0.5}))
    groups = tr.opt.param_groups
    assert [g["scale"] for g in groups] == [1.0, 0.5]
    seg_ids = {id(p) for p in model.grounding_encoder.parameters()}
    assert {id(p) for p in groups[1]["params"]} == seg_ids
    tr.step(0, records[:2])
    assert groups[1]["lr"] == pytest.approx(0.5 * groups[0]["lr"]) and groups[0]["lr"] == pytest.approx(1e-3)


def test_freeze_and_lr_scale_take_dotted_paths_and_name_a_wrong_one(paired):
    model, tok, _ = paired
    tr = Trainer(model, tok, TrainConfig(steps=1, freeze=("language_model.model.embed_tokens",)))
    assert not model.language_model.model.embed_tokens.weight.requires_grad
    model.language_model.model.embed_tokens.weight.requires_grad_(True)
    with pytest.raises(ValueError, match="train.lr_scale: model has no submodule 'no.such'"):
        Trainer(model, tok, TrainConfig(steps=1, freeze=(), lr_scale={"no.such": 2.0}))
    assert tr.params
