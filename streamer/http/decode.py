"""Uploaded bytes -> an upright 8-bit RGB array: the one image decoder of the server.

Every path that turns client bytes into pixels comes here (REST, POST /sessions, the CLI's
render), so every one of them gets the same rules:
- the declared size is checked before any pixel is decoded (413 past the pixel limit);
- EXIF orientation is applied, so a phone photo stored sideways or upside down is upright,
  as every image viewer shows it;
- high-bit-depth images (16-bit grey or colour PNG/TIFF, 32-bit integer or float TIFF) are
  scaled to 8 bits instead of being clipped to near-white;
- photos larger than ``max_source_pixels`` are scaled down while decoding (JPEG decodes at a
  reduced DCT scale, which is also far cheaper), so no single engine call works on more.
Blocking CPU work: call it off the event loop.
"""
from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from streamer.errors import ApiError

MIN_SIDE = 32
# EXIF orientations 5-8 swap width and height.
_TRANSPOSED_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112


def _too_large(w: int, h: int, max_pixels: int) -> ApiError:
    return ApiError(413, "image_too_large", f"image has {w}x{h} pixels; the limit is {max_pixels} pixels")


def _invalid() -> ApiError:
    return ApiError(422, "invalid_image", "source_image is not a decodable image (JPEG, PNG or WebP)")


def fit_size(w: int, h: int, max_pixels: int | None) -> tuple[int, int]:
    """(w, h) scaled down, aspect kept, to at most max_pixels; unchanged when it fits."""
    if max_pixels is None or w * h <= max_pixels:
        return w, h
    scale = math.sqrt(max_pixels / (w * h))
    return max(1, int(w * scale)), max(1, int(h * scale))


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block is no orientation, not an error
        return 1


def image_size(data: bytes) -> tuple[int, int] | None:
    """The upright (w, h) the header declares, or None when it is not an image we can open.
    Reads the header only."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if _orientation(img) in _TRANSPOSED_ORIENTATIONS:
                w, h = h, w
    except Exception:  # noqa: BLE001 - undecodable: decode_image gives the real error
        return None
    return w, h


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> HxWx3 uint8, scaling high-bit-depth values instead of clipping."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(img)
        if mode.startswith("I;16"):
            g = (a.astype(np.uint32) + 128) // 257  # 0..65535 -> 0..255, rounded
        elif mode == "F":
            f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            top = float(f.max()) if f.size else 0.0
            # Float images are 0..1 by convention; larger ones are taken as 8 or 16 bits.
            scale = 255.0 if top <= 1.0 else (1.0 if top <= 255.0 else 255.0 / 65535.0)
            g = np.clip(np.rint(f * scale), 0, 255)
        else:  # 32-bit integers: 16-bit data in practice (e.g. a 16-bit TIFF saved as "I")
            i = np.clip(a.astype(np.int64), 0, None)
            top = int(i.max()) if i.size else 0
            g = i if top <= 255 else (np.minimum(i, 65535) + 128) // 257
        g8 = g.astype(np.uint8)
        return np.repeat(g8[:, :, None], 3, axis=2)
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def decode_image(data: bytes, max_pixels: int, max_source_pixels: int | None = None) -> np.ndarray:
    """Bytes -> upright HxWx3 uint8 RGB, or ApiError (400 empty, 413 too many pixels, 422
    undecodable or too small). ``max_source_pixels``: scale larger photos down to this."""
    if not data:
        raise ApiError(400, "empty_file", "source_image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise _too_large(w, h, max_pixels)
            target = fit_size(w, h, max_source_pixels)
            scaled = target != (w, h)
            if scaled and img.format == "JPEG":
                img.draft("RGB", target)  # decode at 1/2, 1/4 or 1/8 scale, still >= target
            turned = _orientation(img) in _TRANSPOSED_ORIENTATIONS
            img.load()  # truncated files fail here, not later
            img = ImageOps.exif_transpose(img)  # also drops the tag, so nothing applies it twice
            if scaled:
                img = _resize(img, (target[1], target[0]) if turned else target)
            arr = _to_rgb8(img)
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(413, "image_too_large", "image has too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError):
        raise _invalid() from None
    if arr.ndim != 3 or arr.shape[0] < MIN_SIDE or arr.shape[1] < MIN_SIDE:
        raise ApiError(422, "invalid_image", f"image is too small (at least {MIN_SIDE}x{MIN_SIDE} pixels)")
    return np.ascontiguousarray(arr)


def _resize(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    if img.mode not in ("RGB", "L"):
        if img.mode.startswith("I;16") or img.mode in ("I", "F"):
            img = Image.fromarray(_to_rgb8(img))
        else:
            img = img.convert("RGB")
    return img.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)


def check_pixels(data: bytes, max_pixels: int) -> None:
    """413 when the image header declares more than max_pixels (reads the header only)."""
    size = image_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise _too_large(size[0], size[1], max_pixels)
