"""Components declare what drives behaviour; names never do. Encoders declare their input
(mean, std, image size; timm's from its own data configuration) and preprocessing uses it; a
fusion that declares ``uses_text`` gets the question's embeddings whatever it is called."""
import pytest
import torch
from timm.data import resolve_model_data_config

from earthmind_sdk.contracts import FusionOutput, Sample, SensorImage
from earthmind_sdk.errors import RecipeError
from earthmind_sdk.model import tiling
from earthmind_sdk.model.batching import BatchBuilder
from earthmind_sdk.model.encoders.internvit import InternViT
from earthmind_sdk.model.encoders.timm_backbone import TimmBackbone
from earthmind_sdk.model.fusion.modules import ConcatFusion
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec
from earthmind_sdk.plugins import registry
from earthmind_sdk.text.tokenizer import default_tokenizer


def _tiny(**changes):
    raw = load_spec("tiny").to_dict()
    raw.update(decoder=None, **changes)
    torch.manual_seed(0)
    return build_model(raw).eval()


@pytest.mark.parametrize("name", registry("encoders").names())
def test_every_registered_encoder_declares_its_input(name):
    enc = registry("encoders").build(name, **registry("encoders").get(name).tiny_args())
    assert isinstance(enc.image_size, int) and enc.image_size > 0
    assert len(enc.mean) == 3 and len(enc.std) == 3 and all(s > 0 for s in enc.std)


def test_internvit_declares_internvl_statistics():
    assert (InternViT.mean, InternViT.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_timm_encoder_takes_its_input_from_timms_data_config():
    enc = TimmBackbone(**TimmBackbone.tiny_args())
    data = resolve_model_data_config(enc.model)
    assert (enc.mean, enc.std) == (tuple(data["mean"]), tuple(data["std"]))
    assert enc.mean == (0.5, 0.5, 0.5)  # this ViT's pretrained_cfg: not ImageNet's, whatever its name says
    # no image_size given: the pretrained configuration's input size
    default = TimmBackbone("vit_tiny_patch16_224", model_args=dict(depth=1, embed_dim=16, num_heads=2))
    assert default.image_size == 224 == resolve_model_data_config(default.model)["input_size"][-1]
    assert default.grid == (14, 14)


def test_preprocessing_normalises_with_the_encoders_declaration():
    timm_args = TimmBackbone.tiny_args()
    model = _tiny(encoder={"name": "timm", "args": timm_args}, image={"size": timm_args["image_size"]})
    frame = torch.rand(3, 32, 32)
    tiles = tiling.tile_image_pil(tiling.to_uint8(frame), 32, 1, 12, True)
    assert torch.equal(model.preprocess(frame), tiling.normalize(tiles, (0.5,) * 3, (0.5,) * 3))
    internvit = _tiny()
    size = internvit.spec.image["size"]
    frame = torch.rand(3, size, size)
    tiles = tiling.tile_image_pil(tiling.to_uint8(frame), size, 1, 12, True)
    assert torch.equal(internvit.preprocess(frame), tiling.normalize(tiles, InternViT.mean, InternViT.std))


def test_an_encoder_without_a_declaration_is_refused():
    class Undeclared(InternViT):
        mean = None

    reg = registry("encoders")
    reg.register("undeclared-test", Undeclared, owner="test")
    try:
        with pytest.raises(RecipeError, match=r"encoder 'undeclared-test' must declare its input: mean None"):
            _tiny(encoder={"name": "undeclared-test", "args": InternViT.tiny_args()})
    finally:
        reg.unregister("undeclared-test")


class _TextProbe(ConcatFusion):
    """A plugin fusion (not called hca) that records the text it is given."""

    uses_text = True
    name = "probe"

    def forward(self, token_sets, text_embeds=None, text_mask=None) -> FusionOutput:
        self.seen = text_embeds
        return super().forward(token_sets, text_embeds=text_embeds, text_mask=text_mask)


class _NoText(torch.nn.Module):
    """Declares nothing, but is called ``hca``, the name that used to switch text on."""

    name = "hca"

    def __init__(self, dim):
        super().__init__()
        self.inner = ConcatFusion(dim)

    def forward(self, token_sets, text_embeds=None, text_mask=None) -> FusionOutput:
        self.seen = text_embeds
        return self.inner(token_sets)


@pytest.mark.parametrize("cls,gets_text", [(_TextProbe, True), (_NoText, False)])
def test_a_fusion_gets_text_when_it_declares_uses_text(cls, gets_text):
    reg = registry("fusions")
    reg.register("text-probe-test", cls, owner="test")
    try:
        model = _tiny(sensors=["sar", "optical"], fusion={"name": "text-probe-test", "args": {}})
        assert model.fusion_uses_text is gets_text
        images = {s: SensorImage(torch.rand(1, 3, 28, 28), sensor=s) for s in ("sar", "optical")}
        BatchBuilder(model, default_tokenizer()).build([Sample(images=images, prompt="Is there water?")])
        if gets_text:
            assert model.fusion.seen is not None and model.fusion.seen.shape[-1] == model.hidden_size
        else:
            assert model.fusion.seen is None
    finally:
        reg.unregister("text-probe-test")
