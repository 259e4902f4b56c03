"""Samples -> one padded model batch. Shared by inference and training, so both lay out
tokens, fuse sensors and place image embeddings the same way (the original code fused
differently in training and inference; here there is one path).

One batch = one vision-encoder pass over every tile of every sample and sensor, one fusion
per sample (tile counts differ between samples), left padding with explicit position ids so
that a sample's logits do not depend on what it was batched with.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..contracts import FusionOutput, Raster, Sample, SensorImage, TokenSet
from ..errors import EarthMindError
from ..plugins import registry

IGNORE_INDEX = -100


@dataclass
class Encoded:
    """One sample after the vision side. ``embeds`` is a
    :class:`~earthmind_sdk.model.fusion.modules.DeferredTokens` when the fusion writes its tokens
    straight into the language model's input buffer (MMA); ``fusion`` is then known once
    :meth:`EarthMindModel.embed` has run."""

    embeds: Any                        # (n_tokens, D) image (+ region) embeddings in order, or DeferredTokens
    fused: FusionOutput | None
    images: dict[str, SensorImage]

    @property
    def fusion(self) -> FusionOutput | None:
        from .fusion.modules import DeferredTokens

        return self.embeds.output if isinstance(self.embeds, DeferredTokens) else self.fused

    def materialize(self) -> None:
        """Build deferred tokens now (for readers of the tokens before the LLM buffer exists)."""
        from .fusion.modules import DeferredTokens

        if isinstance(self.embeds, DeferredTokens):
            self.fused = self.embeds.materialize()
            self.embeds = self.fused.tokens[0]


@dataclass
class Batch:
    input_ids: torch.Tensor            # (B, L) left-padded
    attention_mask: torch.Tensor       # (B, L)
    position_ids: torch.Tensor         # (B, L)
    image_embeds: list[Any]            # per sample (n_i, D), or DeferredTokens (see Encoded)
    encoded: list[Encoded]
    texts: list[str]
    labels: torch.Tensor | None = None  # (B, L), IGNORE_INDEX outside answers


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids for a left-padded batch, so padding never shifts a sample's positions."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


class BatchBuilder:
    """Samples -> :class:`Batch`. Which sensor prepares each input, first match wins:

    1. the sample's own choice (``Sample.sensors``; a recipe sample's ``sensors``; the
       command line's ``--sar-sensor`` / ``--sar-opt``). Options given for the sensor the model
       declares are merged over the declared ones key by key; another sensor starts from its
       own defaults;
    2. ``sensors={input: Sensor object}`` given here (or to ``Pipeline``);
    3. the model's declaration (its spec's ``sensors`` entries, i.e. a checkpoint's
       ``config.json``), built with the options it declares;
    4. for a published checkpoint, which declares none: each sensor's defaults, the
       release-faithful preparation.

    ``min_overlap``: the share of the primary's footprint a georeferenced secondary image must
    cover (:func:`~earthmind_sdk.sensors.pairs.align_pair`; ``--min-overlap`` on the command line).
    """

    def __init__(self, model, tokenizer, *, sensors: dict[str, Any] | None = None, template: str | None = None,
                 min_overlap: float = 0.5):
        from ..text.prompt import PromptBuilder
        from ..text.tokenizer import special_token_ids

        if not 0.0 <= float(min_overlap) <= 1.0:
            raise EarthMindError(f"min_overlap must be between 0 and 1, got {min_overlap!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.spec = model.spec
        self.sensor_names: list[str] = list(self.spec.sensors)
        self.min_overlap = float(min_overlap)
        self._sensors = dict(sensors or {})
        self._chosen: dict[tuple[str, str], Any] = {}  # per-sample sensor choices, built once each
        self.ids = special_token_ids(tokenizer)
        self.prompts = PromptBuilder(template or self.spec.template)

    def declared_args(self, name: str) -> dict[str, Any]:
        """The options the model declares for input ``name`` (empty: the sensor's defaults)."""
        return copy.deepcopy(getattr(self.spec, "sensor_args", {}).get(name) or {})

    def sensor(self, name: str):
        """The sensor object for one of the model's inputs, built on first use with the options
        the model declares (a model whose images arrive already prepared needs no sensor plugin)."""
        if name not in self._sensors:
            from ..sensors.choice import SensorChoice, build_sensor

            args = self.declared_args(name)
            self._sensors[name] = build_sensor(SensorChoice(name, json.dumps(args, sort_keys=True)), slot=name,
                                               where=f"model spec: sensors: {name}") if args \
                else registry("sensors").build(name)
        return self._sensors[name]

    def sensor_for(self, sample: Sample, slot: str, where: str):
        """The sensor reading input ``slot`` of ``sample``: its own choice (``sample.sensors``), else
        the default (see the class docstring for the order)."""
        from ..sensors.choice import SensorChoice, build_sensor, parse_choice

        if slot not in sample.sensors:
            return self.sensor(slot)
        choice = parse_choice(sample.sensors[slot], where=f"{where}: sensors.{slot}")
        if choice.name == slot and self.declared_args(slot):  # the declared sensor: caller options win
            choice = SensorChoice(slot, json.dumps({**self.declared_args(slot), **choice.args}, sort_keys=True))
        key = (choice.name, choice.args_json)
        if key not in self._chosen:
            self._chosen[key] = build_sensor(choice, slot=slot, where=f"{where}: sensors.{slot}")
        return self._chosen[key]

    def _read(self, sample: Sample, slot: str, where: str):
        """Read one input; when the default sensor refuses it, say which installed sensor would not."""
        from ..errors import RasterError
        from ..sensors.choice import suggest_sensor, suggestion_text

        source = sample.images[slot]
        sensor = self.sensor_for(sample, slot, where)
        try:
            return sensor, sensor.read(source)
        except RasterError as exc:
            if slot in sample.sensors:
                raise
            other = suggest_sensor(source, slot=slot, default=slot)
            if other is None:
                raise
            raise type(exc)(f"{exc}; {suggestion_text(other, slot)}") from None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    # -- vision side -----------------------------------------------------------------------
    def prepare(self, sample: Sample, index: int) -> dict[str, SensorImage]:
        from ..sensors.pairs import align_pair

        name = sample.id or f"#{index}"
        if not sample.images:
            raise EarthMindError(f"sample {name}: no image given")
        unknown = [s for s in sample.images if s not in self.sensor_names]
        if unknown:
            raise EarthMindError(
                f"sample {name}: sensor(s) {', '.join(map(repr, unknown))} are not inputs of this model; "
                f"it takes {', '.join(self.sensor_names)}"
            )
        stray = [s for s in sample.sensors if s not in sample.images]
        if stray:
            raise EarthMindError(f"sample {name}: sensors given for input(s) {', '.join(map(repr, stray))} "
                                 f"that have no image; images are given for {', '.join(sample.images)}")
        given = [s for s in self.sensor_names if s in sample.images]
        read, sensors = {}, {}
        for s in given:
            if isinstance(sample.images[s], SensorImage):
                read[s] = sample.images[s]
            else:
                sensors[s], read[s] = self._read(sample, s, f"sample {name}")
        primary = read[given[0]]
        out = {}
        for s, item in read.items():
            if isinstance(item, SensorImage):
                out[s] = item
                continue
            if s != given[0] and isinstance(primary, Raster):
                item = align_pair(primary, item, min_overlap=self.min_overlap)
            out[s] = sensors[s].prepare(item)
        return out

    def ablate(self, sample: Sample, index: int, sensors) -> Sample:
        """``sample`` without the images of ``sensors``: the sensor ablation of evaluation and the
        sensor dropout of training. While another sensor remains, the named ones are removed and
        the model answers from the rest as it would for a user who has only those (a paired model
        then sees one sensor's tokens, unfused); when every image is named (a blind baseline) they
        are blanked instead, since the model needs an input."""
        sensors = list(sensors)
        missing = [s for s in sensors if s not in sample.images]
        if missing:
            raise EarthMindError(f"sample {sample.id or index}: no {missing[0]!r} image to remove "
                                 f"(it has {sorted(sample.images)})")
        if not any(s not in sensors for s in sample.images):
            return self.blank(sample, index, sensors)
        out = copy.copy(sample)
        out.images = {s: img for s, img in sample.images.items() if s not in sensors}
        out.sensors = {s: v for s, v in sample.sensors.items() if s not in sensors}
        return out

    def blank(self, sample: Sample, index: int, sensors) -> Sample:
        """A copy of ``sample`` whose prepared (aligned) images of ``sensors`` are zeros (the blind
        baseline of :meth:`ablate`)."""
        prepared = self.prepare(sample, index)
        for sensor in sensors:
            if sensor not in prepared:
                raise EarthMindError(f"sample {sample.id or index}: no {sensor!r} image to blank "
                                     f"(it has {sorted(prepared)})")
            real = prepared[sensor]
            prepared[sensor] = SensorImage(torch.zeros_like(real.frames), sensor=sensor, raster=real.raster)
        blanked = copy.copy(sample)
        blanked.images = prepared
        return blanked

    def encode(self, prepared: list[dict[str, SensorImage]],
               texts: list[torch.Tensor | None] | None = None) -> list[Encoded]:
        tiles, owners = [], []
        for i, images in enumerate(prepared):
            for s, image in images.items():
                for f in range(image.frames.shape[0]):
                    t = self.model.preprocess(image.frames[f])
                    tiles.append(t)
                    owners.append((i, s, t.shape[0]))
        pixel_values = torch.cat(tiles).to(self.device, self.dtype)
        tokens = self.model.encode_images(pixel_values)  # one vision pass for the whole batch
        per: list[dict[str, list[torch.Tensor]]] = [dict() for _ in prepared]
        start = 0
        for i, s, n in owners:
            per[i].setdefault(s, []).append(tokens[start:start + n].flatten(0, 1))
            start += n
        out = []
        for i, images in enumerate(prepared):
            sets = [TokenSet(torch.cat(per[i][s])[None], sensor=s, grid=self.model.token_grid) for s in images]
            if len(sets) == 1:
                out.append(Encoded(sets[0].tokens[0], None, images))
                continue
            counts = {t.tokens.shape[1] for t in sets}
            if len(counts) != 1:
                raise EarthMindError(
                    f"sample #{i}: sensors give different token counts "
                    f"({', '.join(f'{t.sensor}={t.tokens.shape[1]}' for t in sets)}); a pair must share one grid"
                )
            fusion = self.model.fusion
            if getattr(fusion, "can_write_into", lambda: False)():  # tokens go straight into inputs_embeds
                from .fusion.modules import DeferredTokens

                out.append(Encoded(DeferredTokens(fusion, sets), None, images))
                continue
            text = texts[i] if texts is not None else None
            fused = self.model.fuse(sets, text_embeds=None if text is None else text[None])
            out.append(Encoded(fused.tokens[0], fused, images))
        return out

    def whole_image_span(self, enc: Encoded) -> tuple[int, int]:
        """Where the whole-image tile (the only tile, or the thumbnail) of the primary sensor sits
        in a sample's unpruned fused sequence; region prompts take their tokens there."""
        from .fusion.tiles import whole_image_span

        c = self.model.tokens_per_tile
        if enc.fusion is None:
            n_out = int(enc.embeds.shape[0])
            return n_out - c, n_out
        n_out = enc.fusion.full_length
        n_in = int(next(iter(enc.fusion.sensor_weights.values())).shape[1])
        try:
            return whole_image_span(n_out, n_in, c, len(enc.images))
        except ValueError as exc:
            raise EarthMindError(f"region prompts: {exc}") from None

    def whole_image_cells(self, enc: Encoded) -> torch.Tensor:
        """(rows x cols,) long: the row of ``enc.embeds`` holding each token-grid cell of the
        whole image, -1 where the fusion pruned it (the kept indices of its ``source_index``)."""
        from .fusion.prune import kept_positions

        start, stop = self.whole_image_span(enc)
        fused = enc.fusion
        source = None if fused is None or fused.source_index is None else fused.source_index[0]
        m_full = stop if fused is None else fused.full_length
        return kept_positions(torch.arange(start, stop, device=enc.embeds.device), source, m_full)

    def question_embeds(self, samples: Sequence[Sample], questions: Sequence[str] | None = None,
                        region_counts: Sequence[Sequence[int]] | None = None) -> list[torch.Tensor | None]:
        """The text a text-guided fusion (HCA) compares image tokens with; None where not needed.

        As the authors' v2 code: the embeddings of every prompt token after the last ``</img>``,
        i.e. the question (and any region prompt or later turns) plus the template's closing
        tokens (``<|end|>\n<|assistant|>\n``). Never empty, so an empty or missing question works.
        ``questions``: the task-built questions (default: built here); ``region_counts``: <vp>
        token counts per region (:meth:`region_counts`; required for samples with regions)."""
        if not getattr(self.model, "fusion_uses_text", False):
            return [None] * len(samples)
        from ..text.tokens import IMG_END

        emb = self.model.language_model.get_input_embeddings()
        id_lists = []
        for k, s in enumerate(samples):
            question = questions[k] if questions is not None else self.question(s)
            counts = region_counts[k] if region_counts is not None else []
            if s.regions and len(counts) != len(s.regions):
                raise EarthMindError(f"sample {s.id or f'#{k}'}: question_embeds needs the <vp> token count of "
                                     f"each of its {len(s.regions)} regions (region_counts)")
            text = self.prompts.build(question=question, n_image_tokens=1, history=s.history,
                                      region_token_counts=counts)
            after = text[text.rindex(IMG_END) + len(IMG_END):]
            id_lists.append(self.tokenizer(after, add_special_tokens=False)["input_ids"])
        # one lookup for the whole batch: each call would make its own dense (vocab x dim)
        # gradient in training, which dominated a tiny model's step
        flat = emb(torch.tensor([i for ids in id_lists for i in ids], dtype=torch.long, device=self.device))
        return list(flat.split([len(ids) for ids in id_lists]))

    def question(self, sample: Sample) -> str:
        """The task's question text for a sample (an absent prompt counts as empty)."""
        return self.task(sample).build_prompt(sample.prompt or "", **sample.task_args)

    def region_counts(self, sample: Sample, images: dict[str, SensorImage]) -> list[int]:
        """<vp> token count of each region of a sample (its mask on the token grid of the image),
        before any pruning: what a text-guided fusion reads cannot wait for what it keeps. HCA's
        text relevance is a max over the text tokens, so the repeated ``<IMG_CONTEXT>`` of a
        region that pruning shortens leave it unchanged."""
        if not sample.regions:
            return []
        from .regions import grid_mask, region_mask

        size = tuple(next(iter(images.values())).frames.shape[-2:])
        return [int(grid_mask(region_mask(r, size), self.model.token_grid).sum()) for r in sample.regions]

    # -- masks -----------------------------------------------------------------------------
    def mask_logits(self, encoded: Sequence[Encoded], seg_hidden: Sequence[torch.Tensor | None],
                    sizes: Sequence[tuple[int, int] | None] | None = None) -> list[torch.Tensor | None]:
        """Mask logits (K_b, H, W) from each sample's ``[SEG]`` last-layer hidden states (K_b, D):
        the one mask path of training (its losses) and inference (its masks). SAM2 sees the
        segment sensor's image (the spec's ``segment_sensor``, else the sample's first image),
        once per sample; ``sizes[b]`` is the output size (default: that image's size). None
        where a sample has no ``[SEG]``."""
        out: list[torch.Tensor | None] = [None] * len(encoded)
        todo = [b for b, h in enumerate(seg_hidden) if h is not None and h.shape[0] > 0]
        if not todo:
            return out
        target = self.spec.segment_sensor
        images, prompts, shapes = [], [], []
        for b in todo:
            imgs = encoded[b].images
            image = imgs[target] if target in imgs else next(iter(imgs.values()))
            images.append(self.model.preprocess_sam(image.frames[0]))
            prompts.append(self.model.seg_prompts(seg_hidden[b]))
            given = sizes[b] if sizes is not None else None
            shapes.append(tuple(given) if given is not None else tuple(image.frames.shape[-2:]))
        logits = self.model.decode_masks(torch.stack(images).to(self.device, self.dtype), prompts, shapes)
        for b, lg in zip(todo, logits):
            out[b] = lg
        return out

    # -- text side -------------------------------------------------------------------------
    def task(self, sample: Sample):
        return registry("tasks").build(sample.task or "vqa")

    def build(self, samples: Sequence[Sample], answers: Sequence[str] | None = None) -> Batch:
        """The padded batch; with ``answers``, answer tokens (+ stop word) are appended and labelled."""
        samples = list(samples)
        prepared = [self.prepare(s, i) for i, s in enumerate(samples)]
        questions = [self.question(s) for s in samples]
        counts = [self.region_counts(s, p) for s, p in zip(samples, prepared)]
        encoded = self.encode(prepared, self.question_embeds(samples, questions, counts))
        texts, seqs, label_seqs = [], [], []
        for k, (sample, enc) in enumerate(zip(samples, encoded)):
            region_tokens = []
            if sample.regions:
                enc.materialize()  # region prompts read the fused tokens
                image = next(iter(enc.images.values()))
                try:
                    region_tokens = self.model.region_embeds(
                        enc.embeds, self.model.token_grid, sample.regions,
                        image_size=tuple(image.frames.shape[-2:]), cell_index=self.whole_image_cells(enc))
                except ValueError as exc:
                    raise EarthMindError(f"sample {sample.id or f'#{k}'}: {exc}") from None
            text = self.prompts.build(
                question=questions[k],
                n_image_tokens=enc.embeds.shape[0],
                history=sample.history,
                region_token_counts=[r.shape[0] for r in region_tokens],
            )
            if region_tokens:
                enc.embeds = torch.cat([enc.embeds, *region_tokens])
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            labels = [IGNORE_INDEX] * len(ids)
            if answers is not None:
                ans = self.tokenizer(answers[k] + self.prompts.stop_words[0], add_special_tokens=False)["input_ids"]
                ids, labels = ids + ans, labels + ans
            texts.append(text)
            seqs.append(ids)
            label_seqs.append(labels)
        width = max(len(x) for x in seqs)
        input_ids = torch.full((len(seqs), width), self.ids["pad"], dtype=torch.long)
        labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for b, (seq, lab) in enumerate(zip(seqs, label_seqs)):
            input_ids[b, width - len(seq):] = torch.tensor(seq)
            labels[b, width - len(seq):] = torch.tensor(lab)
            mask[b, width - len(seq):] = 1
        dev = self.device
        return Batch(input_ids.to(dev), mask.to(dev), positions(mask).to(dev),
                     [e.embeds.to(self.dtype) for e in encoded], encoded, texts,
                     labels.to(dev) if answers is not None else None)
