"""Run under torchrun by test_distributed.py: for each sharding mode, one accumulation step of
the tiny model on this rank's share of a fixed global batch; rank 0 saves the loss parts and the
whole gradients per mode."""
import os
import sys

import torch


def main(out: str, modes: list[str]) -> None:
    from earthmind_sdk.train.runner import _dist_init

    _dist_init()
    from earthmind_sdk.jobs.open_model import open_model
    from layouts import global_batch
    from earthmind_sdk.train.trainer import Trainer, TrainConfig

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    records = global_batch()
    per = len(records) // world
    results = {}
    for mode in modes:
        torch.manual_seed(0)
        model, tok = open_model("tiny")
        cfg = TrainConfig(batch_size=per, grad_accum=2, freeze=(), num_points=64, seed=0, shard=mode)
        trainer = Trainer(model, tok, cfg)
        logged = trainer.accumulate(records[rank * per:(rank + 1) * per])
        results[mode] = {"logged": logged, "grads": trainer.full_gradients()}
    if rank == 0:
        torch.save(results, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","))
