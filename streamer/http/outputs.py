"""Rendered outputs on disk: unguessable names, strict name checks, expiry after a TTL.

Only names this module could have made (32 hex chars + a known extension) are ever served,
deleted or expired, so ``../`` tricks cannot reach outside the folder and a shared folder
such as /tmp/liveportrait_output never loses files that are not ours.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from streamer.errors import ApiError

# output_format -> (extension, PIL format, MIME type)
FORMATS: dict[str, tuple[str, str, str]] = {
    "png": ("png", "PNG", "image/png"),
    "jpg": ("jpg", "JPEG", "image/jpeg"),
    "webp": ("webp", "WEBP", "image/webp"),
}
FORMAT_ALIASES = {"jpeg": "jpg"}
MIME_TO_FORMAT = {mime: fmt for fmt, (_, _, mime) in FORMATS.items()}
_NAME_RE = re.compile(r"^[0-9a-f]{32}\.(png|jpg|webp)$")


def normalise_format(value: str) -> str | None:
    v = value.strip().lower()
    v = FORMAT_ALIASES.get(v, v)
    return v if v in FORMATS else None


def encode_image(frame: np.ndarray, fmt: str) -> bytes:
    """HxWx3 uint8 RGB -> file bytes. CPU work: call it off the event loop.

    Speed matters more than the last few percent of size here: PNG goes through OpenCV with
    zlib level 1 and the RLE strategy (about twice as fast as Pillow's level 1 at 512x512),
    WebP uses libwebp's fastest method.
    """
    if fmt == "png":
        import cv2

        bgr = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1,
                                             cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
        if not ok:
            raise RuntimeError("PNG encoding failed")
        return buf.tobytes()
    _, pil_format, _ = FORMATS[fmt]
    out = io.BytesIO()
    options = {"quality": 92} if fmt == "jpg" else {"quality": 90, "method": 0}
    Image.fromarray(frame).save(out, format=pil_format, **options)
    return out.getvalue()


def mime_of(filename: str) -> str:
    return FORMATS[filename.rsplit(".", 1)[1]][2]


def storage_error(exc: OSError) -> ApiError:
    """A failed output write as a client-facing error; never the path or the OS text."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ApiError(507, "insufficient_storage",
                        "the server has no space left for outputs; retry later or ask for the "
                        "image directly with an Accept: image/* header")
    return ApiError(500, "output_unwritable", "the server cannot write outputs right now")


@dataclass
class OutputStore:
    directory: Path
    ttl_s: float

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, data: bytes, fmt: str) -> tuple[str, Path]:
        """Store bytes under a fresh unguessable name. Blocking file I/O: off the loop."""
        name = f"{secrets.token_hex(16)}.{FORMATS[fmt][0]}"
        path = self.directory / name
        tmp = path.with_suffix(".part")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see half a file
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()  # no half-written leftovers on a full disk
            raise storage_error(exc) from None
        return name, path

    def resolve(self, filename: str) -> Path | None:
        """The path of a live output, or None (bad name, missing, or expired)."""
        if not _NAME_RE.fullmatch(filename):
            return None
        path = self.directory / filename
        try:
            st = path.stat()
        except OSError:
            return None
        if time.time() - st.st_mtime > self.ttl_s:
            return None
        return path

    def delete(self, filename: str) -> bool:
        path = self.resolve(filename)
        if path is None:
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def expire(self, now: float | None = None) -> int:
        """Remove our outputs older than the TTL; returns how many went."""
        now = time.time() if now is None else now
        removed = 0
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return 0
        for entry in entries:
            if not _NAME_RE.fullmatch(entry.name):
                continue
            try:
                if now - entry.stat().st_mtime > self.ttl_s:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
        return removed
