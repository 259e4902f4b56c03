"""The published training formats read as they ship (fixtures in tests/train/layouts.py):
records, masks, <image> placement, region prompts, malformed entries by file and index, the
plain-data unpickler, COCO RLE, and the mixture with repeats."""
import json
import os
import pickle

import numpy as np
import pytest

from earthmind_sdk.errors import DataError
from earthmind_sdk.plugins import registry
from earthmind_sdk.text.prompt import build_prompt
from earthmind_sdk.train.formats.coco import (decode_segmentation, load_plain_pickle, rle_counts_from_string,
                                              rle_counts_to_string, rle_encode)


build = registry("datasets").build


def test_llava_conversations_multi_turn_with_image_placement(tmp_path, layouts):
    args = layouts.llava(tmp_path)
    data = build("llava", **args)
    # 3 two-turn conversations -> 6 records (every answer trained), + 1 plain + 1 segmentation
    assert len(data) == 8
    first, second = data[0], data[1]
    assert first.sample.history == [] and first.answer == "A harbour."
    assert second.sample.history == [("What is in scene 0?\n<image>", "A harbour.")] and second.answer == "1"
    # the image goes where the question put it (after the text), in the first turn only
    text = build_prompt(second.sample.prompt, 4, history=second.sample.history)
    assert text.index("What is in scene 0?") < text.index("<img>") < text.index("How many ships?")
    assert text.count("<img>") == 1
    plain = data[6]
    assert "<image>" not in plain.sample.prompt  # LLaVA convention: the image comes first
    seg = data[7]
    assert seg.answer == "Sure, [SEG]." and seg.masks[0].sum() == 8 * 16
    assert build("llava", turns="last", **args)[0].answer == "1"
    assert data.length(0) < data.length(1)  # history counts toward the length


def test_llava_malformed_entries_named_then_skipped_or_fatal(tmp_path, capsys, layouts):
    args = layouts.llava(tmp_path)
    rows = json.loads(open(args["annotations"]).read())
    rows.insert(1, {"id": "bad", "image": "s1.png", "conversations": [{"from": "gpt", "value": "hi"}]})
    rows.insert(2, {"id": "missing", "image": "nope.png", "conversations": rows[0]["conversations"]})
    open(args["annotations"], "w").write(json.dumps(rows))
    with pytest.raises(DataError, match=r"train\.json \[1\]: 'conversations' must be a list"):
        build("llava", **args)
    data = build("llava", on_error="skip", **args)
    assert len(data) == 8
    assert "skipped 2 malformed entries; first: " in capsys.readouterr().err


def test_rrsisd_as_it_ships(tmp_path, layouts):
    args = layouts.rrsisd(tmp_path)
    train = build("rrsisd", split="train", **args)
    assert len(train) == 4  # two refs x two sentences
    for rec in train:
        ann = int(rec.sample.id[3])
        assert np.array_equal(rec.masks[0], layouts.RRSISD_MASKS[ann][0]), layouts.RRSISD_MASKS[ann][1]
        assert rec.sample.task == "referring_segmentation" and rec.answer == "Sure, [SEG]."
    assert train[0].sample.task_args == {"expression": "the object number 1"}
    test = build("rrsisd", split="test", sentences="first", **args)
    assert len(test) == 1 and np.array_equal(test[0].masks[0], layouts.RRSISD_MASKS[3][0])


def test_rrsisd_pickle_with_code_is_refused_and_never_runs(tmp_path, layouts):
    args = layouts.rrsisd(tmp_path)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "rrsisd" / "refs(unc).p", "wb") as fh:
        pickle.dump([{"ref_id": 1, "payload": Evil()}], fh, protocol=2)
    with pytest.raises(DataError, match=r"refs\(unc\)\.p: not a plain-data pickle .*system"):
        build("rrsisd", **args)
    assert not marker.exists()
    with open(tmp_path / "plain.p", "wb") as fh:
        pickle.dump({"a": [1, 2.5, ("x", None, True)], "b": b"raw"}, fh, protocol=2)
    assert load_plain_pickle(tmp_path / "plain.p") == {"a": [1, 2.5, ("x", None, True)], "b": b"raw"}


def test_refsegrs_as_it_ships(tmp_path, layouts):
    args = layouts.refsegrs(tmp_path)
    train = build("refsegrs", **args)
    assert [r.sample.task_args["expression"] for r in train] == ["paved road", "low vegetation"]
    assert np.array_equal(train[1].masks[0], layouts.box_mask(1, 11, 2, 12))
    (tmp_path / "output_phrase_val.txt").write_text("5 a missing image\nnot-a-line\n")
    with pytest.raises(DataError, match=r"output_phrase_val\.txt:1: .*5\.tif not found"):
        build("refsegrs", split="val", **args)
    with pytest.raises(DataError, match="no usable phrases"):
        build("refsegrs", split="val", on_error="skip", **args)


def test_osprey_regions_become_region_prompts(tmp_path, layouts):
    data = build("osprey", **layouts.osprey(tmp_path))
    assert len(data) == 2
    rec = data[1]
    assert rec.sample.task == "region_captioning" and len(rec.sample.regions) == 2
    assert rec.sample.prompt == "And region2 ?" and rec.sample.history[0][0].endswith("What is region1?")
    assert np.array_equal(rec.sample.regions[1], layouts.box_mask(20, 30, 20, 30))
    assert rec.sample.regions[0][:8, :8].all() and rec.sample.regions[0].sum() >= 64


def test_paired_folders_give_sar_and_optical(tmp_path, layouts):
    data = build("paired_conversations", **layouts.paired(tmp_path))
    rec = data[1]
    assert list(rec.sample.images) == ["sar", "optical"]
    assert rec.sample.images["sar"].endswith("img/train/sar/img/p1.png") and rec.answer == "Yes"


def test_coco_rle_round_trip_and_errors():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < rng.random()
        rle = rle_encode(mask)
        assert np.array_equal(decode_segmentation(rle, *mask.shape, "t"), mask)
        packed = rle_counts_to_string(rle["counts"])
        assert rle_counts_from_string(packed) == rle["counts"]
        assert np.array_equal(decode_segmentation({"size": rle["size"], "counts": packed}, *mask.shape, "t"), mask)
    with pytest.raises(DataError, match="x.json \\[3\\]: RLE counts cover 5 pixels"):
        decode_segmentation({"size": [2, 3], "counts": [2, 3]}, 2, 3, "x.json [3]")


def test_mixture_repeats_parts(tmp_path, layouts):
    seg = layouts.refsegrs(tmp_path / "rs")
    conv = layouts.llava(tmp_path / "ll")
    mix = build("mixture", parts=[{"dataset": "refsegrs", "args": seg, "repeat": 3},
                                  {"dataset": "llava", "args": conv}])
    assert len(mix) == 2 * 3 + 8
    assert mix.summary() == {"refsegrs[0]": 6, "llava[1]": 8}
    assert mix[0].sample.task_args == mix[2].sample.task_args  # the repeat is the same record
    assert mix[6].answer == "A harbour."
    named = build("mixture", parts={"rs": {"dataset": "refsegrs", "args": seg, "repeat": 2}, "ll": None})
    assert named.summary() == {"refsegrs[rs]": 4}  # a part set to null (by an override) is left out
    with pytest.raises(DataError, match="part 0 \\(refsegrs\\): repeat must be a positive integer"):
        build("mixture", parts=[{"dataset": "refsegrs", "args": seg, "repeat": 0}])
