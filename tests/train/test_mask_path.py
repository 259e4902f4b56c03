"""Training and inference share one mask path: the same [SEG] hidden states give the same mask
logits, from the spec's segment sensor, whichever side asks."""
import numpy as np
import pytest
import torch

from earthmind_sdk.inference.pipeline import Pipeline
from earthmind_sdk.jobs.open_model import open_model
from earthmind_sdk.train.data import SyntheticScenes
from earthmind_sdk.train.trainer import Trainer, TrainConfig


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(3)
    model, tok = open_model("tiny-paired")
    model.spec.segment_sensor = "optical"  # not the first sensor: the choice must be the spec's
    seg = [r for r in SyntheticScenes(2, seed=4) if r.masks][:2]
    return model.eval(), tok, seg


def test_training_mask_logits_equal_inference_masks_for_the_same_seg_states(setup):
    model, tok, records = setup
    trainer = Trainer(model, tok, TrainConfig(steps=1, freeze=()))
    model.eval()
    with torch.no_grad():
        batch = trainer.builder.build([r.sample for r in records], [r.answer for r in records])
        hidden = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       image_embeds=batch.image_embeds, position_ids=batch.position_ids,
                       output_hidden_states=True).hidden_states[-1]
        seg_pos = (batch.input_ids == trainer.builder.ids["seg"]) & (batch.labels != -100)
        train_logits = trainer.mask_logits(batch, hidden, seg_pos, records)
        masks = Pipeline(model, tok)._masks(batch.encoded, [hidden[b][seg_pos[b]] for b in range(len(records))])
        # the path written out by hand: SAM2 on the segment sensor's image, prompts from [SEG]
        for b, rec in enumerate(records):
            image = batch.encoded[b].images["optical"].frames[0]
            by_hand = model.decode_masks(model.preprocess_sam(image)[None],
                                         [model.seg_prompts(hidden[b][seg_pos[b]])], [rec.masks[0].shape])[0]
            assert train_logits[b].shape == (len(rec.masks), *rec.masks[0].shape)
            torch.testing.assert_close(train_logits[b], by_hand, atol=1e-6, rtol=0)
            probs = np.stack(masks[b][2])
            np.testing.assert_allclose(train_logits[b].float().sigmoid().numpy(), probs, atol=1e-6, rtol=0)
            sar = model.decode_masks(model.preprocess_sam(batch.encoded[b].images["sar"].frames[0])[None],
                                     [model.seg_prompts(hidden[b][seg_pos[b]])], [rec.masks[0].shape])[0]
            assert not torch.allclose(sar, by_hand, atol=1e-4)  # the sensor choice is visible


def test_a_record_whose_seg_count_differs_from_its_masks_is_named(setup):
    model, tok, records = setup
    trainer = Trainer(model, tok, TrainConfig(steps=1, freeze=()))
    rec = records[0]
    batch = trainer.builder.build([rec.sample], [rec.answer + " [SEG]"])
    seg_pos = (batch.input_ids == trainer.builder.ids["seg"]) & (batch.labels != -100)
    hidden = torch.zeros(*batch.input_ids.shape, model.hidden_size)
    with pytest.raises(ValueError, match=rf"record {rec.sample.id}: 2 \[SEG\] tokens but 1 masks"):
        trainer.mask_logits(batch, hidden, seg_pos, [rec])
