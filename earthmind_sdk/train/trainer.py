"""Supervised fine-tuning with EarthMind's losses, on one process or many under torchrun.

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) each rank takes its slice of every global
batch (:mod:`.sampler`) and gradients are summed with one all-reduce per step (gloo on CPU,
NCCL on GPU). The model's stages are called as separate methods (encode, fuse, embed, LM,
SAM2), which a DDP wrapper would not see, so the all-reduce is explicit.

Every loss is normalised by its count over the whole global batch (answer tokens for the LM
loss, segmented samples for the mask losses, ``[SEG]`` rows for SAP), counted before the first
micro-batch runs: so gradient accumulation and any number of processes give the gradient of
one process on the same global batch, not a mean of per-micro-batch means.
"""
from __future__ import annotations

import contextlib
import math
import os
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from ..contracts import Record
from ..eval.metrics import MaskIoU
from ..model.batching import BatchBuilder
from .distributed import SHARDING, clip_grad_norm, full_tensor, is_sharded, shard_fsdp2
from .losses import DEFAULT_WEIGHTS, combine, mask_losses


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
    sap_focus: bool = False             # SAP also from a closed answer's position to its record's focus mask
    log_every: int = 10
    seed: int = 0
    save_every: int = 0                 # checkpoint every N steps under output.dir/checkpoints (0: never)
    keep_last: int = 2                  # checkpoints kept (0: all)
    resume: bool = False                # continue from the run folder's latest checkpoint
    group_by_length: bool = False       # length-grouped batches (less padding)
    autocast: str = "bf16"              # bf16 autocast on GPU for float32 weights; "none" to disable
    gradient_checkpointing: bool = False
    tensorboard: bool = True            # TensorBoard events beside the JSON-lines log, when installed
    shard: str = "replicate"            # "fsdp2": shard weights, grads and optimizer state (full fine-tuning)
    lr_scale: dict | None = None        # {submodule path: factor of lr}, e.g. {"grounding_encoder": 0.5}
    sensor_dropout: dict | None = None  # {sensor: probability its image is removed from a closed question that does not need it}
    balance: dict | None = None         # {floor, momentum, power}: batches mixed by each subtask's recent error (.sampler.BalancedSampler)


def causal_lm_loss(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy over labelled positions (mean over tokens, as HF computes it),
    from the last (normed) hidden states: the vocabulary head runs on the positions that predict
    a label only, not on every column a left-padded batch shares (151,680 logits a position)."""
    return causal_lm_token_losses(head, hidden, labels)[0].mean()


def causal_lm_token_losses(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`causal_lm_loss` before the mean: each labelled token's cross-entropy, the sample
    it belongs to, and whether the head's top token is the label (teacher-forced)."""
    targets = labels[:, 1:]
    picked = targets != -100
    logits = head(hidden[:, :-1][picked])
    wanted = targets[picked]
    losses = torch.nn.functional.cross_entropy(logits.float(), wanted, reduction="none")
    return losses, picked.nonzero()[:, 0], logits.detach().argmax(-1) == wanted


def lr_factor(step: int, total: int, warmup_ratio: float) -> float:
    """Linear warm-up over ``warmup_ratio`` of the steps, then cosine to zero."""
    warm = max(1, int(total * warmup_ratio))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _submodule(model, path: str, key: str):
    """``model``'s submodule at a dotted path; an unknown path is a one-line error."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ValueError(f"{key}: model has no submodule {path!r}") from None


def apply_lora(model, lora: dict) -> None:
    """LoRA on the language model through peft (r, alpha, dropout, target module names)."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=int(lora.get("r", 128)), lora_alpha=int(lora.get("alpha", 256)),
                     lora_dropout=float(lora.get("dropout", 0.05)),
                     target_modules=list(lora.get("targets", ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])),
                     task_type="CAUSAL_LM")
    model.language_model = get_peft_model(model.language_model, cfg)


def enable_gradient_checkpointing(model) -> None:
    """Recompute activations in the backward pass of every HF submodule that supports it
    (the LLM and the vision encoder): less memory, about a third more compute."""
    found = False
    for module in model.modules():
        if module is not model and getattr(module, "supports_gradient_checkpointing", False):
            kw = {"use_reentrant": False}
            if hasattr(module, "activation_checkpointing_enable"):  # transformers >= 5.x name
                module.activation_checkpointing_enable(activation_checkpointing_kwargs=kw)
            else:
                module.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
            found = True
    if not found:
        raise ValueError("train.gradient_checkpointing: no submodule of this model supports it")


# which count each loss is normalised by (see the module docstring)
LOSS_COUNT = {"lm": "tokens", "mask": "seg_samples", "dice": "seg_samples", "sap": "seg_rows"}


class Trainer:
    def __init__(self, model, tokenizer, config: TrainConfig, **builder_kw):
        self.model = model
        self.cfg = config
        torch.manual_seed(config.seed)
        for prefix in config.freeze:  # dotted paths: grounding_encoder.sam2_model.image_encoder
            _submodule(model, prefix, "train.freeze").requires_grad_(False)
        if config.lora:
            apply_lora(model, config.lora)
        if config.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        self._tokens = self._step = 0
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.dropout_rng = random.Random(config.seed + 7919 * self.rank)
        if self.world > 1:  # start every replica from rank 0's weights, as DDP does
            import torch.distributed as dist

            for p in model.parameters():
                dist.broadcast(p.data, src=0)
        if config.shard not in SHARDING:
            raise ValueError(f"train.shard: {config.shard!r}; choose one of {', '.join(SHARDING)}")
        self.units = []
        if config.shard == "fsdp2":
            if config.lora:
                raise ValueError("train.shard=fsdp2 is for full fine-tuning; LoRA runs use the default (replicate)")
            self.units = shard_fsdp2(model)
        self.builder = BatchBuilder(model, tokenizer, **builder_kw)
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for p in model.parameters() if p.requires_grad]
        # fused AdamW: one pass over each tensor instead of ~10 (the tied 151k-row embedding of
        # the tiny models makes the optimizer a large share of a CPU step); FSDP2 shards: per tensor
        fused = not self.units and bool(self.params) and all(
            p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in self.params)
        self.opt = torch.optim.AdamW(self._param_groups(), lr=config.lr, betas=tuple(config.betas),
                                     weight_decay=config.weight_decay, fused=fused or None,
                                     foreach=False if self.units else None)

    def _param_groups(self) -> list[dict[str, Any]]:
        """One optimizer group per ``lr_scale`` entry (its parameters' lr = factor x lr), the
        rest in a group of factor 1; the factor is kept so the schedule can apply to each."""
        scales = dict(self.cfg.lr_scale or {})
        taken: set[int] = set()
        groups = []
        for path, factor in scales.items():
            params = [p for p in _submodule(self.model, path, "train.lr_scale").parameters()
                      if p.requires_grad and id(p) not in taken]
            taken.update(id(p) for p in params)
            if params:
                groups.append({"params": params, "scale": float(factor)})
        rest = [p for p in self.params if id(p) not in taken]
        return [{"params": rest, "scale": 1.0}, *groups] if rest else groups

    def _dropout(self, records: list[Record]) -> list:
        """The records' samples, with each sensor named in ``sensor_dropout`` removed at its
        probability in closed questions (masks are learned on the real images), so the model
        learns to answer from the sensors that remain, as the evaluation's ablation asks; never
        a sensor the record ``needs`` (without it the answer is not in the images)."""
        drop = self.cfg.sensor_dropout or {}
        samples = []
        for i, r in enumerate(records):
            off = [s for s, p in drop.items() if not r.masks and self.dropout_rng.random() < p
                   and s in r.sample.images and s not in r.needs]
            if len(off) == len(r.sample.images):
                off = off[:-1]  # never every sensor
            samples.append(self.builder.ablate(r.sample, i, off) if off else r.sample)
        return samples

    # -- one step --------------------------------------------------------------------------
    def losses(self, records: list[Record]) -> dict[str, torch.Tensor]:
        model, ids = self.model, self.builder.ids
        batch = self.builder.build(self._dropout(records), [r.answer for r in records])
        seg_pos = (batch.input_ids == ids["seg"]) & (batch.labels != -100)
        rows = self._sap_rows(batch, seg_pos, records) if self.cfg.sap else []
        capture = contextlib.nullcontext()
        if rows:
            from ..model.fusion.sap import LastLayerQK

            capture = LastLayerQK(model.language_model)
        self._tokens += int(batch.attention_mask.sum())
        with capture as cap, self._autocast():
            out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                        image_embeds=batch.image_embeds, position_ids=batch.position_ids,
                        output_hidden_states=True, logits_to_keep=1)  # the loss takes its own logits
        token_losses, owner, right = causal_lm_token_losses(model.language_model.get_output_embeddings(),
                                                            out.hidden_states[-1], batch.labels)
        parts = {"lm": token_losses.mean()}
        # each record's error (what train.balance feeds on): 1 when any answer token is not the
        # head's top pick, teacher-forced; a mask's 1 - IoU where that is larger
        wrong = torch.zeros(len(records), device=owner.device).index_add_(0, owner, (~right).float())
        errors = (wrong > 0).float()
        if cap is not None:
            parts["sap"] = self._sap(cap, batch, rows, records)
        if seg_pos.any() and getattr(model, "grounding_encoder", None) is not None:
            dev = self.builder.device
            logits = self.mask_logits(batch, out.hidden_states[-1], seg_pos, records)
            ce, dice = [], []
            for b, (lg, rec) in enumerate(zip(logits, records)):
                if lg is None:
                    continue
                c, d = mask_losses(lg, torch.as_tensor(np.stack(rec.masks)).to(dev), num_points=self.cfg.num_points,
                                   generator=self._points_generator(rec, dev))
                ce.append(c)
                dice.append(d)
                iou = MaskIoU()
                for pred, target in zip((lg.detach() > 0).cpu().numpy(), rec.masks):
                    iou.add(pred, target)
                errors[b] = max(float(errors[b]), 1.0 - iou.result()["gIoU"])
            parts["mask"] = torch.stack(ce).mean()
            parts["dice"] = torch.stack(dice).mean()
        self._record_errors = errors.tolist()
        return parts

    def mask_logits(self, batch, hidden: torch.Tensor, seg_pos: torch.Tensor,
                    records: list[Record]) -> list[torch.Tensor | None]:
        """Each record's mask logits at its target masks' size, from the last-layer hidden states
        at its ``[SEG]`` positions: inference's mask path (``BatchBuilder.mask_logits``)."""
        seg_hidden: list[torch.Tensor | None] = []
        for b, rec in enumerate(records):
            n = int(seg_pos[b].sum())
            if n and n != len(rec.masks):
                raise ValueError(f"record {rec.sample.id}: {n} [SEG] tokens but {len(rec.masks)} masks")
            seg_hidden.append(hidden[b][seg_pos[b]] if n else None)
        sizes = [tuple(rec.masks[0].shape) if rec.masks else None for rec in records]
        return self.builder.mask_logits(batch.encoded, seg_hidden, sizes)

    def _sap_rows(self, batch, seg_pos: torch.Tensor, records: list[Record]) -> list[tuple[int, int, Any]]:
        """(sample, position, mask) for each attention target: every [SEG] with its mask and, with
        ``sap_focus``, the position that predicts a closed answer's first token with the record's
        focus mask (what the question asks about)."""
        rows = []
        for b, rec in enumerate(records):
            rows += [(b, at, m) for at, m in zip(seg_pos[b].nonzero()[:, 0].tolist(), rec.masks)]
        if self.cfg.sap_focus:
            for b, rec in enumerate(records):
                if rec.focus is not None and not rec.masks:
                    first = int((batch.labels[b] != -100).nonzero()[0, 0])
                    rows.append((b, first - 1, rec.focus))
        return rows

    def _sap(self, cap, batch, rows: list[tuple[int, int, Any]], records: list[Record]) -> torch.Tensor:
        """Spatial Attention Prompting from the last layer's queries at ``rows`` (see
        :meth:`_sap_rows`) to the image tokens' keys.

        Each row's target is its mask max-pooled to the token grid; when the image tokens
        hold several grids (one per joined sensor), the target is laid on each and renormalised.
        When the fusion pruned tokens, the target is gathered at the kept tokens (the fusion's
        ``source_index``) and renormalised; a row whose object was pruned away entirely has no
        target and adds nothing (the loss stays a mean over all rows, as counted). A token
        count that is not whole grids is refused; tiles are not told apart from sensors, so each
        tile of a multi-tile image gets the whole mask's target."""
        from ..model.fusion.dispatch import sap_loss
        from ..model.fusion.sap import sap_target_for_tokens

        img = batch.input_ids == self.builder.ids["img_context"]
        counts = img.sum(1)
        if not bool((counts == counts[0]).all()):
            raise ValueError("SAP needs the same number of image tokens in every sample of a batch")
        grid = tuple(self.model.token_grid)
        n_img = int(counts[0])
        img_pos = torch.stack([row.nonzero()[:, 0] for row in img])
        dev = batch.input_ids.device
        targets, kept = [], []
        for b, _, m in rows:
            rec = records[b]
            fused = batch.encoded[b].fusion
            source = None if fused is None or fused.source_index is None else fused.source_index[0]
            if source is not None and source.shape[0] != n_img:
                raise ValueError(f"SAP: record {rec.sample.id} has {n_img} image tokens but its fusion kept "
                                 f"{source.shape[0]} (region prompts with token pruning are not supported)")
            n_full = n_img if fused is None else fused.full_length
            t = sap_target_for_tokens(m, grid, n_full, source)
            kept.append(t is not None)
            if t is not None:
                targets.append(t)
        if not targets:
            return torch.zeros((), device=dev)
        keep = [r for r, k in zip(rows, kept) if k]
        row_b = torch.tensor([b for b, _, _ in keep], device=dev)
        row_at = torch.tensor([at for _, at, _ in keep], device=dev)
        q, k = cap.qk(row_b, row_at)
        loss = sap_loss(q, k, row_b, row_at, img_pos, torch.stack(targets).to(q.device),
                        key_mask=batch.attention_mask.bool())
        return loss * (len(targets) / len(kept))

    def _autocast(self):
        on_gpu = self.builder.device.type == "cuda" and self.builder.dtype == torch.float32
        if self.cfg.autocast == "bf16" and on_gpu:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def counts(self, records: list[Record]) -> dict[str, int]:
        """What each loss is averaged over, for these records (before running them)."""
        stop = self.builder.prompts.stop_words[0]
        tokens = sum(len(self.builder.tokenizer(r.answer + stop, add_special_tokens=False)["input_ids"])
                     for r in records)
        seg = getattr(self.model, "grounding_encoder", None) is not None
        focus = sum(1 for r in records if self.cfg.sap_focus and r.focus is not None and not r.masks)
        return {"tokens": tokens, "seg_samples": sum(1 for r in records if seg and r.masks),
                "seg_rows": sum(len(r.masks) for r in records if seg) + focus, "records": len(records)}

    def _points_generator(self, rec: Record, device) -> torch.Generator:
        """The mask-loss points of a record depend on (seed, step, record) only: the same on
        any number of processes or micro-batches, and again after a resume."""
        key = zlib.crc32(f"{self.cfg.seed}:{self._step}:{rec.sample.id}".encode())
        return torch.Generator(device=device).manual_seed(key)

    def step(self, step: int, records: list[Record]) -> dict[str, float]:
        """One optimizer step on this rank's ``records`` (its share of the global batch)."""
        self._step = step
        logged = self.accumulate(records)
        norm = clip_grad_norm(self.params, self.cfg.grad_clip, self.world)
        for group in self.opt.param_groups:
            group["lr"] = group["scale"] * self.cfg.lr * lr_factor(step, self.cfg.steps, self.cfg.warmup_ratio)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        logged["grad_norm"] = float(norm)
        logged["lr"] = self.cfg.lr * lr_factor(step, self.cfg.steps, self.cfg.warmup_ratio)
        return logged

    def accumulate(self, records: list[Record]) -> dict[str, float]:
        """Forward and backward over ``grad_accum`` micro-batches; leaves every process holding
        the gradient of the whole global batch. Returns the global loss parts."""
        self.model.train()
        chunks = [records[i::self.cfg.grad_accum] for i in range(self.cfg.grad_accum)]
        counts = [self.counts(c) for c in chunks]
        keys = ("tokens", "seg_samples", "seg_rows", "records")
        total = torch.tensor([float(sum(c[k] for c in counts)) for k in keys], dtype=torch.float64)
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(total)
        total = dict(zip(keys, total.tolist()))
        weights = {**DEFAULT_WEIGHTS, **(self.cfg.loss_weights or {})}
        parts_sum: dict[str, float] = {}
        self._tokens = 0
        self.record_errors = [0.0] * len(records)  # each record's error (see losses), in ``records`` order
        for i, (chunk, n) in enumerate(zip(chunks, counts)):
            parts = self.losses(chunk)
            self.record_errors[i::self.cfg.grad_accum] = self._record_errors
            share = {k: n[LOSS_COUNT.get(k, "records")] / max(1.0, total[LOSS_COUNT.get(k, "records")])
                     for k in parts}
            report = combine({k: v * share[k] for k, v in parts.items()}, self.cfg.loss_weights)
            report.total.backward()
            for k, v in report.parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v
        names = sorted(LOSS_COUNT.keys() | parts_sum.keys())
        summed = torch.tensor([parts_sum.get(k, 0.0) for k in names] + [float(self._tokens)], dtype=torch.float64)
        if self.world > 1:
            for p in self.params:
                if is_sharded(p):
                    continue  # FSDP2 reduce-scattered it in backward
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad)
            dist.all_reduce(summed)
        present = {k for k in names if k in parts_sum}
        if self.world > 1:  # a part some rank computed is in the global mean even if this rank had none
            flags = torch.tensor([1.0 if k in present else 0.0 for k in names])
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            present = {k for k, f in zip(names, flags.tolist()) if f}
        logged = {k: float(v) for k, v in zip(names, summed.tolist()) if k in present}
        logged["loss"] = sum(weights[k] * v for k, v in logged.items())
        logged["tokens"] = int(summed[-1])
        return logged

    def fit(self, records: Iterable[Record], log_path: Path | None = None, **loop: Any) -> list[dict[str, Any]]:
        """Train on ``records``; ``loop`` takes :func:`.loop.fit`'s options (run folder,
        checkpoints, resume, length grouping, progress)."""
        from .loop import fit

        return fit(self, records, log_path=log_path, **loop)

    def full_gradients(self) -> dict[str, torch.Tensor]:
        """Every trainable parameter's whole gradient (zeros where none), on every rank."""
        return {n: (full_tensor(p.grad) if p.grad is not None else torch.zeros(p.shape, dtype=p.dtype)).detach().clone()
                for n, p in zip(self.names, self.params)}

    def check_replicas(self) -> None:
        """Every rank must hold the same replicated weights after training; a divergence is an
        error (sharded weights have one copy each: nothing to compare)."""
        import torch.distributed as dist

        local = torch.stack([p.detach().double().sum() for p in self.params if not is_sharded(p)]
                            or [torch.zeros((), dtype=torch.float64)]).sum().reshape(1)
        gathered = [torch.zeros_like(local) for _ in range(self.world)]
        dist.all_gather(gathered, local)
        values = [float(g) for g in gathered]
        if max(values) - min(values) > 1e-6 * max(1.0, abs(values[0])):
            raise RuntimeError(f"replicas diverged after training: parameter sums per rank {values}")
