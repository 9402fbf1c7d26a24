"""The one definition of image preprocessing (docs/method.md section 6, docs/preprocessing.md).

Every consumer -- the SDK embedders, the exporter's calibration and parity checks, the
training's evaluation transform and (re-implemented line for line) the demo apps' cores --
calls :func:`preprocess_image`, so a phone and the host produce the same tensor.

The resize is our own instead of Pillow's because it must be re-implementable exactly in
Java, Swift and JavaScript: Pillow's resampler rounds to uint8 between its two passes and
uses fixed-point coefficients, which the other platforms cannot reproduce bit for bit. Ours
is a separable triangle (bilinear) filter with half-pixel centres that widens its support
by the shrink factor (antialiasing), computed in float64 on [0, 1] values.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

PREPROCESSING_SPEC_VERSION = 1
RESIZE_ALGORITHM = "triangle-antialias-half-pixel-v1"
#: Images with more pixels than this are refused before decoding (decompression bombs).
DEFAULT_MAX_PIXELS = 50_000_000
#: Images whose decode goes through float64 (alpha, 16-bit, float modes: ~90 bytes a pixel at the
#: peak, against 3 for 8-bit RGB) are capped lower, so a 400 KB PNG of 7071 x 7071 16-bit RGBA is
#: refused instead of allocating 4.6 GB. 8 MP keeps the peak under 1 GB.
FLOAT_PATH_MAX_PIXELS = 8_000_000
#: No photograph is wider or taller than this; a longer strip is refused before decoding.
MAX_SIDE = 1_000_000

ImageSource = str | os.PathLike | bytes | BinaryIO | Image.Image


class ImageDecodeError(ValueError):
    """An input that is not a decodable, supported image; the message names the source."""


@dataclass(frozen=True)
class PreprocessingSpec:
    """The host-side half of the model's input contract, as recorded in the manifest."""

    input_size: int = 224
    resize_shorter: int = 256
    resize_algorithm: str = RESIZE_ALGORITHM
    crop: str = "centre"
    colour_order: str = "RGB"
    value_range: tuple[float, float] = (0.0, 1.0)
    alpha_background: tuple[int, int, int] = (255, 255, 255)
    max_pixels: int = DEFAULT_MAX_PIXELS
    version: int = PREPROCESSING_SPEC_VERSION
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_input_size(cls, input_size: int) -> PreprocessingSpec:
        """Shorter side resized to S * 256 / 224 (rounded half up), the ImageNet convention."""
        return cls(input_size=input_size, resize_shorter=int(math.floor(input_size * 256 / 224 + 0.5)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["value_range"] = list(self.value_range)
        d["alpha_background"] = list(self.alpha_background)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessingSpec:
        version = int(d.get("version", PREPROCESSING_SPEC_VERSION))
        if version > PREPROCESSING_SPEC_VERSION:
            raise ValueError(
                f"preprocessing spec version {version} is newer than this SDK understands "
                f"({PREPROCESSING_SPEC_VERSION}); upgrade deepproduct"
            )
        if d.get("resize_algorithm", RESIZE_ALGORITHM) != RESIZE_ALGORITHM:
            raise ValueError(f"unknown resize algorithm {d.get('resize_algorithm')!r}")
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        for key in ("value_range", "alpha_background"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size}>"
    return "<image bytes>"


#: Modes handled by Pillow's own conversion to RGB (documented in docs/preprocessing.md).
_PLAIN_MODES = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


def decode_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS,
                 alpha_background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Decoded, upright RGB pixels: uint8 HxWx3 for 8-bit opaque images, else float64 in [0, 1].

    Keeping 8-bit images as uint8 until the resize saves 8x memory on 12-megapixel photos;
    :func:`resize_and_crop` treats uint8 values v as v / 255.
    """
    name = _describe(source)
    try:
        if isinstance(source, Image.Image):
            return _decode_opened(source, name, max_pixels, alpha_background)
        with contextlib.ExitStack() as stack:
            if isinstance(source, (bytes, bytearray, memoryview)):
                fp: Any = io.BytesIO(source)
            elif isinstance(source, (str, os.PathLike)):
                fp = stack.enter_context(_open_regular(source, name))
            else:
                fp = source  # the caller's stream: not ours to close
            img = stack.enter_context(Image.open(fp))
            return _decode_opened(img, name, max_pixels, alpha_background)
    except ImageDecodeError:
        raise
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"{name}: file not found") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, TypeError,
            Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"{name}: not a readable image ({type(exc).__name__}: {exc})") from exc


def _open_regular(path: str | os.PathLike, name: str) -> BinaryIO:
    """Open an image path for reading; a FIFO or device would block Pillow forever, so refuse it."""
    from .fileio import open_regular

    return open_regular(path, lambda: ImageDecodeError(f"{name}: not a regular file"))


def _decode_opened(img: Image.Image, name: str, max_pixels: int,
                   background: tuple[int, int, int]) -> np.ndarray:
    width, height = img.size
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"{name}: image has {width}x{height} = {width * height} pixels, more than the "
            f"cap of {max_pixels} (possible decompression bomb)"
        )
    if width < 1 or height < 1:
        raise ImageDecodeError(f"{name}: empty image ({width}x{height})")
    if max(width, height) > MAX_SIDE:  # a 190 KB 1 x 49,000,000 PNG took 1.5 GB to decode
        raise ImageDecodeError(f"{name}: {width}x{height} has a side longer than {MAX_SIDE} pixels")
    float_path = (img.mode in _ALPHA_MODES or img.mode in _SIXTEEN_BIT_MODES or img.mode == "F"
                  or img.info.get("transparency") is not None)
    if float_path and width * height > min(max_pixels, FLOAT_PATH_MAX_PIXELS):
        raise ImageDecodeError(
            f"{name}: {img.mode} image of {width}x{height} = {width * height} pixels; images with alpha or "
            f"more than 8 bits per channel are decoded in float64 and capped at {FLOAT_PATH_MAX_PIXELS} pixels")
    img.load()
    img = ImageOps.exif_transpose(img)
    return _to_rgb(img, background, name)


def _to_rgb(img: Image.Image, background: tuple[int, int, int], name: str) -> np.ndarray:
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        # 16-bit grey (mode "I" is what some decoders give for it): full 16-bit precision.
        grey = np.clip(np.asarray(img).astype(np.float64) / 65535.0, 0.0, 1.0)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.asarray(img, dtype=np.float64)
        if not np.isfinite(grey).all():  # NaN would pass clip and reach the model as NaN embeddings
            raise ImageDecodeError(f"{name}: float image with NaN or infinite pixel values")
        grey = np.clip(grey, 0.0, 1.0)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_key = img.info.get("transparency") is not None and mode in {"1", "L", "P", "RGB"}
    if mode in _ALPHA_MODES or has_key:
        # Colour-keyed and palette transparency become an alpha channel first.
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64) / 255.0
        alpha = rgba[:, :, 3:4]
        bg = np.asarray(background, dtype=np.float64) / 255.0
        return rgba[:, :, :3] * alpha + bg * (1.0 - alpha)
    if mode not in _PLAIN_MODES:
        raise ImageDecodeError(f"{name}: unsupported image mode {mode!r}")
    return np.asarray(img if mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


def load_rgb(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS,
             alpha_background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Decode, apply EXIF orientation and convert any mode to RGB float64 in [0, 1], HxWx3."""
    rgb = decode_image(source, max_pixels, alpha_background)
    return rgb / 255.0 if rgb.dtype == np.uint8 else rgb


def resize_weights(in_size: int, out_size: int, offset: int = 0, count: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Tap indices and weights mapping ``in_size`` samples to output samples ``offset..offset+count``.

    Output sample o (in the full ``out_size`` grid) is centred on input coordinate
    x = (o + 0.5) * in_size / out_size; with support s = max(in_size / out_size, 1) each input
    pixel i gets weight max(0, 1 - |i + 0.5 - x| / s); taps outside the image are dropped and
    the rest renormalised to sum to one.
    """
    count = out_size - offset if count is None else count
    scale = in_size / out_size
    support = max(scale, 1.0)
    centres = (np.arange(offset, offset + count, dtype=np.float64) + 0.5) * scale
    first = np.floor(centres - support).astype(np.int64)
    taps = int(math.ceil(2 * support)) + 2
    idx = first[:, None] + np.arange(taps)[None, :]
    w = 1.0 - np.abs(idx + 0.5 - centres[:, None]) / support
    w = np.where((idx >= 0) & (idx < in_size) & (w > 0), w, 0.0)
    w /= w.sum(axis=1, keepdims=True)
    return np.clip(idx, 0, in_size - 1), w


def _resample_axis(arr: np.ndarray, idx: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    # A loop over filter taps (a few dozen at most), never over pixels.
    out = None
    for k in range(idx.shape[1]):
        term = np.take(arr, idx[:, k], axis=axis)
        shape = [1] * arr.ndim
        shape[axis] = -1
        term = term * w[:, k].reshape(shape)
        out = term if out is None else out + term
    return out


def resized_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """Size after resizing the shorter side to ``shorter``; the longer side rounds half up."""
    if height <= width:
        return shorter, max(shorter, int(math.floor(width * shorter / height + 0.5)))
    return max(shorter, int(math.floor(height * shorter / width + 0.5))), shorter


def resize_and_crop(rgb: np.ndarray, spec: PreprocessingSpec) -> np.ndarray:
    """Resize the shorter side to ``spec.resize_shorter`` and take the centre S x S crop.

    ``rgb``: HxWx3 float in [0, 1], or uint8 (values / 255). Returns float64 SxSx3. Only the
    cropped output samples are computed, rows (y) first, then columns (x).
    Crop offset = floor((resized - S) / 2). Memory is bounded by the crop, not the image: only the
    input rows and columns that the crop's filter taps touch are read.
    """
    if spec.resize_shorter < spec.input_size:
        raise ValueError(f"resize_shorter {spec.resize_shorter} is smaller than input_size {spec.input_size}")
    height, width = rgb.shape[:2]
    new_h, new_w = resized_size(height, width, spec.resize_shorter)
    size = spec.input_size
    top, left = (new_h - size) // 2, (new_w - size) // 2
    idx_y, w_y = resize_weights(height, new_h, top, size)
    idx_x, w_x = resize_weights(width, new_w, left, size)
    # Only the rows and columns the crop's taps read: a 1 x 1,000,000 image would otherwise make
    # the row pass 224 x 1,000,000 x 3 float64 (5 GB). Same taps, same order: the same result.
    (y0, y1), (x0, x1) = (int(idx_y.min()), int(idx_y.max()) + 1), (int(idx_x.min()), int(idx_x.max()) + 1)
    rgb = rgb[y0:y1, x0:x1]
    idx_y, idx_x = idx_y - y0, idx_x - x0
    tmp = _resample_axis(rgb, idx_y, w_y, axis=0)
    out = _resample_axis(tmp, idx_x, w_x, axis=1)
    return out / 255.0 if rgb.dtype == np.uint8 else out


def preprocess_image(source: ImageSource, spec: PreprocessingSpec | None = None,
                     layout: str = "NCHW") -> np.ndarray:
    """Image in, model input out: float32 RGB in [0, 1], shape 1x3xSxS (NCHW) or 1xSxSx3 (NHWC)."""
    spec = spec or PreprocessingSpec()
    rgb = decode_image(source, spec.max_pixels, spec.alpha_background)
    out = resize_and_crop(rgb, spec).astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    if layout == "NCHW":
        return np.ascontiguousarray(out.transpose(2, 0, 1)[None])
    if layout == "NHWC":
        return np.ascontiguousarray(out[None])
    if layout == "HWC":
        return out
    raise ValueError(f"unknown layout {layout!r}; expected NCHW, NHWC or HWC")


def preprocess_batch(sources: list[ImageSource], spec: PreprocessingSpec | None = None,
                     layout: str = "NCHW") -> np.ndarray:
    """Stack of :func:`preprocess_image` results (the batch axis first)."""
    return np.concatenate([preprocess_image(s, spec, layout) for s in sources], axis=0)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
