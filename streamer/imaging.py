"""The one image encoder: RGB frames -> PNG, JPEG or WebP bytes, and the format names.

Names inside the server are the canonical ones below ("png", "jpeg", "webp"). The wire
names stay what clients already send: REST's output_format also takes "jpg" (ALIASES) and
files end in ".jpg"; the WebSocket's subscribe_frames takes "jpeg" and "webp".

Speed matters more than the last few percent of size: PNG goes through OpenCV with zlib
level 1 and the RLE strategy (about twice as fast as Pillow's level 1 at 512x512), WebP
uses libwebp's fastest method. Encoding is CPU work: call it off the event loop.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class ImageFormat:
    extension: str  # file name extension, without the dot
    mime: str
    default_quality: int | None  # None: lossless


FORMATS: dict[str, ImageFormat] = {
    "png": ImageFormat("png", "image/png", None),
    "jpeg": ImageFormat("jpg", "image/jpeg", 92),
    "webp": ImageFormat("webp", "image/webp", 90),
}
ALIASES: dict[str, str] = {"jpg": "jpeg"}
MIME_TO_FORMAT: dict[str, str] = {f.mime: name for name, f in FORMATS.items()}
EXTENSION_TO_FORMAT: dict[str, str] = {f.extension: name for name, f in FORMATS.items()}


def format_named(value: str) -> str | None:
    """The canonical format for a client's name or file extension (any case), or None."""
    v = value.strip().lower()
    v = ALIASES.get(v, v)
    return v if v in FORMATS else None


def encode_image(frame: np.ndarray, fmt: str, quality: int | None = None) -> bytes:
    """HxWx3 uint8 RGB -> one complete image file. ``quality`` is for JPEG and WebP."""
    spec = FORMATS[fmt]
    q = spec.default_quality if quality is None else int(quality)
    if fmt == "webp":
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame)).save(out, format="WEBP", quality=q, method=0)
        return out.getvalue()
    bgr = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
    if fmt == "png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    else:
        params = [cv2.IMWRITE_JPEG_QUALITY, q]
    ok, buf = cv2.imencode("." + spec.extension, bgr, params)
    if not ok:
        raise RuntimeError(f"{fmt} encoding failed")
    return buf.tobytes()
