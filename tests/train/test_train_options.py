"""Training options on the tiny model: gradient checkpointing gives the same gradients, the
length-grouped sampler pads less and resumes from its state, and the referring-segmentation
readers feed the eval job (gIoU, cIoU)."""
import json

import numpy as np
import pytest
import torch

from earthmind_sdk.jobs.open_model import open_model
from earthmind_sdk.recipes import recipe_from_dict
from earthmind_sdk.train.sampler import BatchSampler
from earthmind_sdk.train.trainer import Trainer, TrainConfig


def _grads(records, **cfg):
    torch.manual_seed(0)
    model, tok = open_model("tiny")
    trainer = Trainer(model, tok, TrainConfig(batch_size=4, freeze=(), num_points=64, seed=0, **cfg))
    lm = model.language_model
    on = lm.is_activation_checkpointing if hasattr(lm, "is_activation_checkpointing") else lm.is_gradient_checkpointing
    assert on == bool(cfg.get("gradient_checkpointing"))
    logged = trainer.accumulate(records)
    return logged, trainer.full_gradients()


def test_gradient_checkpointing_same_gradients(layouts_module):
    records = layouts_module.global_batch()[:4]
    plain_log, plain = _grads(records)
    ckpt_log, ckpt = _grads(records, gradient_checkpointing=True)
    assert ckpt_log["loss"] == pytest.approx(plain_log["loss"], rel=1e-6)
    a, b = torch.cat([v.flatten() for v in plain.values()]), torch.cat([v.flatten() for v in ckpt.values()])
    assert float((a - b).norm() / a.norm()) < 1e-5


def test_length_grouped_sampler_pads_less_shards_and_resumes():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 500, 1000).tolist()
    plain = BatchSampler(1000, 8, seed=1)
    grouped = BatchSampler(1000, 8, seed=1, lengths=lengths)

    def padding(s):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in (s.next() for _ in range(125)))

    assert padding(grouped) < 0.2 * padding(plain)
    # each epoch uses every record once; two ranks of 4 together take the one-process batch of 8
    one = BatchSampler(1000, 8, seed=1, lengths=lengths)
    ranks = [BatchSampler(1000, 4, seed=1, world=2, rank=r, lengths=lengths) for r in (0, 1)]
    for _ in range(130):  # crosses an epoch boundary
        assert one.next() == ranks[0].next() + ranks[1].next()
    # resume: a sampler restored from a state continues exactly
    a = BatchSampler(1000, 8, seed=3, lengths=lengths)
    for _ in range(140):
        a.next()
    b = BatchSampler(1000, 8, seed=3, lengths=lengths)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert [a.next() for _ in range(20)] == [b.next() for _ in range(20)]
    with pytest.raises(ValueError, match="global_batch"):
        BatchSampler(1000, 4, seed=3).load_state_dict(a.state_dict())
    small = BatchSampler(3, 4, seed=0)  # fewer records than a batch: each one comes again
    assert sorted(small.next()) in ([0, 0, 1, 2], [0, 1, 1, 2], [0, 1, 2, 2])
    first = BatchSampler(1000, 8, seed=2, lengths=lengths)
    assert sorted(i for _ in range(125) for i in first.next()) == list(range(1000))


def test_refseg_readers_feed_the_eval_job(tmp_path, layouts_module):
    args = layouts_module.refsegrs(tmp_path / "rs")
    recipe = recipe_from_dict({"job": "eval", "model": {"spec": "tiny"}, "max_new_tokens": 2,
                               "data": {"dataset": "refsegrs", "args": {**args, "split": "test"}},
                               "output": {"dir": str(tmp_path / "out")}})
    report = recipe.run()
    seg = report["segmentation"]["referring_segmentation"]
    assert seg["n"] == 1 and set(seg) >= {"gIoU", "cIoU"} and 0.0 <= seg["gIoU"] <= 1.0
