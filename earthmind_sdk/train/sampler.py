"""Which records each step trains on: shuffled or length-grouped, sharded over ranks, resumable.

Every epoch is a permutation drawn from ``(seed, epoch)`` alone, so the order never depends on
what ran before and a resumed run only needs ``(epoch, position)`` - the sampler's whole state.
A step takes the next ``batch_size * world`` indices (the global batch) and rank ``r`` keeps its
``r``-th slice, so one process with ``batch_size * world`` sees exactly the same records.

Length grouping (as HF's ``group_by_length``): the permutation is cut into mega-batches of
``mega`` global batches, each sorted by length (longest first), so a batch holds records of
similar length and pads little, while batches still come in random order of sizes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


class BatchSampler:
    def __init__(self, n: int, batch_size: int, *, seed: int = 0, world: int = 1, rank: int = 0,
                 lengths: Sequence[int] | None = None, mega: int = 50):
        if n < 1:
            raise ValueError("no records to sample from")
        self.n, self.batch_size, self.seed, self.world, self.rank = n, batch_size, seed, world, rank
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.mega = mega
        self.epoch, self.position = 0, 0  # position: global batches already taken in this epoch
        self._order = self._epoch_order(0)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world

    def _epoch_order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        reps = -(-self.global_batch // self.n)  # fewer records than a global batch: each comes again
        perm = np.concatenate([rng.permutation(self.n) for _ in range(reps)])
        if self.lengths is not None:
            size = self.mega * self.global_batch
            chunks = [perm[i:i + size] for i in range(0, len(perm), size)]
            perm = np.concatenate([c[np.argsort(-self.lengths[c], kind="stable")] for c in chunks])
        usable = len(perm) - len(perm) % self.global_batch  # drop the ragged tail: every batch is full
        return perm[:usable]

    def next(self) -> list[int]:
        """This rank's indices for the next step."""
        if (self.position + 1) * self.global_batch > len(self._order):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._epoch_order(self.epoch)
        start = self.position * self.global_batch + self.rank * self.batch_size
        self.position += 1
        return [int(i) for i in self._order[start:start + self.batch_size]]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "n": self.n, "seed": self.seed,
                "global_batch": self.global_batch}

    def load_state_dict(self, state: dict) -> None:
        for key in ("n", "seed", "global_batch"):
            if state[key] != getattr(self, key):
                raise ValueError(f"sampler state was saved with {key}={state[key]}, this run has {getattr(self, key)}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._epoch_order(self.epoch)
