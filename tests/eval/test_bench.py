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

ENTRIES = [
    {"file_name": "scene_001.png", "question": "What is the main land cover?",
     "candidate": ["A. water", "B. forest", "C. urban"], "answer": "B", "task_type": "scene_classification"},
    {"file_name": "scene_001.png", "question": "Is there a bridge?", "candidate": ["yes", "no"],
     "answer": "no", "task_type": "object_existence"},
    {"file_name": "scene_002.png", "question": "How many ships?", "candidate": ["A. 1", "B. 2", "C. 3"],
     "answer": "C. 3", "task_type": "object counting"},
    {"file_name": "scene_002.png", "question": "Describe the scene.", "candidate": [],
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
    assert set(recs[0].sample.images) == {"sar", "optical"}
    assert recs[0].sample.images["sar"].endswith("img/test/sar/img/scene_001.png")
    assert recs[2].meta["task_type"] == "object counting"
    rgb_only = EarthMindBench(str(bench), "bench.json", modality="rgb")
    assert set(next(iter(rgb_only)).sample.images) == {"optical"}


@pytest.mark.parametrize("entry, message", [
    ({"question": "q", "answer": "A", "task_type": "object counting"}, r"\[0\]: missing key\(s\) \['file_name'\]"),
    ({**ENTRIES[0], "answer": "E"}, "answer 'E' is none of the candidates"),
    ({**ENTRIES[0], "file_name": "nope.png"}, "nope.png not found"),
    ({**ENTRIES[0], "candidate": []}, "without 'candidate'"),
])
def test_malformed_entries_are_named(bench, entry, message):
    (bench / "bad.json").write_text(json.dumps([entry]))
    with pytest.raises(EarthMindError, match=message):
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
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and scores["n"] == 4
    assert set(scores["accuracy"]) == {"scene classification", "object existence", "object counting"}
    assert scores["m_avg"] == pytest.approx(np.mean(list(scores["accuracy"].values())), abs=1e-4)
    assert set(scores["open_ended"]) == {"image caption"}
    assert {r["group"] for r in rows} >= {"image caption", "object counting"}
    for r in rows:
        if "correct" in r:  # closed questions: the score is exactly what was parsed
            assert r["correct"] == (r["parsed"] is not None and r["parsed"] == r["expected"])

    ablated = subprocess.run([str(exe), "run", str(recipe), "ablate=sar", f"output.dir={tmp_path / 'abl'}"],
                             capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert ablated.returncode == 0, ablated.stderr
    assert json.loads((tmp_path / "abl" / "scores.json").read_text())["ablated_sensor"] == "sar"
