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
        return {"kind": "shuffled", "epoch": self.epoch, "position": self.position, "n": self.n, "seed": self.seed,
                "global_batch": self.global_batch}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind", "shuffled") != "shuffled":
            raise ValueError(f"sampler state was saved by a {state['kind']} sampler (train.balance), this run shuffles")
        for key in ("n", "seed", "global_batch"):
            if state[key] != getattr(self, key):
                raise ValueError(f"sampler state was saved with {key}={state[key]}, this run has {getattr(self, key)}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._epoch_order(self.epoch)


class BalancedSampler:
    """Batches whose mixture of groups (subtasks) follows how often the model still gets each wrong.

    A multi-task run on a small model can leave one subtask unlearned: the others' gradients
    drown its own and it sits at chance while they improve (the quickstart lost a different
    subtask per seed this way, though each learns within ~100 steps when trained alone). Each
    step here draws its global batch's group counts from ``floor * natural + (1 - floor) *
    weighted`` shares: the natural share is the group's share of the records; the weighted one
    is that times ``relative ** power``, where ``relative`` is the group's recent error rate (an
    exponential moving average over steps, fed back by :meth:`update`) divided by its ``chance``
    error, the error of answering without looking (1 - the most common answer's share for closed
    answers, 1 for masks). A subtask at chance weighs 1 whatever its number of answers, one
    learned weighs ~0, so a stuck one takes more of the batch until it learns (the more so the
    higher ``power``); ``floor`` keeps every group at least that fraction of its natural share.

    Within a group records come in permutations drawn from ``(seed, group, cycle)``; the counts
    from ``(seed, step)``. The state (step, each group's cycle and position, the averages) is
    small and saved with a checkpoint, so a resumed run continues the same sequence."""

    def __init__(self, groups: Sequence[str], batch_size: int, *, seed: int = 0, world: int = 1, rank: int = 0,
                 floor: float = 0.5, momentum: float = 0.9, power: float = 1.0,
                 chance: dict[str, float] | None = None):
        if not len(groups):
            raise ValueError("no records to sample from")
        if not 0.0 <= floor <= 1.0 or not 0.0 <= momentum < 1.0:
            raise ValueError(f"balance: floor must be in [0, 1] and momentum in [0, 1), got {floor}, {momentum}")
        self.batch_size, self.seed, self.world, self.rank = batch_size, seed, world, rank
        if power <= 0:
            raise ValueError(f"balance: power must be > 0, got {power}")
        self.floor, self.momentum, self.power = floor, momentum, power
        self.names = sorted({str(g) for g in groups})
        labels = np.array([self.names.index(str(g)) for g in groups])
        self.members = [np.flatnonzero(labels == k) for k in range(len(self.names))]
        self.natural = np.array([len(m) for m in self.members], float) / len(labels)
        self.chance = np.array([max(0.05, float((chance or {}).get(g, 1.0))) for g in self.names])
        self.n = len(labels)
        self.step = 0
        self.cycle = [0] * len(self.names)
        self.position = [0] * len(self.names)
        self.error: list[float | None] = [None] * len(self.names)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world

    def shares(self) -> np.ndarray:
        """This step's expected share of each group (in ``names`` order)."""
        seen = [v / c for v, c in zip(self.error, self.chance) if v is not None]
        fill = float(np.mean(seen)) if seen else 1.0  # a group not seen yet counts as average
        relative = np.array([fill if v is None else v / c for v, c in zip(self.error, self.chance)])
        weighted = self.natural * np.clip(relative, 0.0, 2.0) ** self.power
        weighted = weighted / weighted.sum() if weighted.sum() > 0 else self.natural
        return self.floor * self.natural + (1.0 - self.floor) * weighted

    def _order(self, k: int, cycle: int) -> np.ndarray:
        return self.members[k][np.random.default_rng([self.seed, k, cycle]).permutation(len(self.members[k]))]

    def _take(self, k: int, count: int) -> list[int]:
        out: list[int] = []
        while len(out) < count:
            order = self._order(k, self.cycle[k])
            got = order[self.position[k]:self.position[k] + count - len(out)]
            out += [int(i) for i in got]
            self.position[k] += len(got)
            if self.position[k] >= len(order):
                self.cycle[k], self.position[k] = self.cycle[k] + 1, 0
        return out

    def next(self) -> list[int]:
        """This rank's indices for the next step (every rank draws the same global batch)."""
        rng = np.random.default_rng([self.seed, 1 << 20, self.step])
        counts = rng.multinomial(self.global_batch, self.shares())
        batch = np.array([i for k, c in enumerate(counts) for i in self._take(k, int(c))])
        batch = batch[rng.permutation(len(batch))]
        self.step += 1
        start = self.rank * self.batch_size
        return [int(i) for i in batch[start:start + self.batch_size]]

    def update(self, group_errors: dict[str, tuple[float, int]]) -> None:
        """Fold one step's ``{group: (error sum, records)}`` (over the global batch) into the averages."""
        for name, (total, count) in group_errors.items():
            if count <= 0:
                continue
            k = self.names.index(name)
            mean = total / count
            prev = self.error[k]
            self.error[k] = mean if prev is None else self.momentum * prev + (1.0 - self.momentum) * mean

    def state_dict(self) -> dict:
        return {"kind": "balanced", "step": self.step, "cycle": list(self.cycle), "position": list(self.position),
                "error": list(self.error), "names": list(self.names), "n": self.n, "seed": self.seed,
                "global_batch": self.global_batch}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind", "shuffled") != "balanced":
            raise ValueError("sampler state was saved by a shuffling sampler, this run balances (train.balance)")
        for key in ("n", "seed", "global_batch", "names"):
            if state.get(key) != getattr(self, key):
                raise ValueError(f"sampler state was saved with {key}={state.get(key)}, this run has {getattr(self, key)}")
        self.step = int(state["step"])
        self.cycle, self.position = [int(c) for c in state["cycle"]], [int(p) for p in state["position"]]
        self.error = [None if v is None else float(v) for v in state["error"]]
