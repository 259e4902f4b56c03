"""Pixels: 8-bit rasters reach the model exactly as the authors' PIL path gives them.

The reference below is that path written out with PIL and torchvision: open the image as RGB,
pick the tile grid, PIL bicubic resize, row-major 448 crops (+ a 448 thumbnail when there are
several), ``T.Resize((448, 448), BICUBIC)``, ``ToTensor``, ``Normalize(ImageNet)``; the SAM2 input
is the PIL bicubic 1024 resize, ``/ 255``, minus / over the bfloat16-built ImageNet mean / std.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from earthmind_sdk.model import tiling
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec
from earthmind_sdk.plugins import registry

DATA = str(Path(__file__).resolve().parents[1] / "data") + "/"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def model448():
    """The tiny graph at the release's sizes: 448 px tiles, 1..12 tiles, SAM2 input 1024."""
    raw = load_spec("tiny").to_dict()
    raw["image"]["size"] = 448
    raw["encoder"]["args"]["image_size"] = 448
    raw["encoder"]["args"]["num_hidden_layers"] = 1
    raw["decoder"]["args"]["overrides"]["image_size"] = 1024
    return build_model(raw).eval()


def authors_tiles(image: Image.Image, size=448, max_num=12):
    image = image.convert("RGB")
    cols, rows = tiling.closest_grid(image.width, image.height, size, 1, max_num)
    big = image.resize((cols * size, rows * size))  # PIL's default filter for RGB: bicubic
    crops = [big.crop(((i % cols) * size, (i // cols) * size, (i % cols + 1) * size, (i // cols + 1) * size))
             for i in range(cols * rows)]
    if len(crops) > 1:
        crops.append(image.resize((size, size)))
    tf = T.Compose([T.Resize((size, size), interpolation=InterpolationMode.BICUBIC), T.ToTensor(),
                    T.Normalize(mean=MEAN, std=STD)])
    return torch.stack([tf(c) for c in crops])


def authors_sam(image: Image.Image, size=1024):
    g = torch.from_numpy(np.array(image.convert("RGB").resize((size, size)))).permute(2, 0, 1).contiguous().float()
    g = g / 255.0
    g -= torch.tensor(MEAN, dtype=torch.bfloat16)[:, None, None]
    g /= torch.tensor(STD, dtype=torch.bfloat16)[:, None, None]
    return g


def _frame(sensor, path, **kw):
    return registry("sensors").build(sensor, **kw).load(path).frames[0]


@pytest.mark.parametrize("width,tiles", [(96, 1), (128, 13)])  # square: 1 tile; 4:3: 4 x 3 + thumbnail
def test_optical_png_is_bit_equal_to_the_pil_path(model448, width, tiles):
    image = Image.open(DATA + "optical_rmnp_rgb.png").convert("RGB").crop((0, 0, width, 96))
    frame = registry("sensors").build("optical").load(np.asarray(image).transpose(2, 0, 1).copy()).frames[0]
    ours, ref = model448.preprocess(frame), authors_tiles(image)
    assert ours.shape == ref.shape and ours.shape[0] == tiles
    assert torch.equal(ours, ref)
    assert torch.equal(model448.preprocess_sam(frame), authors_sam(image))


def test_optical_png_file_and_uint8_geotiff(model448):
    png = Image.open(DATA + "optical_rmnp_rgb.png")
    frame = _frame("optical", DATA + "optical_rmnp_rgb.png")
    assert torch.equal(model448.preprocess(frame), authors_tiles(png))
    assert torch.equal(model448.preprocess_sam(frame), authors_sam(png))
    # the GeoTIFF holds the same pixels and declares nodata 255: those pixels become 0 (on purpose),
    # everything else reaches the model as the PNG does
    tif = _frame("optical", DATA + "optical_rmnp_rgb.tif")
    data = np.array(png.convert("RGB"))
    nodata = (data == 255).any(-1)
    assert 0 < nodata.sum() < 20
    data[nodata] = 0
    assert torch.equal(model448.preprocess(tif), authors_tiles(Image.fromarray(data)))
    assert torch.equal(model448.preprocess_sam(tif), authors_sam(Image.fromarray(data)))


def test_8bit_sar_grey_and_three_channel(model448, tmp_path):
    grey = Image.open(DATA + "optical_rmnp_rgb.png").convert("L")
    grey.save(tmp_path / "sar.png")
    grey.convert("RGB").save(tmp_path / "sar_rgb.png")
    for name in ("sar.png", "sar_rgb.png"):
        frame = _frame("sar", str(tmp_path / name))
        assert torch.equal(model448.preprocess(frame), authors_tiles(Image.open(tmp_path / name)))
        assert torch.equal(model448.preprocess_sam(frame), authors_sam(Image.open(tmp_path / name)))


@pytest.mark.parametrize("sensor,path", [("optical", "landsat8_oli_b2_b3_b4.tif"),
                                         ("sentinel2", "sentinel2_b02_b03_b04_b08.tif"),
                                         ("sentinel1", "sentinel1_synthetic_vv_vh.tif")])
def test_16bit_and_float_rasters_reach_the_8bit_domain_by_rounding(model448, sensor, path):
    """Documented rule: the sensor's [0, 1] frame is rounded to 8 bits (round(255 x)), as saving
    it as a PNG would, then follows the PIL path."""
    kw = {"grouping": "truecolor"} if sensor == "sentinel2" else {}
    frame = _frame(sensor, DATA + path, **kw)
    assert not torch.equal((frame * 255).round() / 255, frame)  # a genuinely non-8-bit frame
    png = Image.fromarray(np.round(frame.double().numpy() * 255).astype(np.uint8).transpose(1, 2, 0))
    assert torch.equal(model448.preprocess(frame), authors_tiles(png))
    assert torch.equal(model448.preprocess_sam(frame), authors_sam(png))


def test_float_path_stays_as_an_option(model448):
    raw = model448.spec.to_dict()
    raw["image"]["resample"] = "torch"
    other = build_model(raw).eval()
    frame = _frame("optical", DATA + "optical_rmnp_rgb.png")
    a, b = other.preprocess(frame), model448.preprocess(frame)
    assert a.shape == b.shape and 0 < (a - b).abs().max() < 0.5
    with pytest.raises(Exception, match="image.resample"):
        raw["image"]["resample"] = "lanczos"
        load_spec(raw)
