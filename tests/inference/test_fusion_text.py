"""What the text-guided HCA fusion reads (every prompt token after the last ``</img>``, as the
authors' v2 code), empty questions, and region prompts on tile-by-tile joined tokens."""
import numpy as np
import torch

from earthmind_sdk.contracts import SensorImage
from earthmind_sdk.contracts import Sample
from earthmind_sdk.inference import Pipeline
from earthmind_sdk.model.regions import grid_mask, region_mask
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec
from earthmind_sdk.text.tokenizer import default_tokenizer
from earthmind_sdk.text.tokens import SPECIAL_TOKENS


def frames(seed, h=56, w=56):
    g = torch.Generator().manual_seed(seed)
    return SensorImage(torch.rand(1, 3, h, w, generator=g), sensor="x")


def test_fusion_text_is_every_token_after_the_last_img_end(tiny_paired):
    pipe = Pipeline(*tiny_paired)
    mask = np.zeros((56, 56), bool)
    mask[:20, 30:] = True
    samples = [Sample(images={"sar": frames(1), "optical": frames(2)}, prompt="Is there water?",
                      history=[("Hello", "Hi.")]),
               Sample(images={"sar": frames(3), "optical": frames(4)}, prompt="<image>What is region1?",
                      task="region_captioning", regions=[mask])]
    batch = pipe.builder.build(samples)
    counts = [pipe.builder.region_counts(s, e.images) for s, e in zip(samples, batch.encoded)]
    got = pipe.builder.question_embeds(samples, None, counts)
    emb = pipe.model.language_model.get_input_embeddings()
    end = SPECIAL_TOKENS["</img>"]
    for b in range(2):
        ids = batch.input_ids[b][batch.attention_mask[b].bool()]
        last = int((ids == end).nonzero().max())
        want = emb(ids[last + 1:])
        assert torch.equal(got[b], want)
    # the question and the template's closing tokens are part of it
    ids0 = batch.input_ids[0][batch.attention_mask[0].bool()]
    after = pipe.tokenizer.decode(ids0[int((ids0 == end).nonzero().max()) + 1:].tolist())
    assert after.endswith("Is there water?<|end|>\n<|assistant|>\n")


def test_empty_and_missing_questions_do_not_crash(tiny_paired):
    """The README example: an empty prompt with the question in task_args (issue 11)."""
    pipe = Pipeline(*tiny_paired)
    samples = [Sample(images={"sar": frames(5), "optical": frames(6)}, prompt="",
                      task="referring_segmentation", task_args={"expression": "the flooded fields"}),
               Sample(images={"sar": frames(7), "optical": frames(8)}, prompt=""),
               Sample(images={"sar": frames(9), "optical": frames(10)}, prompt=None)]
    results = pipe(samples, max_new_tokens=2)
    assert len(results) == 3 and all(set(r.fusion_weights) == {"sar", "optical"} for r in results)
    assert "the flooded fields" in results[0].prompt


def test_regions_read_the_primary_sensors_whole_image_tile_when_tiles_are_joined():
    raw = load_spec("tiny").to_dict()
    raw.update(sensors=["sar", "optical"], segment_sensor="sar",
               fusion={"name": "mma", "args": {"num_queries": 2, "reweight": False}})
    torch.manual_seed(0)
    pipe = Pipeline(build_model(raw).eval(), default_tokenizer())
    mask = np.zeros((28, 70), bool)
    mask[:, :35] = True
    s = Sample(images={"sar": frames(1, 28, 70), "optical": frames(2, 28, 70)}, prompt="What is region1?",
               task="region_captioning", regions=[mask])
    batch = pipe.builder.build([s])
    enc = batch.encoded[0]
    c = pipe.model.tokens_per_tile
    sar_tiles = pipe.model.encode_images(pipe.model.preprocess(enc.images["sar"].frames[0]))
    assert sar_tiles.shape[0] > 1  # several tiles and a thumbnail
    n_img = 2 * sar_tiles.shape[0] * c
    region = enc.embeds[n_img:]
    sel = grid_mask(region_mask(mask, (28, 70)), pipe.model.token_grid).flatten()
    torch.testing.assert_close(region, sar_tiles[-1][sel], atol=1e-6, rtol=0)  # SAR thumbnail, not optical
    opt_thumb = pipe.model.encode_images(pipe.model.preprocess(enc.images["optical"].frames[0]))[-1][sel]
    assert not torch.allclose(region, opt_thumb, atol=1e-3)
