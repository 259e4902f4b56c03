"""A checkpoint or recipe never runs code: code-building payloads inserted at every nested mapping
of a real config.json and of real recipes (as a new key and in place of each existing value) fail
with one line, and a subprocess audit hook sees nothing created, opened for writing or imported.
A control case feeds the same payload to Hydra and must be seen, so the hook can fail the test."""
import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from earthmind_sdk.checkpoint import save
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec

HARNESS = Path(__file__).with_name("payload_harness.py")
ROOT = Path(__file__).resolve().parents[2]
EARTHMIND = Path(sys.executable).with_name("earthmind")


class _OpensAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _mappings(node, path=()):
    """(path, mapping) for every mapping in a JSON tree, the top included."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _mappings(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _mappings(v, path + (i,))


def _at(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def _variants(doc, payloads, interp):
    """Every nested mapping: payload as a new key, a bare _target_ key, and each existing value
    replaced by a payload (rotating) and by an interpolation string."""
    out = []
    n = 0
    for path, mapping in list(_mappings(doc)):
        where = ".".join(map(str, path)) or "<top>"
        for label, key, value in (("new key", "payload", payloads[n % len(payloads)]),
                                  ("_target_ key", "_target_", "os.makedirs")):
            d = copy.deepcopy(doc)
            _at(d, path)[key] = value
            out.append((f"{where}: {label}", d))
        for k in list(mapping):
            n += 1
            for label, value in (("value->payload", payloads[n % len(payloads)]), ("value->${}", interp)):
                d = copy.deepcopy(doc)
                _at(d, path)[k] = value
                out.append((f"{where}.{k}: {label}", d))
    return out


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    root = tmp_path_factory.mktemp("payloads")
    ckpt, sentinel, control = root / "ckpt", root / "sentinel", root / "control"
    for d in (sentinel, control, root / "pypath"):
        d.mkdir()
    raw = load_spec("tiny").to_dict()
    raw.update(sensors=["sar", "optical"], segment_sensor="sar",
               fusion={"name": "mma", "args": {"num_queries": 2, "reweight": False}})
    torch.manual_seed(0)
    save(build_model(raw).eval(), ckpt)
    with open(ckpt / "evil.pkl", "wb") as fh:
        pickle.dump(_OpensAFile(str(sentinel / "pickled")), fh)
    (root / "pypath" / "evil_payload_mod.py").write_text(
        f"open({str(sentinel / 'imported')!r}, 'w').close()\ndef boom(**kw):\n    pass\n")
    payloads = [
        {"_target_": "os.makedirs", "name": str(sentinel / "made"), "exist_ok": True},
        {"_target_": "shutil.copyfile", "src": str(ckpt / "config.json"), "dst": str(sentinel / "copied")},
        {"_target_": "torch.load", "f": str(ckpt / "evil.pkl"), "weights_only": False},
        {"_target_": "builtins.open", "file": str(sentinel / "opened"), "mode": "w"},
        {"_target_": "evil_payload_mod.boom"},
        {"deep": [{"_target_": "os.makedirs", "name": "${oc.env:HOME}/earthmind-payload"}]},
    ]
    interp = "${oc.env:HOME}"
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["earthmind"]["decoder"]["args"]["overrides"], "the real config must carry decoder overrides"
    cases = [{"kind": "config", "name": f"config.json {n}", "payload": json.dumps(d)}
             for n, d in _variants(cfg, payloads, interp)]
    # overrides reach the SAM2 builder as dotted keys: code through a dotted name, or a non-number
    for key, value in (("image_encoder._target_", "builtins.open"), ("image_encoder.trunk._target_", "os.system"),
                       ("image_size", "1024"), ("image_size", True), ("image_encoder.trunk.embed_dim", [8, "x"]),
                       ("memory_encoder.fuser.layer.layer_scale_init_value", 1e-6)):
        d = copy.deepcopy(cfg)
        d["earthmind"]["decoder"]["args"]["overrides"][key] = value
        cases.append({"kind": "config", "name": f"override {key}={value!r}", "payload": json.dumps(d)})
    d = copy.deepcopy(cfg)
    d["earthmind"]["decoder"]["args"]["config"] = "../../../../" + str(root / "x")
    cases.append({"kind": "config", "name": "decoder config path", "payload": json.dumps(d)})
    for recipe in ("recipes/quickstart.yaml", "recipes/eval/earthmind-bench.yaml"):
        doc = yaml.safe_load((ROOT / recipe).read_text())
        cases += [{"kind": "recipe", "name": f"{recipe} {n}", "payload": json.dumps(d)}
                  for n, d in _variants(doc, payloads, interp)]
    cases.append({"kind": "control", "name": "control", "payload": json.dumps(
        {"_target_": "os.makedirs", "name": str(control / "made")})})
    spec = root / "cases.json"
    spec.write_text(json.dumps({"checkpoint": str(ckpt), "cases": cases}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "pypath"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(HARNESS), str(spec), str(root / "out.json")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((root / "out.json").read_text())
    return {"results": results, "sentinel": sentinel, "control": control, "ckpt": ckpt, "root": root}


def test_every_payload_fails_cleanly_and_touches_nothing(crafted):
    results = [r for r in crafted["results"] if r["name"] != "control"]
    assert len(results) > 200
    bad = [r for r in results if not (r["error"] and r["error"][1] and "\n" not in r["error"][2])]
    assert not bad, bad[:5]
    touched = [r for r in results if r["events"]]
    assert not touched, touched[:5]
    assert os.listdir(crafted["sentinel"]) == []
    assert not (Path.home() / "earthmind-payload").exists()
    messages = {r["name"]: r["error"][2] for r in results}
    assert "'_target_' keys are not allowed" in messages["config.json earthmind.decoder.args.overrides: _target_ key"]
    assert "interpolation" in messages["config.json llm_config.hidden_size: value->${}"]
    assert "is not allowed; allowed keys" in messages["override image_encoder._target_='builtins.open'"]
    assert "number or a list of numbers" in messages["override image_size='1024'"]
    assert "not a SAM2 configuration" in messages["decoder config path"]


def test_the_audit_hook_sees_what_a_payload_does_when_it_reaches_hydra(crafted):
    control = next(r for r in crafted["results"] if r["name"] == "control")
    assert control["error"] is None and any(e.startswith("os.mkdir") for e in control["events"])
    assert os.listdir(crafted["control"]) == ["made"]


def test_crafted_checkpoint_through_the_console_script_is_one_line(crafted, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    for f in crafted["ckpt"].iterdir():
        (ckpt / f.name).symlink_to(f)
    cfg = json.loads((crafted["ckpt"] / "config.json").read_text())
    cfg["earthmind"]["decoder"]["args"]["overrides"]["image_encoder.trunk.embed_dim"] = {
        "_target_": "torch.load", "f": str(ckpt / "evil.pkl"), "weights_only": False}
    (ckpt / "config.json").unlink()
    (ckpt / "config.json").write_text(json.dumps(cfg))
    res = subprocess.run([str(EARTHMIND), "infer", "--model", str(ckpt), "--image",
                          str(ROOT / "tests/data/optical_rmnp_rgb.png"), "--out", str(tmp_path / "o"), "what?"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "'_target_' keys are not allowed" in res.stderr
    assert str(ckpt / "config.json") in res.stderr
    assert os.listdir(crafted["sentinel"]) == []
