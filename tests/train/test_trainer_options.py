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
    # a record that needs SAR (its object is under thick cloud) keeps it whatever the rate
    tr.cfg.sensor_dropout = {"sar": 1.0}
    hidden = [r for r in SyntheticScenes(12, seed=4) if r.meta["hidden"] and not r.masks]
    assert hidden and all(r.needs == ("sar",) for r in hidden)
    assert all(set(s.images) == {"sar", "optical"} for s in tr._dropout(hidden))
    visible = next(r for r in records if not r.masks and not r.meta["hidden"])
    assert visible.needs == () and set(tr._dropout([visible])[0].images) == {"optical"}
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


def test_sap_focus_pulls_the_closed_answer_position_toward_its_objects(paired):
    model, tok, records = paired
    closed = [r for r in records if not r.masks and r.focus is not None][:4]
    assert closed
    tr = Trainer(model, tok, TrainConfig(steps=2, lr=1e-3, freeze=(), sap=True, sap_focus=True, tensorboard=False))
    batch = tr.builder.build([r.sample for r in closed], [r.answer for r in closed])
    seg_pos = batch.input_ids == tr.builder.ids["seg"]
    rows = tr._sap_rows(batch, seg_pos, closed)
    assert [b for b, _, _ in rows] == list(range(len(closed)))
    assert all(m is closed[b].focus for b, _, m in rows)
    for b, at, _ in rows:  # the position whose logits predict the answer's first token
        assert batch.labels[b, at] == -100 and batch.labels[b, at + 1] != -100
    # closed questions alone now give an SAP loss, counted over their rows; without focus none
    assert "sap" in tr.step(0, closed) and tr.counts(closed)["seg_rows"] == len(closed)
    plain = Trainer(model, tok, TrainConfig(steps=2, freeze=(), sap=True, tensorboard=False))
    assert "sap" not in plain.step(0, closed) and plain.counts(closed)["seg_rows"] == 0


def test_closed_questions_carry_what_they_ask_about_as_focus():
    for r in SyntheticScenes(6, seed=2):
        t = r.meta["task_type"]
        if r.masks or r.answer in ("No", "Zero"):
            assert r.focus is None, (t, r.answer)
        else:
            assert r.focus is not None and r.focus.any(), (t, r.answer)
        if t == "classification":  # the land cover shows on the land: no water, building or tarmac
            scene = SyntheticScenes(6, seed=2).scenes[r.meta["scene"]]
            assert not (r.focus & (scene.water | scene.buildings)).any()
            assert r.focus.sum() > 0.3 * r.focus.size
