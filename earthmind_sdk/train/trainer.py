"""Supervised fine-tuning with EarthMind's losses, on one process or many under torchrun.

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) each rank takes every world-size-th
record and gradients are averaged with one all-reduce per step (gloo on CPU, NCCL on GPU).
The model's stages are called as separate methods (encode, fuse, embed, LM, SAM2), which a
DDP wrapper would not see, so the all-reduce is explicit.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from ..batching import BatchBuilder
from .data import Record
from .losses import combine, mask_losses


@dataclass
class TrainConfig:
    steps: int = 100
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 4e-5
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_ratio: float = 0.05
    grad_clip: float = 1.0
    freeze: tuple[str, ...] = ("vision_model",)
    lora: dict | None = None
    loss_weights: dict | None = None
    num_points: int = 12544
    sap: bool = False
    log_every: int = 10
    seed: int = 0


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy over labelled positions (mean over tokens, as HF computes it)."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    return torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                             shift_labels.reshape(-1), ignore_index=-100)


def lr_factor(step: int, total: int, warmup_ratio: float) -> float:
    """Linear warm-up over ``warmup_ratio`` of the steps, then cosine to zero."""
    warm = max(1, int(total * warmup_ratio))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def apply_lora(model, lora: dict) -> None:
    """LoRA on the language model through peft (r, alpha, dropout, target module names)."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=int(lora.get("r", 128)), lora_alpha=int(lora.get("alpha", 256)),
                     lora_dropout=float(lora.get("dropout", 0.05)),
                     target_modules=list(lora.get("targets", ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])),
                     task_type="CAUSAL_LM")
    model.language_model = get_peft_model(model.language_model, cfg)


class Trainer:
    def __init__(self, model, tokenizer, config: TrainConfig, **builder_kw):
        self.model = model
        self.cfg = config
        torch.manual_seed(config.seed)
        for prefix in config.freeze:
            sub = getattr(model, prefix, None)
            if sub is None:
                raise ValueError(f"train.freeze: model has no submodule {prefix!r}")
            sub.requires_grad_(False)
        if config.lora:
            apply_lora(model, config.lora)
        self.builder = BatchBuilder(model, tokenizer, **builder_kw)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=config.lr, betas=tuple(config.betas),
                                     weight_decay=config.weight_decay)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:  # start every replica from rank 0's weights, as DDP does
            import torch.distributed as dist

            for p in model.parameters():
                dist.broadcast(p.data, src=0)

    # -- one step --------------------------------------------------------------------------
    def losses(self, records: list[Record]) -> dict[str, torch.Tensor]:
        model, ids = self.model, self.builder.ids
        batch = self.builder.build([r.sample for r in records], [r.answer for r in records])
        seg_pos = (batch.input_ids == ids["seg"]) & (batch.labels != -100)
        capture = contextlib.nullcontext()
        if self.cfg.sap and seg_pos.any():
            from ..model.fusion.sap import LastLayerQK

            capture = LastLayerQK(model.language_model)
        # answers sit at the end of the left-padded rows: only the last `keep` positions need
        # vocabulary logits (151k x L logits would dominate time and memory otherwise)
        answer_cols = (batch.labels != -100).any(0).nonzero()
        keep = batch.labels.shape[1] - int(answer_cols[0]) + 1 if len(answer_cols) else 1
        with capture as cap:
            out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                        image_embeds=batch.image_embeds, position_ids=batch.position_ids,
                        output_hidden_states=True, logits_to_keep=keep)
        parts = {"lm": causal_lm_loss(out.logits, batch.labels[:, -keep:])}
        if cap is not None:
            parts["sap"] = self._sap(cap, batch, seg_pos, records)
        if seg_pos.any() and getattr(model, "grounding_encoder", None) is not None:
            hidden = out.hidden_states[-1]
            images, prompts, sizes, targets = [], [], [], []
            target_sensor = self.builder.spec.segment_sensor
            for b, rec in enumerate(records):
                n = int(seg_pos[b].sum())
                if n == 0:
                    continue
                if n != len(rec.masks):
                    raise ValueError(f"record {rec.sample.id}: {n} [SEG] tokens but {len(rec.masks)} masks")
                imgs = batch.encoded[b].images
                image = imgs[target_sensor] if target_sensor in imgs else next(iter(imgs.values()))
                images.append(model.preprocess_sam(image.frames[0]))
                prompts.append(model.seg_prompts(hidden[b][seg_pos[b]]))
                sizes.append(tuple(rec.masks[0].shape))
                targets.append(torch.as_tensor(np.stack(rec.masks)))
            dev, dt = self.builder.device, self.builder.dtype
            logits = model.decode_masks(torch.stack(images).to(dev, dt), prompts, sizes, gate_no_object=False)
            ce, dice = [], []
            for lg, tg in zip(logits, targets):
                c, d = mask_losses(lg, tg.to(dev), num_points=self.cfg.num_points, generator=None)
                ce.append(c)
                dice.append(d)
            parts["mask"] = torch.stack(ce).mean()
            parts["dice"] = torch.stack(dice).mean()
        return parts

    def _sap(self, cap, batch, seg_pos: torch.Tensor, records: list[Record]) -> torch.Tensor:
        """Spatial Attention Prompting from the last layer's [SEG]-row queries and keys.

        Each [SEG] row's target is its mask max-pooled to the token grid; when the image tokens
        hold several grids (one per fused sensor), the target is laid on each and renormalised.
        Multi-tile images have no single grid and are refused."""
        from ..model.fusion.dispatch import sap_loss
        from ..model.fusion.sap import sap_target_from_mask

        img = batch.input_ids == self.builder.ids["img_context"]
        counts = img.sum(1)
        if not bool((counts == counts[0]).all()):
            raise ValueError("SAP needs the same number of image tokens in every sample of a batch")
        grid = tuple(self.model.token_grid)
        cells = grid[0] * grid[1]
        n_img = int(counts[0])
        if n_img % cells:
            raise ValueError(f"SAP: {n_img} image tokens are not whole {grid} token grids (multi-tile input?)")
        img_pos = torch.stack([row.nonzero()[:, 0] for row in img])
        seg_batch, seg_at = seg_pos.nonzero(as_tuple=True)
        targets = []
        for b, rec in enumerate(records):
            for m in rec.masks[: int(seg_pos[b].sum())]:
                t = sap_target_from_mask(torch.as_tensor(m)[None], grid)[0]
                targets.append(t.repeat(n_img // cells) / (n_img // cells))
        q, k = cap.qk(seg_batch, seg_at)
        return sap_loss(q, k, seg_batch, seg_at, img_pos, torch.stack(targets).to(q.device),
                        key_mask=batch.attention_mask.bool())

    def step(self, step: int, records: list[Record]) -> dict[str, float]:
        self.model.train()
        chunks = [records[i::self.cfg.grad_accum] for i in range(self.cfg.grad_accum)]
        logged: dict[str, float] = {}
        for chunk in chunks:
            report = combine(self.losses(chunk), self.cfg.loss_weights)
            (report.total / self.cfg.grad_accum).backward()
            for k, v in report.parts.items():
                logged[k] = logged.get(k, 0.0) + v / self.cfg.grad_accum
        if self.world > 1:
            import torch.distributed as dist

            for p in self.params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad)
                p.grad /= self.world
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.lr * lr_factor(step, self.cfg.steps, self.cfg.warmup_ratio)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        logged["grad_norm"] = float(norm)
        logged["lr"] = self.opt.param_groups[0]["lr"]
        return logged

    def fit(self, records: Iterable[Record], log_path: Path | None = None, progress: Any = None,
            desc: str = "train") -> list[dict[str, Any]]:
        """Train for ``cfg.steps`` steps; ``log_path`` gets a JSON line every ``log_every`` steps;
        ``progress`` (rank 0 only) as in :mod:`earthmind_sdk.jobs.progress`."""
        from ..jobs.progress import Progress

        data = list(records)[self.rank::self.world]
        if not data:
            raise ValueError("no training records for this rank")
        rng = random.Random(self.cfg.seed + self.rank)
        order: list[int] = []
        history = []
        if log_path is not None and self.rank == 0:
            log_path.write_text("")  # one run per log
        t0 = time.perf_counter()
        bar = Progress(self.cfg.steps, desc, progress=progress if self.rank == 0 else False, unit="step")
        for step in range(self.cfg.steps):
            if len(order) < self.cfg.batch_size:
                more = list(range(len(data)))
                rng.shuffle(more)
                order.extend(more)
            picked, order = order[:self.cfg.batch_size], order[self.cfg.batch_size:]
            logged = self.step(step, [data[i] for i in picked])
            logged.update(step=step, elapsed_s=round(time.perf_counter() - t0, 3))
            history.append(logged)
            if log_path is not None and self.rank == 0 and (step % self.cfg.log_every == 0 or step == self.cfg.steps - 1):
                with open(log_path, "a") as fh:
                    fh.write(json.dumps(logged) + "\n")
            bar.update()
        bar.close()
        if self.world > 1:
            self.check_replicas()
        return history

    def check_replicas(self) -> None:
        """Every rank must hold the same weights after training; a divergence is an error."""
        import torch.distributed as dist

        local = torch.stack([p.detach().double().sum() for p in self.params]).sum().reshape(1)
        gathered = [torch.zeros_like(local) for _ in range(self.world)]
        dist.all_gather(gathered, local)
        values = [float(g) for g in gathered]
        if max(values) - min(values) > 1e-6 * max(1.0, abs(values[0])):
            raise RuntimeError(f"replicas diverged after training: parameter sums per rank {values}")
