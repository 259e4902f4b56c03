"""InternViT key names, pixel shuffle and attention against literal re-statements of the originals."""
import pytest
import torch

from earthmind_sdk.model.encoders.internvit import InternViT
from earthmind_sdk.model.encoders.pixel_shuffle import pixel_shuffle


def internvl_pixel_shuffle(x, scale_factor=0.5, version="v2"):
    """InternVL's view/permute sequence, restated."""
    n, w, h, c = x.size()
    x = x.view(n, w, int(h * scale_factor), int(c / scale_factor))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale_factor), int(w * scale_factor), int(c / (scale_factor * scale_factor)))
    if version != "v1":
        x = x.permute(0, 2, 1, 3).contiguous()
    return x


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("shape", [(2, 4, 4, 3), (1, 6, 4, 5), (3, 2, 8, 2)])
def test_pixel_shuffle_matches_internvl(version, shape):
    x = torch.randn(*shape)
    torch.testing.assert_close(pixel_shuffle(x, 0.5, version), internvl_pixel_shuffle(x, 0.5, version), rtol=0, atol=0)


def test_pixel_shuffle_refuses_odd_grid():
    with pytest.raises(ValueError, match="not divisible"):
        pixel_shuffle(torch.randn(1, 3, 4, 2))


def test_parameter_names_follow_released_checkpoint():
    keys = set(InternViT(**InternViT.tiny_args()).state_dict())
    for k in ["embeddings.class_embedding", "embeddings.patch_embedding.weight", "embeddings.patch_embedding.bias",
              "embeddings.position_embedding"]:
        assert k in keys
    for n in range(2):
        for part in ["attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias", "ls1", "ls2",
                     "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                     "mlp.fc2.weight", "mlp.fc2.bias"]:
            assert f"encoder.layers.{n}.{part}" in keys
    assert len(keys) == 4 + 2 * 14
    six_b = set(InternViT(**dict(InternViT.tiny_args(), qk_normalization=True, norm_type="rms_norm")).state_dict())
    assert "encoder.layers.0.attn.q_norm.weight" in six_b and "encoder.layers.0.norm1.bias" not in six_b


def _manual_forward(vit, x, n_layers):
    """Plain-math restatement: softmax(QK^T/sqrt(d))V attention, pre-norm blocks with layer scale."""
    h = vit.embeddings(x)
    for layer in vit.encoder.layers[:n_layers]:
        a = layer.attn
        b, n, d = h.shape
        y = layer.norm1(h)
        q, k, v = a.qkv(y).reshape(b, n, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2) / a.head_dim ** 0.5).softmax(-1)
        h = h + a.proj((att @ v).transpose(1, 2).reshape(b, n, d)) * layer.ls1
        h = h + layer.mlp.fc2(torch.nn.functional.gelu(layer.mlp.fc1(layer.norm2(h)))) * layer.ls2
    return h[:, 1:]


@pytest.mark.parametrize("select_layer,n_layers", [(-1, 2), (-2, 1), (1, 1), (0, 0)])
def test_forward_matches_plain_attention(select_layer, n_layers):
    torch.manual_seed(0)
    vit = InternViT(**dict(InternViT.tiny_args(), select_layer=select_layer)).eval()
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(vit(x), _manual_forward(vit, x, n_layers), rtol=1e-4, atol=1e-5)


def test_position_embedding_interpolates_for_other_sizes():
    vit = InternViT(**InternViT.tiny_args()).eval()
    with torch.no_grad():
        out = vit(torch.randn(1, 3, 56, 42))
    assert out.shape == (1, 4 * 3, 32)


def test_sincos_position_init_tells_rows_and_columns_apart():
    from earthmind_sdk.model.encoders.internvit import InternViT, sincos_2d

    torch.manual_seed(0)
    tower = InternViT(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=1,
                      image_size=56, patch_size=14, position_init="sincos")
    pos = tower.embeddings.position_embedding[0, 1:].detach()
    torch.testing.assert_close(pos, sincos_2d((4, 4), 32))
    grid = pos.reshape(4, 4, 32)
    # the row half is the same along a row and differs between rows; the column half the other way
    assert torch.equal(grid[:, 0, :16], grid[:, 3, :16]) and not torch.equal(grid[0, :, :16], grid[3, :, :16])
    assert torch.equal(grid[0, :, 16:], grid[3, :, 16:]) and not torch.equal(grid[:, 0, 16:], grid[:, 3, 16:])
    # every position has its own code, and nearby positions are more alike than far ones
    assert torch.cdist(pos, pos).fill_diagonal_(1.0).min() > 0.1
    assert torch.dist(grid[0, 0], grid[0, 1]) < torch.dist(grid[0, 0], grid[0, 3])
    with pytest.raises(ValueError, match="position_init must be 'normal' or 'sincos'"):
        InternViT(hidden_size=32, num_hidden_layers=1, image_size=56, position_init="learned")
