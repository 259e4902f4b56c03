"""The tiny graph end to end: spec validation, encode, embed, forward, fuse, [SEG] masks, regions."""
import pytest
import torch

from earthmind_sdk.contracts import TokenSet
from earthmind_sdk.errors import EarthMindError, RecipeError
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import bundled_spec_names, load_spec

IMG = 151667


def test_bundled_specs_validate():
    assert {"tiny", "earthmind-4b", "earthmind-4b-multi", "sa2va-4b"} <= set(bundled_spec_names())
    for name in bundled_spec_names():
        spec = load_spec(name)
        assert spec.tokens["img_context_token_id"] == IMG
    assert load_spec("earthmind-4b").fusion["name"] == "mma"
    assert load_spec("earthmind-4b-multi").segment_sensor == "sar"


def test_submodule_names_are_checkpoint_prefixes(tiny_model):
    names = {n for n, _ in tiny_model.named_children()}
    assert names == {"vision_model", "mlp1", "language_model", "grounding_encoder", "text_hidden_fcs"}
    keys = set(tiny_model.state_dict())
    assert {"mlp1.0.weight", "mlp1.1.weight", "mlp1.3.weight", "text_hidden_fcs.0.weight",
            "text_hidden_fcs.2.weight", "language_model.model.embed_tokens.weight",
            "language_model.model.layers.0.self_attn.q_proj.weight",
            "grounding_encoder.sam2_model.sam_mask_decoder.iou_token.weight",
            "grounding_encoder.sam2_model.image_encoder.trunk.patch_embed.proj.weight",
            "vision_model.encoder.layers.1.attn.qkv.weight"} <= keys


@pytest.mark.parametrize("bad,match", [
    ({"encoder": {"name": "nope"}}, r"encoder\.name: unknown encoder 'nope'.*internvit"),
    ({"sensors": []}, r"sensors: expected a non-empty list"),
    ({"sensors": ["sar", "optical"]}, r"fusion: a spec with 2 sensors needs a fusion.*concat"),
    ({"image": {"size": "big"}}, r"image\.size: expected a positive integer"),
    ({"image": {"tiles": 3}}, r"image: unknown key\(s\) tiles"),
    ({"colour": 1}, r"unknown key\(s\) colour"),
    ({"decoder": {"name": "sam2", "args": 3}}, r"decoder\.args: expected a mapping"),
    ({"segment_sensor": "sar"}, r"segment_sensor: 'sar' is not one of"),
    ({"fusion": {"name": "hcaa"}}, r"did you mean 'hca'"),
])
def test_spec_errors_name_the_key(bad, match):
    raw = load_spec("tiny").to_dict()
    raw.update(bad)
    with pytest.raises(RecipeError, match=match):
        load_spec(raw)


def test_encoder_image_size_must_match_spec():
    raw = load_spec("tiny").to_dict()
    raw["image"]["size"] = 56
    with pytest.raises(RecipeError, match="image.size is 56 but the encoder takes 28"):
        build_model(raw)


def _prompt(n_img, pre=(1, 2), post=(3, 4)):
    return list(pre) + [IMG] * n_img + list(post)


def test_end_to_end_forward(tiny_model):
    m = tiny_model
    with torch.no_grad():
        tiles = m.preprocess(torch.rand(3, 30, 61))
        assert tiles.shape == (3, 3, 28, 28)  # 2x1 grid + thumbnail
        emb = m.encode_images(tiles)
        assert emb.shape == (3, m.tokens_per_tile, 64)
        img = emb.flatten(0, 1)
        ids = torch.tensor([_prompt(img.shape[0])])
        out = m(ids, torch.ones_like(ids), [img], output_hidden_states=True)
    assert out.logits.shape == (1, ids.shape[1], 151680)
    assert out.hidden_states[-1].shape == (1, ids.shape[1], 64)


def test_embed_places_image_embeddings_in_order(tiny_model):
    m = tiny_model
    a, b = torch.randn(2, 64), torch.randn(3, 64)
    ids = torch.tensor([[5, IMG, IMG, 6, 7, 8], [IMG, 9, IMG, IMG, 10, 11]])
    with torch.no_grad():
        out = m.embed(ids, [a, b])
        text = m.language_model.get_input_embeddings()(ids)
    assert torch.equal(out[0, 1:3], a) and torch.equal(out[1, [0, 2, 3]], b)
    assert torch.equal(out[0, [0, 3, 4, 5]], text[0, [0, 3, 4, 5]])


def test_embed_count_mismatch_names_sample_and_counts(tiny_model):
    ids = torch.tensor([[IMG, 1], [IMG, IMG]])
    with pytest.raises(EarthMindError, match=r"sample 1 has 2 <IMG_CONTEXT> tokens .* but 3 image embeddings"):
        tiny_model.embed(ids, [torch.randn(1, 64), torch.randn(3, 64)])


def test_labels_give_a_loss_and_gradients_reach_the_projector(tiny_model):
    m = build_model("tiny")
    tiles = m.preprocess(torch.rand(3, 28, 28))
    img = m.encode_images(tiles).flatten(0, 1)
    ids = torch.tensor([_prompt(img.shape[0])])
    labels = ids.clone()
    labels[:, : -2] = -100
    out = m(ids, torch.ones_like(ids), [img], labels=labels)
    out.loss.backward()
    assert torch.isfinite(out.loss) and m.mlp1[1].weight.grad.abs().sum() > 0


def test_single_sensor_fuse_is_identity(tiny_model):
    t = torch.randn(1, 4, 64)
    out = tiny_model.fuse([TokenSet(t, sensor="optical", grid=(1, 1))])
    assert out.tokens is t and torch.equal(out.weights, torch.ones(1, 4))
    with pytest.raises(EarthMindError, match="no fusion"):
        tiny_model.fuse([TokenSet(t, sensor="sar"), TokenSet(t, sensor="optical")])


def test_paired_spec_builds_fusion_with_released_key():
    raw = load_spec("tiny").to_dict()
    raw.update(sensors=["sar", "optical"], fusion={"name": "mma", "args": {"reweight": False}}, decoder=None)
    m = build_model(raw)
    assert "fusion.local_query" in m.state_dict() and m.grounding_encoder is None
    s, o = torch.randn(1, 4, 64), torch.randn(1, 4, 64)
    out = m.fuse([TokenSet(s, sensor="sar"), TokenSet(o, sensor="optical")])
    assert torch.equal(out.tokens, torch.cat([s, o], 1))
    with pytest.raises(EarthMindError, match="no mask decoder"):
        m.decode_masks(torch.zeros(1, 3, 64, 64), [torch.zeros(1, 32)], [(8, 8)])


@pytest.fixture
def seeing_model():
    """A fresh tiny model whose SAM2 always predicts 'an object is present' (random weights
    otherwise say 'no object' and every mask is the -1024 floor)."""
    torch.manual_seed(3)
    m = build_model("tiny").eval()
    head = m.grounding_encoder.sam2_model.sam_mask_decoder.pred_obj_score_head
    last = head.layers[-1] if hasattr(head, "layers") else head
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(5.0)
    return m


def test_no_object_floor_only_when_asked(tiny_model):
    m = build_model("tiny").eval()
    head = m.grounding_encoder.sam2_model.sam_mask_decoder.pred_obj_score_head
    last = head.layers[-1] if hasattr(head, "layers") else head
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-5.0)
        prompt = torch.randn(1, 32)
        out = m.decode_masks(torch.zeros(1, 3, 64, 64), [prompt], [(8, 8)], gate_no_object=True)
        raw = m.decode_masks(torch.zeros(1, 3, 64, 64), [prompt], [(8, 8)])
    assert torch.all(out[0] == -1024.0)
    # the released models do not gate: by default the decoder's own logits come back
    assert not torch.any(raw[0] == -1024.0)


def test_masks_one_encoder_pass_per_batch_and_batching_invariant(seeing_model, monkeypatch):
    m = seeing_model
    sam = m.grounding_encoder.sam2_model
    calls = []
    original = sam.forward_image
    monkeypatch.setattr(sam, "forward_image", lambda x: calls.append(x.shape[0]) or original(x))
    images = torch.stack([m.preprocess_sam(torch.rand(3, 20, 30)) for _ in range(3)])
    assert images.shape == (3, 3, 64, 64)
    with torch.no_grad():
        prompts = [m.seg_prompts(torch.randn(k, 64)) for k in (2, 0, 3)]
        sizes = [(20, 30), (11, 7), (20, 30)]
        out = m.decode_masks(images, prompts, sizes)
        assert calls == [2]  # images with prompts, encoded once, together
        assert [tuple(o.shape) for o in out] == [(2, 20, 30), (0, 11, 7), (3, 20, 30)]
        alone = m.decode_masks(images[2:], prompts[2:], sizes[2:])
    torch.testing.assert_close(alone[0], out[2], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(out[2][0], out[2][1])  # different [SEG] -> different masks


@pytest.mark.parametrize("objects", [True, False])
def test_mask_heads_match_sam2_with_language_token_appended(tiny_model, seeing_model, objects):
    """Our head call equals the sam2 package's own _forward_sam_heads when its sparse prompts
    get the [SEG] embedding appended (the authors' extension); the package gates "no object"
    masks, which the released models do not (their default here), so the gate is asked for."""
    dec = (seeing_model if objects else tiny_model).grounding_encoder
    sam = dec.sam2_model
    torch.manual_seed(1)
    images = torch.randn(1, 3, 64, 64)
    prompt = torch.randn(2, 32)
    with torch.no_grad():
        feats = dec.encode(images)
        ours = dec.masks(feats, torch.zeros(2, dtype=torch.long), prompt, gate_no_object=True)
        pe = sam.sam_prompt_encoder
        plain = pe.forward

        def with_language(*a, **k):
            sparse, dense = plain(*a, **k)
            return torch.cat([sparse, prompt[:, None]], 1), dense

        pe.forward = with_language
        try:
            ref = sam._forward_sam_heads(feats["top"].expand(2, -1, -1, -1),
                                         high_res_features=[h.expand(2, -1, -1, -1) for h in feats["high"]],
                                         multimask_output=sam._use_multimask(True, None))[3]
        finally:
            del pe.forward
    torch.testing.assert_close(ours, ref[:, 0], rtol=1e-5, atol=1e-5)


def test_region_embeds_masks_and_boxes(tiny_model):
    tokens = torch.arange(4 * 3, dtype=torch.float32).reshape(4, 3)  # a 2x2 grid, D=3
    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[:10, 10:] = True  # top-right quarter -> cell 1
    box = torch.tensor([0.0, 10.0, 20.0, 20.0])  # bottom half -> cells 2, 3
    tiny = torch.zeros(20, 20, dtype=torch.bool)
    tiny[19, 0] = True  # too small for any cell -> the cell at its centre
    out = tiny_model.region_embeds(tokens, (2, 2), [mask, box, tiny], image_size=(20, 20))
    assert torch.equal(out[0], tokens[[1]]) and torch.equal(out[1], tokens[[2, 3]]) and torch.equal(out[2], tokens[[2]])
    with pytest.raises(ValueError, match="region 0: region mask has shape"):
        tiny_model.region_embeds(tokens, (2, 2), [torch.ones(5, 5)], image_size=(20, 20))


def test_mask_logits_reach_the_input_size_through_the_sam2_size(seeing_model):
    """As the authors' video predictor and predict_forward: low-res -> SAM2 input size -> (H, W)."""
    import torch.nn.functional as F

    m = seeing_model
    dec = m.grounding_encoder
    images = m.preprocess_sam(torch.rand(3, 72, 96))[None]
    with torch.no_grad():
        prompt = m.seg_prompts(torch.randn(2, 64))
        got = m.decode_masks(images, [prompt], [(72, 96)])[0]
        low = dec.masks(dec.encode(images), torch.zeros(2, dtype=torch.long), prompt)
    side = F.interpolate(low[:, None], size=(dec.image_size, dec.image_size), mode="bilinear", align_corners=False)
    want = F.interpolate(side, size=(72, 96), mode="bilinear", align_corners=False)[:, 0]
    direct = F.interpolate(low[:, None], size=(72, 96), mode="bilinear", align_corners=False)[:, 0]
    assert torch.equal(got, want) and not torch.allclose(got, direct, atol=1e-6)
