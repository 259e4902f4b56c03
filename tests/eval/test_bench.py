"""EarthMind-Bench reading and the eval job on a generated mini benchmark in the released layout."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from earthmind_sdk.errors import EarthMindError
from earthmind_sdk.eval.bench import EarthMindBench
from earthmind_sdk.jobs import read_jsonl

ENTRIES = [
    {"file_name": "scene_001.png", "question": "What is the main land cover?",
     "candidate": ["A. water", "B. forest", "C. urban"], "answer": "B", "task_type": "scene_classification"},
    {"file_name": "scene_001.png", "question": "Is there a bridge?", "candidate": ["yes", "no"],
     "answer": "no", "task_type": "object_existence"},
    {"file_name": "scene_002.png", "question": "How many ships?", "candidate": ["A. 1", "B. 2", "C. 3"],
     "answer": "C. 3", "task_type": "object counting"},
    {"file_name": "scene_002.json", "question": "Describe the scene.", "candidate": [],
     "answer": "A harbor with three ships.", "task_type": "image_caption"},
]


@pytest.fixture
def bench(tmp_path):
    rng = np.random.default_rng(0)
    for stem in ("scene_001", "scene_002"):
        for folder, channels in (("rgb", 3), ("sar", 3)):
            d = tmp_path / "img" / "test" / folder / "img"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (56, 56, channels), dtype=np.uint8)).save(d / f"{stem}.png")
    (tmp_path / "bench.json").write_text(json.dumps(ENTRIES))
    return tmp_path


def test_reader_maps_answers_and_images(bench):
    ds = EarthMindBench(str(bench), "bench.json")
    recs = list(ds)
    assert [r.answer for r in recs] == ["B", "B", "C", "A harbor with three ships."]
    assert recs[0].sample.task == "multiple_choice" and recs[3].sample.task == "captioning"
    assert recs[3].sample.images["optical"].endswith("img/test/rgb/img/scene_002.png")  # .json name -> .png
    assert recs[1].meta["reference_text"] == "no"
    assert set(recs[0].sample.images) == {"sar", "optical"}
    assert recs[0].sample.images["sar"].endswith("img/test/sar/img/scene_001.png")
    assert recs[2].meta["task_type"] == "object counting"
    rgb_only = EarthMindBench(str(bench), "bench.json", modality="rgb")
    assert set(next(iter(rgb_only)).sample.images) == {"optical"}


def test_prompts_are_the_released_ones(bench):
    """"<image>" + question + "\n" + candidates joined by "\n" (verbatim), then the phi3 turn."""
    from earthmind_sdk.tasks import get_task
    from earthmind_sdk.text import build_prompt

    recs = list(EarthMindBench(str(bench), "bench.json"))
    s = recs[1].sample
    question = get_task(s.task).build_prompt(s.prompt, **s.task_args)
    assert question == "<image>Is there a bridge?\nyes\nno"
    assert build_prompt(question, 1) == ("<|user|>\n<img><IMG_CONTEXT></img>Is there a bridge?\nyes\nno<|end|>\n"
                                         "<|assistant|>\n")
    s = recs[3].sample
    assert get_task(s.task).build_prompt(s.prompt, **s.task_args) == "<image>Describe the scene."
    # the answers a model gives are read back against the verbatim candidates
    assert get_task("multiple_choice").parse("No, there is none.", **recs[1].sample.task_args).value == "B"


def test_several_annotation_files_and_limit(bench):
    (bench / "second.json").write_text(json.dumps(ENTRIES[:2]))
    ds = EarthMindBench(str(bench), ["bench.json", str(bench / "second.json")])
    assert len(ds) == 6 and [r.meta["source"] for r in ds][-2:] == ["second.json", "second.json"]
    assert len(EarthMindBench(str(bench), ["bench.json", "second.json"], limit=5)) == 5


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"), ('{"a": 1}', "expected a JSON list of questions, found dict"),
    ("[1]", r"\[0\]: expected an object, found int"),
])
def test_malformed_files_are_named(bench, text, message):
    (bench / "bad.json").write_text(text)
    with pytest.raises(EarthMindError, match="bad.json.*" + message):
        EarthMindBench(str(bench), "bad.json")
    with pytest.raises(EarthMindError, match="nope.json: EarthMind-Bench annotation file not found"):
        EarthMindBench(str(bench), "nope.json")
    with pytest.raises(EarthMindError, match="modality 'ir'"):
        EarthMindBench(str(bench), "bench.json", modality="ir")


@pytest.mark.parametrize("entry, message", [
    ({**ENTRIES[0], "candidate": "A. water"}, "'candidate' must be a list"),
    ({**ENTRIES[0], "question": None}, "'question' must be a non-empty string"),
    ({**ENTRIES[0], "candidate": ["A. x", "A. y"]}, r"options \[.A. x., .A. y.\] repeat a letter"),
    ({"question": "q", "answer": "A", "task_type": "object counting"}, r"missing key\(s\) \['file_name'\]"),
    ({**ENTRIES[0], "answer": "E"}, "answer 'E' is none of the candidates"),
    ({**ENTRIES[0], "file_name": "nope.png"}, "image .*img/test/sar/img/nope.png not found"),
    ({**ENTRIES[0], "candidate": []}, "multiple-choice task 'scene classification' without 'candidate'"),
])
def test_malformed_entries_are_named(bench, entry, message):
    (bench / "bad.json").write_text(json.dumps([entry]))
    with pytest.raises(EarthMindError, match=r"bad.json \[0\]: " + message):
        EarthMindBench(str(bench), "bad.json")


def test_eval_job_writes_predictions_and_scores(bench, tmp_path):
    recipe = tmp_path / "eval.yaml"
    out = tmp_path / "res"
    recipe.write_text(f"job: eval\nmodel: {{spec: tiny-paired}}\nmax_new_tokens: 4\n"
                      f"data: {{dataset: earthmind_bench, args: {{root: {bench}, annotations: bench.json}}}}\n"
                      f"output: {{dir: {out}}}\n")
    exe = Path(sys.executable).with_name("earthmind")
    res = subprocess.run([str(exe), "run", str(recipe)], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert res.returncode == 0, res.stderr
    scores = json.loads((out / "scores.json").read_text())
    rows = list(read_jsonl(out / "predictions.jsonl"))
    assert len(rows) == 4 and scores["n"] == 4
    assert set(scores["accuracy"]) == {"scene classification", "object existence", "object counting"}
    assert scores["m_avg"] == pytest.approx(np.mean(list(scores["accuracy"].values())), abs=1e-4)
    assert set(scores["open_ended"]) == {"image caption"}
    assert set(scores["open_ended"]["image caption"]) == {"n", "bleu4", "rouge_l", "cider"}
    assert set(scores["unparsed"]) == set(scores["accuracy"]) and set(scores["exact_match"]) == set(scores["accuracy"])
    assert {r["group"] for r in rows} >= {"image caption", "object counting"}
    for r in rows:
        if "correct" in r:  # closed questions: the score is exactly what was parsed
            assert r["correct"] == (r["parsed"] is not None and r["parsed"] == r["expected"])

    ablated = subprocess.run([str(exe), "run", str(recipe), "ablate=sar", f"output.dir={tmp_path / 'abl'}"],
                             capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert ablated.returncode == 0, ablated.stderr
    assert json.loads((tmp_path / "abl" / "scores.json").read_text())["ablated_sensor"] == "sar"
