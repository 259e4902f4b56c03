"""train.balance: batches mixed by how often the model still gets each subtask wrong. The
sampler gives a group stuck at chance more of the batch but never less than its floor, covers a
group's records before repeating any, shards and resumes exactly; the trainer reports each
record's error (a wrong answer token, or 1 - IoU of its mask) and chance comes from the data."""
import numpy as np
import pytest
import torch

from earthmind_sdk.errors import RecipeError
from earthmind_sdk.jobs.open_model import open_model
from earthmind_sdk.recipes import recipe_from_dict
from earthmind_sdk.train.data import SyntheticScenes
from earthmind_sdk.train.formats.mixture import Indexed
from earthmind_sdk.train.loop import groups_and_chance
from earthmind_sdk.train.sampler import BalancedSampler, BatchSampler
from earthmind_sdk.train.trainer import Trainer, TrainConfig

GROUPS = ["a"] * 60 + ["b"] * 30 + ["c"] * 10


def _counts(sampler, steps=200):
    labels = np.array(GROUPS)
    got = np.concatenate([labels[sampler.next()] for _ in range(steps)])
    return {g: float((got == g).mean()) for g in "abc"}


def test_a_stuck_group_gets_more_of_the_batch_within_the_floor():
    # b is a yes/no subtask (chance error 0.5); a and c have masks (chance 1)
    s = BalancedSampler(GROUPS, 16, seed=0, floor=0.5, momentum=0.0, chance={"b": 0.5})
    assert s.shares() == pytest.approx([0.6, 0.3, 0.1])  # nothing seen yet: the natural mixture
    s.update({"a": (0.1 * 4, 4), "b": (0.05 * 4, 4), "c": (0.9 * 2, 2)})  # c far from learned, a and b nearly
    shares = dict(zip(s.names, s.shares()))
    # relative errors: a 0.1, b 0.05 / 0.5 = 0.1, c 0.9; weighted c: 0.1 * 0.9 / (0.06 + 0.03 + 0.09) = 0.5
    assert shares["c"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.5)
    assert shares["a"] >= 0.5 * 0.6 and shares["b"] >= 0.5 * 0.3  # the floor
    assert sum(shares.values()) == pytest.approx(1.0)
    assert _counts(s)["c"] == pytest.approx(shares["c"], abs=0.03)
    # a yes/no subtask at chance (error 0.5) weighs as much as a mask subtask at error 1
    t = BalancedSampler(GROUPS, 16, seed=0, floor=0.0, momentum=0.0, chance={"b": 0.5})
    t.update({"a": (0.0, 4), "b": (0.5 * 4, 4), "c": (1.0 * 2, 2)})
    assert t.shares() == pytest.approx([0.0, 0.3 / 0.4, 0.1 / 0.4])
    # a higher power favours the most stuck group more: relative errors 0.1, 0.1, 0.9 squared
    sharp = BalancedSampler(GROUPS, 16, seed=0, floor=0.5, momentum=0.0, power=2.0, chance={"b": 0.5})
    sharp.update({"a": (0.1 * 4, 4), "b": (0.05 * 4, 4), "c": (0.9 * 2, 2)})
    assert sharp.shares()[2] == pytest.approx(0.5 * 0.1 + 0.5 * 0.081 / (0.006 + 0.003 + 0.081))
    assert sharp.shares()[2] > shares["c"]
    with pytest.raises(ValueError, match="power"):
        BalancedSampler(GROUPS, 16, power=0.0)
    # floor 1 never rebalances
    fixed = BalancedSampler(GROUPS, 16, seed=0, floor=1.0)
    fixed.update({"c": (1.0, 1), "a": (0.0, 1)})
    assert fixed.shares() == pytest.approx([0.6, 0.3, 0.1])


def test_the_average_follows_momentum_and_a_group_not_seen_counts_as_average():
    s = BalancedSampler(GROUPS, 8, seed=0, floor=0.0, momentum=0.5)
    s.update({"a": (1.0, 1)})
    s.update({"a": (0.0, 2), "b": (0.0, 0)})  # a step with no b record leaves b unseen
    assert s.error == [pytest.approx(0.5), None, None]
    assert s.shares() == pytest.approx([0.6, 0.3, 0.1])  # b and c count as a's average


def test_chance_is_the_error_of_answering_without_looking():
    recs = list(SyntheticScenes(8, seed=0))
    groups, chance = groups_and_chance(Indexed(recs))
    assert groups == [r.meta["task_type"] for r in recs]
    assert chance["existence"] == pytest.approx(0.5)  # yes and no, balanced by construction
    assert chance["counting"] == pytest.approx(0.75)
    assert chance["referring_segmentation"] == 1.0  # masks: the text "Sure, [SEG]." says nothing


def test_each_group_is_covered_before_any_record_repeats():
    s = BalancedSampler(GROUPS, 10, seed=3, floor=0.5)
    s.update({"c": (100.0, 1), "a": (0.01, 1), "b": (0.01, 1)})
    seen_c: list[int] = []
    while len(seen_c) < 10:
        seen_c += [i for i in s.next() if GROUPS[i] == "c"]
    assert sorted(seen_c[:10]) == list(range(90, 100))


def test_ranks_split_the_global_batch_and_a_resume_continues_it():
    one = BalancedSampler(GROUPS, 8, seed=1)
    ranks = [BalancedSampler(GROUPS, 4, seed=1, world=2, rank=r) for r in (0, 1)]
    for step in range(6):
        errors = {"a": (0.1 * step, 3), "c": (0.9, 1)}
        whole = one.next()
        assert whole == ranks[0].next() + ranks[1].next()
        for s in (one, *ranks):
            s.update(errors)
    saved = one.state_dict()
    ahead = [one.next() for _ in range(5)]
    again = BalancedSampler(GROUPS, 8, seed=1)
    again.load_state_dict(saved)
    assert [again.next() for _ in range(5)] == ahead
    with pytest.raises(ValueError, match="names"):
        BalancedSampler(GROUPS[:-1] + ["d"], 8, seed=1).load_state_dict(saved)
    with pytest.raises(ValueError, match="balance"):
        BatchSampler(len(GROUPS), 8, seed=1).load_state_dict(saved)
    with pytest.raises(ValueError, match="shuffling"):
        again.load_state_dict(BatchSampler(len(GROUPS), 8, seed=1).state_dict())


def _wrong_answers(model, builder, records) -> list[float]:
    """1 where the full-vocabulary logits' top token misses any answer token (teacher-forced)."""
    batch = builder.build([r.sample for r in records], [r.answer for r in records])
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, image_embeds=batch.image_embeds,
                       position_ids=batch.position_ids).logits
    targets = batch.labels[:, 1:]
    return (((logits[:, :-1].argmax(-1) != targets) & (targets != -100)).any(1)).float().tolist()


def test_trainer_reports_each_records_error():
    torch.manual_seed(0)
    model, tok = open_model("tiny-paired")
    recs = list(SyntheticScenes(3, seed=1))
    closed = [r for r in recs if not r.masks][:4]
    records = closed + [r for r in recs if r.masks][:2]
    tr = Trainer(model, tok, TrainConfig(steps=1000, batch_size=6, lr=1e-2, warmup_ratio=0.0, freeze=(), num_points=64))
    tr.accumulate(records)
    assert tr.record_errors[:4] == [1.0] * 4  # untrained: no answer is the top pick
    assert all(0.5 < e <= 1.0 for e in tr.record_errors[4:])  # a random mask is far from its target
    for step in range(150):  # learn the four answers by heart until some are right
        tr.step(step, closed)
        tr.accumulate(records)  # the errors at these weights (no update)
        tr.opt.zero_grad(set_to_none=True)
        if 0.0 in tr.record_errors[:4]:
            break
    model.eval()
    expected = _wrong_answers(model, tr.builder, closed)
    assert 0.0 in expected
    assert tr.record_errors[:4] == expected
    # grad accumulation keeps each record's error in its place
    split = Trainer(model, tok, TrainConfig(steps=1, batch_size=6, grad_accum=2, freeze=(), num_points=64))
    split.accumulate(records)
    assert split.record_errors == pytest.approx(tr.record_errors)


def test_balance_recipe_keys_are_checked():
    base = {"job": "train", "model": {"spec": "tiny"}, "train": {"steps": 1}}
    cfg = recipe_from_dict({**base, "train": {"steps": 1, "balance": {}}})
    assert cfg.config["train"]["balance"] == {"floor": 0.5, "momentum": 0.9, "power": 1.0}
    with pytest.raises(RecipeError, match="floor"):
        recipe_from_dict({**base, "train": {"steps": 1, "balance": {"floor": 2.0}}})
    with pytest.raises(RecipeError, match="temperature"):
        recipe_from_dict({**base, "train": {"steps": 1, "balance": {"temperature": 2.0}}})


def _balanced_run(run_dir, records, resume=False):
    torch.manual_seed(0)
    model, tok = open_model("tiny")
    tr = Trainer(model, tok, TrainConfig(steps=6, batch_size=4, lr=1e-3, freeze=(), num_points=64, seed=2,
                                         balance={"floor": 0.25, "momentum": 0.5}))
    return tr.fit(records, run_dir=run_dir, save_every=3, keep_last=0, resume=resume, progress=False)


def test_a_resumed_balanced_run_draws_the_same_batches(tmp_path):
    import shutil

    records = list(SyntheticScenes(4, size=56, seed=0, sensors=("optical",)))
    whole = _balanced_run(tmp_path / "whole", records)
    assert all(set(h["mix"]) == {r.meta["task_type"] for r in records} for h in whole)
    assert whole[0]["mix"] != whole[-1]["mix"]  # the mixture moved with the errors
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "whole" / "checkpoints" / "step-3", tmp_path / "resumed" / "checkpoints" / "step-3")
    resumed = _balanced_run(tmp_path / "resumed", records, resume=True)
    assert [h["mix"] for h in resumed] == [h["mix"] for h in whole]
    assert [h["loss"] for h in resumed] == pytest.approx([h["loss"] for h in whole], rel=1e-5)
    with pytest.raises(RecipeError, match="group_by_length"):
        torch.manual_seed(0)
        model, tok = open_model("tiny")
        Trainer(model, tok, TrainConfig(steps=1, balance={"floor": 0.5, "momentum": 0.9})).fit(
            records, group_by_length=True, progress=False)
