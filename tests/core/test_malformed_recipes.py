"""Malformed recipes: each is one RecipeError naming the file and key path (the issue's list, then
our own), never a traceback and never silently accepted; values that are right are read right."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from earthmind_sdk.errors import RecipeError
from earthmind_sdk.recipes import load_recipe

EARTHMIND = Path(sys.executable).with_name("earthmind")
TRAIN = "job: train\ndata: {dataset: synthetic_scenes, args: {n_scenes: 4}}\ntrain: {steps: 2}\n"
EVAL = "job: eval\ndata: {dataset: earthmind_bench, args: {root: /data, annotations: x.json}}\n"
QUICK = "job: quickstart\n"

# (recipe text, key path in the message, words of the message)
ISSUE = [
    (QUICK + "train: {steps: 0}\n", "train.steps", "must be >= 1"),
    (QUICK + "train: {steps: -5}\n", "train.steps", "must be >= 1"),
    (QUICK + "train: {batch_size: 0}\n", "train.batch_size", "must be >= 1"),
    (QUICK + "train: {lr: -0.001}\n", "train.lr", "must be > 0"),
    (QUICK + "train: {log_every: 0}\n", "train.log_every", "must be >= 1"),
    (QUICK + "train: {num_points: -3}\n", "train.num_points", "must be >= 1"),
    (TRAIN.replace("n_scenes: 4", "n_scenes: 4, sise: 8"), "data.args", "unknown argument(s) sise (did you mean 'size'?)"),
    (QUICK + "train: {freeze: [vision_modle]}\n", "train.freeze[0]", "did you mean 'vision_model'"),
    (QUICK + "model: {device: gpu}\n", "model.device", "cpu, cuda, cuda:N or mps"),
    (EVAL + "ablate: sarr\n", "ablate", "did you mean 'sar'"),
    (QUICK + "train: {grad_accum: 0}\n", "train.grad_accum", "must be >= 1"),
    (QUICK + "train: {lora: {rank: 8}}\n", "train.lora.rank", "unknown key"),
    (QUICK + "train: {loss_weights: {maks: 1.0}}\n", "train.loss_weights.maks", "did you mean 'mask'"),
    (QUICK + "train: {warmup_ratio: 2.0}\n", "train.warmup_ratio", "must be <= 1"),
    (QUICK + "seed: 1\nseed: 2\n", "line 3", "duplicate key 'seed'"),
]
OWN = [
    (QUICK + "train: {lr: fast}\n", "train.lr", "expected float"),
    (QUICK + "train: {lr: .nan}\n", "train.lr", "finite number"),
    (QUICK + "train: {lr: 1e999}\n", "train.lr", "finite number"),
    (QUICK + "train: {weight_decay: -1}\n", "train.weight_decay", "must be >= 0"),
    (QUICK + "train: {betas: [0.9, 1.5]}\n", "train.betas[1]", "must be <= 1"),
    (QUICK + "train: {betas: 0.9}\n", "train.betas", "expected list"),
    (QUICK + "train: {grad_clip: 0}\n", "train.grad_clip", "must be > 0"),
    (QUICK + "train: {steps: 2.5}\n", "train.steps", "expected int"),
    (QUICK + "train: {steps: true}\n", "train.steps", "expected int"),
    (QUICK + "train: {sap: yes please}\n", "train.sap", "expected bool"),
    (QUICK + "train: {lora: {r: 0}}\n", "train.lora.r", "must be >= 1"),
    (QUICK + "train: {lora: {dropout: 1.5}}\n", "train.lora.dropout", "must be <= 1"),
    (QUICK + "train: {lora: [8]}\n", "train.lora", "expected dict or null"),
    (QUICK + "train: {loss_weights: {mask: -2}}\n", "train.loss_weights.mask", "must be >= 0"),
    (QUICK + "train: {freeze: vision_model}\n", "train.freeze", "expected list"),
    (QUICK + "data: {size: 4}\n", "data.size", "must be >= 16"),
    (QUICK + "data: {train_scenes: 0}\n", "data.train_scenes", "must be >= 1"),
    (QUICK + "model: {dtype: float64}\n", "model.dtype", "allowed values: float32"),
    (QUICK + "model: {device: 'cuda:x'}\n", "model.device", "cuda:N"),
    (QUICK + "model: {spec: 3}\n", "model.spec", "expected str or dict"),
    (QUICK + "seed: -1\n", "seed", "must be >= 0"),
    (QUICK + "output: {overwrite: maybe}\n", "output.overwrite", "expected bool"),
    (QUICK + "outptu: {dir: x}\n", "outptu", "did you mean 'output'"),
    (QUICK + "train: {steps: 2, steps: 3}\n", "line 2", "duplicate key 'steps'"),
    (QUICK + "train: {lr: '${oc.env:HOME}'}\n", "train.lr", "interpolation"),
    (QUICK + "train: {_target_: os.system}\n", "train._target_", "not allowed"),
    (EVAL + "batch_size: 0\n", "batch_size", "must be >= 1"),
    (EVAL + "max_new_tokens: -1\n", "max_new_tokens", "must be >= 1"),
    (EVAL.replace("dataset: earthmind_bench", "dataset: earthmind_bnch"), "data.dataset", "did you mean"),
    (EVAL.replace("annotations: x.json", "annotations: x.json, modalty: rgb"), "data.args",
     "unknown argument(s) modalty (did you mean 'modality'?)"),
    ("job: infer\nsamples: {a: 1}\n", "samples", "expected list"),
    ("job: infer\nsamples: []\ntask: vqq\n", "task", "did you mean 'vqa'"),
    ("job: trian\n", "job", "did you mean 'train'"),
    ("- job: train\n", "", "a recipe must be a mapping"),
    ("job: train\ntrain: {steps: [1\n", "line", "malformed YAML"),
]


def _write(tmp_path, text):
    f = tmp_path / "recipe.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize("text, key, words", ISSUE + OWN, ids=[f"{i:02d}" for i in range(len(ISSUE + OWN))])
def test_malformed_recipe_is_one_line_naming_file_and_key(tmp_path, text, key, words):
    f = _write(tmp_path, text)
    with pytest.raises(RecipeError) as e:
        load_recipe(f)
    msg = str(e.value)
    assert msg.startswith(str(f)) and key in msg and words in msg and "\n" not in msg, msg


def test_at_least_twenty_own_cases():
    assert len(ISSUE) == 15 and len(OWN) >= 20


def test_values_that_are_right_are_read_right(tmp_path):
    r = load_recipe(_write(tmp_path, QUICK + "train: {lr: 1e-3, lora: {r: 8}, loss_weights: {mask: 1}}\n"
                                             "model: {device: 'cuda:1'}\n"))
    t = r.config["train"]
    assert t["lr"] == 0.001 and isinstance(t["lr"], float)  # YAML reads 1e-3 as a string
    assert t["lora"]["r"] == 8 and t["lora"]["alpha"] == 256  # the rank given is the rank used
    assert t["loss_weights"] == {"lm": 1.0, "mask": 1.0, "dice": 0.5, "sap": 0.1}
    assert load_recipe(_write(tmp_path, QUICK)).config["train"]["lora"] is None  # no LoRA unless asked
    # a string field keeps a numeric-looking string as it is
    r = load_recipe(_write(tmp_path, "job: infer\nsamples: []\noutput: {dir: '04.00'}\n"))
    assert r.config["output"]["dir"] == "04.00"


def test_grad_accum_zero_no_longer_trains_nothing_through_the_console_script(tmp_path):
    f = _write(tmp_path, QUICK + "train: {grad_accum: 0}\n")
    res = subprocess.run([str(EARTHMIND), "run", str(f)], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"earthmind run: error: {f}: train.grad_accum: must be >= 1")
