"""The sensor ablation (evaluation's ``ablate``, training's sensor dropout): a named sensor is
removed, so a paired model answers from the other one as for a user who has only that; when
every sensor is named (a blind baseline) the images are blanked instead."""
import pytest
import torch

from earthmind_sdk.errors import EarthMindError
from earthmind_sdk.eval.records import evaluate_records
from earthmind_sdk.inference.pipeline import Pipeline
from earthmind_sdk.jobs.open_model import open_model
from earthmind_sdk.train.data import SyntheticScenes


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model, tok = open_model("tiny-paired")
    closed = [r for r in SyntheticScenes(2, seed=4) if not r.masks]
    return Pipeline(model, tok), closed


def test_removing_sar_leaves_the_optical_tokens_unfused(setup):
    pipe, closed = setup
    b = pipe.builder
    s = closed[0].sample
    without = b.ablate(s, 0, ["sar"])
    assert set(without.images) == {"optical"} and set(s.images) == {"sar", "optical"}
    enc = b.encode([b.prepare(without, 0)])[0]
    assert enc.fusion is None  # one sensor: its tokens go to the LLM as they are
    alone = b.model.encode_images(b.model.preprocess(b.prepare(without, 0)["optical"].frames[0]))[0]
    torch.testing.assert_close(enc.embeds, alone)


def test_every_sensor_named_is_a_blind_baseline_of_blank_images(setup):
    pipe, closed = setup
    blind = pipe.builder.ablate(closed[0].sample, 0, ["sar", "optical"])
    assert set(blind.images) == {"sar", "optical"}
    assert all(float(img.frames.abs().sum()) == 0.0 for img in blind.images.values())


def test_ablating_a_sensor_the_sample_lacks_says_which(setup):
    pipe, closed = setup
    s = pipe.builder.ablate(closed[0].sample, 3, ["sar"])
    with pytest.raises(EarthMindError, match=r"no 'sar' image to remove \(it has \['optical'\]\)"):
        pipe.builder.ablate(s, 3, ["sar"])


def test_evaluation_with_sar_ablated_answers_as_the_optical_only_input(setup):
    pipe, closed = setup
    rows: list[dict] = []
    evaluate_records(pipe, closed, ablate="sar", predictions=rows, batch_size=4, max_new_tokens=3)
    direct = pipe([pipe.builder.ablate(r.sample, i, ["sar"]) for i, r in enumerate(closed)], max_new_tokens=3)
    assert [row["answer"] for row in rows] == [r.answer for r in direct]
    fused = pipe([r.sample for r in closed], max_new_tokens=3)
    assert all(r.fusion_weights for r in fused) and not any(r.fusion_weights.get("sar") is not None for r in direct)
