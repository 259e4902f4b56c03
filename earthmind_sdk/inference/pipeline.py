"""Batched EarthMind inference: one padded ``generate`` per batch and one SAM2 pass for all
``[SEG]`` tokens of the batch (each image encoded once, however many ``[SEG]`` it has)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable, Sequence

import torch

from ..contracts import Result, Sample
from ..model.batching import Batch, BatchBuilder, Encoded, positions


class Pipeline:
    """A model, its tokenizer and its sensors, answering batches of :class:`Sample` s."""

    def __init__(self, model, tokenizer, **kw):
        self.model = model.eval()
        self.builder = BatchBuilder(model, tokenizer, **kw)
        self.tokenizer = tokenizer
        self.ids = self.builder.ids

    @property
    def sensor_names(self) -> list[str]:
        return self.builder.sensor_names

    def sensor(self, name: str):
        return self.builder.sensor(name)

    @classmethod
    def from_pretrained(cls, path, *, dtype=None, device="cpu", **kw) -> "Pipeline":
        """Load an HF-format EarthMind / Sa2VA checkpoint directory and its tokenizer."""
        from ..jobs.open_model import open_model

        model, tokenizer = open_model(str(path), checkpoint=str(path), dtype=dtype, device=device)
        return cls(model, tokenizer, **kw)

    # -- public API ------------------------------------------------------------------------
    @torch.no_grad()
    def logits(self, samples: Sequence[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt logits (B, L, V) and attention mask from the batched forward (no generation)."""
        batch = self.builder.build(samples)
        out = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                         image_embeds=batch.image_embeds, position_ids=batch.position_ids)
        return out.logits, batch.attention_mask

    @torch.no_grad()
    def __call__(self, samples: Sample | Iterable[Sample], *, batch_size: int = 8,
                 max_new_tokens: int = 64) -> list[Result] | Result:
        single = isinstance(samples, Sample)
        items = [samples] if single else list(samples)
        results: list[Result] = []
        for start in range(0, len(items), batch_size):
            results.extend(self._run_batch(items[start:start + batch_size], max_new_tokens))
        return results[0] if single else results

    def chat(self, sample: Sample, **kw) -> Result:
        """Answer, and append the turn to ``sample.history`` so the next question sees it."""
        result = self(sample, **kw)
        sample.history.append((sample.prompt, result.answer))
        result.history = list(sample.history)
        return result

    # -- one batch -------------------------------------------------------------------------
    def _run_batch(self, samples: list[Sample], max_new_tokens: int) -> list[Result]:
        timings: dict[str, float] = {}
        with _timed(timings, "encode"):
            batch = self.builder.build(samples)
            embeds = self.model.embed(batch.input_ids, batch.image_embeds)
        with _timed(timings, "generate"):
            # with inputs_embeds only, generate returns just the new tokens
            new_tokens = self.model.language_model.generate(
                inputs_embeds=embeds, attention_mask=batch.attention_mask, max_new_tokens=max_new_tokens,
                do_sample=False, eos_token_id=self.ids["eos"], pad_token_id=self.ids["pad"],
                stop_strings=list(self.builder.prompts.stop_words), tokenizer=self.tokenizer,
            )
        answers_ids = [_cut(row.tolist(), self.ids["eos"], self.ids["pad"]) for row in new_tokens]
        seg_id = self.ids["seg"]
        seg_hidden: list[torch.Tensor | None] = [None] * len(samples)
        with _timed(timings, "seg_states"):
            if any(seg_id in ids for ids in answers_ids):
                hidden = self._answer_hidden(embeds, batch, new_tokens)
                for b, ids in enumerate(answers_ids):
                    pos = [t for t, tok in enumerate(ids) if tok == seg_id]
                    seg_hidden[b] = hidden[b, pos]
        with _timed(timings, "masks"):
            masks = self._masks(batch.encoded, seg_hidden)
        results = []
        for b, sample in enumerate(samples):
            text = self.tokenizer.decode(answers_ids[b], skip_special_tokens=False)
            text = _clean(text, self.builder.prompts.stop_words)
            enc = batch.encoded[b]
            fw = {}
            if enc.fusion is not None:
                fw = {k: v[0].float().cpu().numpy() for k, v in enc.fusion.sensor_weights.items()}
            m, scores, probs = masks[b]
            results.append(Result(
                answer=text, parsed=self.builder.task(sample).parse(text, **sample.task_args),
                masks=m, mask_scores=scores, mask_probs=probs, fusion_weights=fw, timings=dict(timings),
                prompt=batch.texts[b], id=sample.id, history=list(sample.history),
                rasters={k: v.raster for k, v in enc.images.items() if v.raster is not None},
                composites={k: v.composite for k, v in enc.images.items()},
            ))
        return results

    def _answer_hidden(self, embeds: torch.Tensor, batch: Batch, new_tokens: torch.Tensor) -> torch.Tensor:
        """Last-layer hidden state at each generated token, from one forward over prompt + answer
        (the state where ``[SEG]`` is the input, as in training; also for a final ``[SEG]``)."""
        emb = self.model.language_model.get_input_embeddings()(new_tokens)
        full = torch.cat([embeds, emb], dim=1)
        full_mask = torch.cat([batch.attention_mask, (new_tokens != self.ids["pad"]).long()], dim=1)
        out = self.model.language_model(inputs_embeds=full, attention_mask=full_mask,
                                        position_ids=positions(full_mask), output_hidden_states=True)
        return out.hidden_states[-1][:, embeds.shape[1]:]

    def _masks(self, encoded: list[Encoded], seg_hidden: list[torch.Tensor | None]):
        """Binary masks, scores and probabilities per sample, through the builder's shared mask path."""
        out: list[tuple[list, list, list]] = [([], [], []) for _ in encoded]
        if getattr(self.model, "grounding_encoder", None) is None:
            return out
        for b, lg in enumerate(self.builder.mask_logits(encoded, seg_hidden)):
            if lg is None:
                continue
            prob = lg.float().sigmoid()
            binary = prob > 0.5
            scores = [float(prob[k][binary[k]].mean()) if binary[k].any() else 0.0 for k in range(prob.shape[0])]
            out[b] = ([m.cpu().numpy() for m in binary], scores, [p.cpu().numpy() for p in prob])
        return out


def _cut(tokens: list[int], stop: int, pad: int) -> list[int]:
    out = []
    for t in tokens:
        if t == stop:
            break
        out.append(t)
    while out and out[-1] == pad:
        out.pop()
    return out


def _clean(text: str, stop_words: Iterable[str]) -> str:
    """The answer up to the first stop word (the template's end-of-turn). A stop word that
    ``max_new_tokens`` cut short (``"Right<|end"``: ``<|end|>`` is several tokens in the
    Qwen2.5 vocabulary) is removed too, so that a short budget does not turn a right answer
    into an unparsable one."""
    for word in stop_words:
        text = text.split(word, 1)[0]
        for k in range(len(word) - 1, 1, -1):
            if text.endswith(word[:k]):
                text = text[:-k]
                break
    return text.strip()


@contextmanager
def _timed(store: dict[str, float], key: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        store[key] = store.get(key, 0.0) + time.perf_counter() - t0
