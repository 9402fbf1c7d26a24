"""The one preprocessing definition: modes, EXIF, pixel cap, resize filter, layouts."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deepproduct.sdk.preprocessing import (
    ImageDecodeError,
    PreprocessingSpec,
    decode_image,
    load_rgb,
    preprocess_image,
    resize_and_crop,
    resize_weights,
    resized_size,
)

SPEC = PreprocessingSpec.for_input_size(32)


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def _pattern(h: int = 30, w: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_spec_defaults_and_round_trip():
    assert PreprocessingSpec().resize_shorter == 256
    assert PreprocessingSpec.for_input_size(224).resize_shorter == 256
    assert SPEC.resize_shorter == 37
    assert PreprocessingSpec.from_dict(SPEC.to_dict()) == SPEC
    with pytest.raises(ValueError, match="newer"):
        PreprocessingSpec.from_dict({**SPEC.to_dict(), "version": 99})
    with pytest.raises(ValueError, match="resize algorithm"):
        PreprocessingSpec.from_dict({**SPEC.to_dict(), "resize_algorithm": "bicubic"})


def test_rgb_and_grey_modes():
    rgb = _pattern()
    np.testing.assert_array_equal(load_rgb(_png(Image.fromarray(rgb))), rgb / 255.0)
    grey = rgb[:, :, 0]
    out = load_rgb(_png(Image.fromarray(grey)))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None] / 255.0, 3, axis=2))
    bw = load_rgb(_png(Image.fromarray(grey > 128)))
    assert set(np.unique(bw)) <= {0.0, 1.0}


def test_palette_with_and_without_transparency():
    pal = Image.fromarray(_pattern()).quantize(colors=8)
    np.testing.assert_array_equal(load_rgb(_png(pal)), np.asarray(pal.convert("RGB")) / 255.0)
    idx = np.asarray(pal)
    out = load_rgb(_png(pal, transparency=int(idx[0, 0])))
    assert np.all(out[idx == idx[0, 0]] == 1.0)  # transparent index -> white background
    other = idx != idx[0, 0]
    np.testing.assert_array_equal(out[other], (np.asarray(pal.convert("RGB")) / 255.0)[other])


def test_alpha_over_white_and_custom_background():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = [[0], [255], [128], [64]]
    img = Image.fromarray(rgba, "RGBA")
    out = load_rgb(img)
    a = rgba[..., 3:4] / 255.0
    np.testing.assert_allclose(out, np.dstack([200 / 255.0 * a[..., 0] + (1 - a[..., 0]),
                                               (1 - a[..., 0]), (1 - a[..., 0])]), atol=1e-15)
    black = load_rgb(img, alpha_background=(0, 0, 0))
    np.testing.assert_allclose(black[0, 0], [0, 0, 0])
    la = load_rgb(Image.fromarray(rgba[..., [0, 3]], "LA"))
    assert la[0, 0].tolist() == [1.0, 1.0, 1.0]


def test_colour_key_transparency_on_rgb_png():
    rgb = _pattern(8, 8)
    rgb[0, 0] = (1, 2, 3)
    out = load_rgb(_png(Image.fromarray(rgb), transparency=(1, 2, 3)))
    assert out[0, 0].tolist() == [1.0, 1.0, 1.0]


def test_sixteen_bit_grey_keeps_precision():
    values = np.array([[0, 1, 257, 65535]], dtype=np.uint16)
    data = _png(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = load_rgb(data)
    np.testing.assert_array_equal(out[0, :, 0], values[0] / 65535.0)
    big = Image.fromarray(np.array([[70000, 100]], dtype=np.int32), "I")
    assert load_rgb(big)[0, :, 0].tolist() == [1.0, 100 / 65535.0]  # deterministic, clipped


def test_cmyk_formula():
    img = Image.new("CMYK", (1, 1), (100, 50, 200, 30))
    out = decode_image(img)
    expected = [round((255 - c) * (255 - 30) / 255) for c in (100, 50, 200)]
    assert out[0, 0].tolist() == expected


def test_other_modes_and_refusals():
    for mode in ("YCbCr", "RGBX", "F", "I", "1", "PA"):
        assert load_rgb(Image.new(mode, (3, 2))).shape == (2, 3, 3)
    with pytest.raises(ImageDecodeError, match="unsupported image mode 'LAB'"):
        load_rgb(Image.new("LAB", (3, 2)))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(orientation):
    arr = _pattern(6, 10)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decode_image(_png(Image.fromarray(arr), exif=exif))
    expected = {  # EXIF 2.3 orientations, as numpy views of the stored pixels
        1: arr, 2: arr[:, ::-1], 3: arr[::-1, ::-1], 4: arr[::-1], 5: arr.transpose(1, 0, 2),
        6: np.rot90(arr, -1), 7: arr[::-1, ::-1].transpose(1, 0, 2), 8: np.rot90(arr, 1),
    }[orientation]
    np.testing.assert_array_equal(out, expected)


def test_pixel_cap_refuses_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100)).save(path)
    with pytest.raises(ImageDecodeError, match="decompression bomb") as err:
        preprocess_image(path, PreprocessingSpec(input_size=32, resize_shorter=37, max_pixels=10_000))
    assert str(path) in str(err.value)
    assert preprocess_image(path, SPEC).shape == (1, 3, 32, 32)


def test_unreadable_inputs_name_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    good = io.BytesIO()
    Image.fromarray(_pattern()).save(good, "JPEG")
    bad.write_bytes(good.getvalue()[:200])
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        preprocess_image(bad, SPEC)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageDecodeError, match="notes.png"):
        preprocess_image(text, SPEC)
    with pytest.raises(ImageDecodeError, match="file not found"):
        preprocess_image(tmp_path / "missing.png", SPEC)


def test_resize_filter_definition():
    # Shrink by 2: interior tent weights 1/8, 3/8, 3/8, 1/8 (support 2, half-pixel centres).
    idx, w = resize_weights(8, 4)
    row = dict(zip(idx[1].tolist(), w[1].tolist(), strict=True))
    assert {k: v for k, v in row.items() if v} == pytest.approx({1: 1 / 8, 2: 3 / 8, 3: 3 / 8, 4: 1 / 8})
    np.testing.assert_allclose(w.sum(1), 1.0)
    # Same size: identity; enlarging: plain bilinear between the two nearest centres.
    idx, w = resize_weights(5, 5)
    assert np.all(w.max(1) == 1.0) and idx[np.arange(5), w.argmax(1)].tolist() == list(range(5))
    idx, w = resize_weights(2, 4)
    row = {i: v for i, v in zip(idx[1].tolist(), w[1].tolist(), strict=True) if v}
    assert row == pytest.approx({0: 0.75, 1: 0.25})
    assert resized_size(48, 64, 37) == (37, 49) and resized_size(100, 20, 37) == (185, 37)


def test_resize_preserves_constants_and_identity():
    const = np.full((50, 70, 3), 0.3)
    out = resize_and_crop(const, SPEC)
    np.testing.assert_allclose(out, 0.3, atol=1e-12)
    arr = _pattern(32, 32)
    same = PreprocessingSpec(input_size=32, resize_shorter=32)
    np.testing.assert_allclose(resize_and_crop(arr, same), arr / 255.0, atol=1e-15)
    np.testing.assert_allclose(resize_and_crop(arr, SPEC), resize_and_crop(arr / 255.0, SPEC), atol=1e-12)
    with pytest.raises(ValueError, match="smaller than input_size"):
        resize_and_crop(arr, PreprocessingSpec(input_size=32, resize_shorter=30))


def test_layouts_and_sources(tmp_path):
    arr = _pattern(40, 50)
    path = tmp_path / "x.png"
    Image.fromarray(arr).save(path)
    nchw = preprocess_image(path, SPEC)
    assert nchw.dtype == np.float32 and nchw.shape == (1, 3, 32, 32)
    nhwc = preprocess_image(path.read_bytes(), SPEC, layout="NHWC")
    np.testing.assert_array_equal(nchw[0].transpose(1, 2, 0), nhwc[0])
    with open(path, "rb") as f:
        np.testing.assert_array_equal(preprocess_image(f, SPEC, layout="HWC"), nhwc[0])
    assert 0.0 <= nchw.min() and nchw.max() <= 1.0
    with pytest.raises(ValueError, match="layout"):
        preprocess_image(path, SPEC, layout="CHW")
