"""Two CPU processes (torchrun, gloo) compute the loss and gradients of one process on the same
global batch, within 1e-6 relative in fp32: with gradient accumulation on each rank, for the
replicated (DDP-style) path and for FSDP2 sharding."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from earthmind_sdk.jobs.open_model import open_model
from earthmind_sdk.train.trainer import Trainer, TrainConfig

WORKER = Path(__file__).with_name("dist_worker.py")


@pytest.fixture
def one_process(layouts_module):
    torch.manual_seed(0)
    model, tok = open_model("tiny")
    records = layouts_module.global_batch()
    trainer = Trainer(model, tok, TrainConfig(batch_size=8, grad_accum=1, freeze=(), num_points=64, seed=0))
    logged = trainer.accumulate(records)
    return logged, trainer.full_gradients()


def test_two_processes_equal_one_process(tmp_path, one_process):
    out = tmp_path / "rank0.pt"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(WORKER), str(out), "replicate,fsdp2"], capture_output=True, text=True, timeout=600,
                         env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    results = torch.load(out, weights_only=True)
    assert set(results) == {"replicate", "fsdp2"}
    for mode, got in results.items():
        _check(mode, got, *one_process)


def _check(mode, got, logged, grads):
    for key in ("lm", "mask", "dice", "loss"):
        assert got["logged"][key] == pytest.approx(logged[key], rel=1e-6), (mode, key)
    assert got["logged"]["tokens"] == logged["tokens"]
    assert got["grads"].keys() == grads.keys()
    a = torch.cat([got["grads"][k].flatten() for k in grads])
    b = torch.cat([grads[k].flatten() for k in grads])
    assert b.norm() > 0
    assert float((a - b).norm() / b.norm()) < 1e-6, mode
