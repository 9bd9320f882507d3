"""Rendered outputs on disk: unguessable names, strict name checks, expiry after a TTL.

Only names this module could have made (32 hex chars + a known extension) are ever served,
deleted or expired, so ``../`` tricks cannot reach outside the folder and a shared folder
such as /tmp/liveportrait_output never loses files that are not ours.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from streamer.errors import ApiError
from streamer.imaging import EXTENSION_TO_FORMAT, FORMATS

_NAME_RE = re.compile(r"^[0-9a-f]{32}\.(png|jpg|webp|mp4|webm)$")
# Clips from POST /render/video (streamer/video): extension -> MIME type.
VIDEO_MIME = {"mp4": "video/mp4", "webm": "video/webm"}


def mime_of(filename: str) -> str:
    ext = filename.rsplit(".", 1)[1]
    if ext in VIDEO_MIME:
        return VIDEO_MIME[ext]
    return FORMATS[EXTENSION_TO_FORMAT[filename.rsplit(".", 1)[1]]].mime


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
        ext = fmt if fmt in VIDEO_MIME else FORMATS[fmt].extension
        name = f"{secrets.token_hex(16)}.{ext}"
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
