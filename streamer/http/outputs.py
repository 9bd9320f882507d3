"""Rendered outputs on disk: unguessable names, strict name checks, expiry after a TTL.

Only names this module could have made (32 hex chars + a known extension) are ever served,
deleted or expired, so ``../`` tricks cannot reach outside the folder and a shared folder
such as /tmp/liveportrait_output never loses files that are not ours.

Outputs are the users' faces: the folder is created 0700 and files 0600. A folder that
another user owns, or a symlink, is refused at startup with a clear error rather than used
as it is (in a shared /tmp another user could have made it first); one of ours that others
can read is made 0700.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass, field
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


class OutputDirError(RuntimeError):
    """The output folder cannot be used safely; the message says why and what to do."""


def secure_output_dir(directory: Path, uid: int | None = None) -> Path:
    """Create the folder 0700, or check that an existing one is ours and private.
    ``uid`` (default: ours) exists so tests can pose as another user."""
    uid = os.geteuid() if uid is None else uid
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, mode=0o700, exist_ok=False)
    except FileExistsError:
        pass
    except OSError as exc:
        raise OutputDirError(f"cannot create the output folder {directory}: {exc.strerror}") from None
    try:
        st = os.lstat(directory)
    except OSError as exc:
        raise OutputDirError(f"cannot read the output folder {directory}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise OutputDirError(f"the output folder {directory} is not a plain directory "
                             "(a symlink or a file); pick another with --output-dir")
    if st.st_uid != uid:
        raise OutputDirError(f"the output folder {directory} belongs to another user (uid "
                             f"{st.st_uid}); rendered faces would be theirs to read. Remove it "
                             "or pick another with --output-dir")
    if st.st_mode & 0o077:
        try:
            os.chmod(directory, 0o700)  # ours, but readable by others (an older version made it)
        except OSError as exc:
            raise OutputDirError(f"cannot make the output folder {directory} private: "
                                 f"{exc.strerror}") from None
    return directory.resolve()


@dataclass
class OutputStore:
    directory: Path
    ttl_s: float
    uid: int | None = field(default=None, repr=False)  # tests pose as another user

    def __post_init__(self) -> None:
        self.directory = secure_output_dir(Path(self.directory), self.uid)

    def write(self, data: bytes, fmt: str) -> tuple[str, Path]:
        """Store bytes under a fresh unguessable name. Blocking file I/O: off the loop."""
        ext = fmt if fmt in VIDEO_MIME else FORMATS[fmt].extension
        name = f"{secrets.token_hex(16)}.{ext}"
        path = self.directory / name
        tmp = path.with_suffix(".part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
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
