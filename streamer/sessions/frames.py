"""Session frames for `subscribe_frames`: JPEG/WebP encoding off the event loop, and the
per-socket subscription state.

The encoders release the GIL, so a small dedicated pool keeps encodes from competing
with the engine thread's queue and from blocking the loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import struct
from dataclasses import dataclass

import numpy as np

from streamer.imaging import encode_image

_POOL = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="frame-encode")


async def encode_frame_async(frame: np.ndarray, fmt: str, quality: int) -> bytes:
    """fmt: "jpeg" or "webp" (the subscribe_frames names are the imaging names)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, encode_image, frame, fmt, quality)


# subscribe_frames {"timestamps": true}: each binary frame starts with its presentation time,
# a little-endian float64 of milliseconds on the session's media clock, then the image.
PTS_HEADER = struct.Struct("<d")


@dataclass
class FrameSubscription:
    """One socket's subscribe_frames settings; at most one encode in flight (newest wins)."""

    format: str
    quality: int
    fps: float
    last_sent: float = -1e9
    busy: bool = False
    timestamps: bool = False  # prefix frames with PTS_HEADER (docs/protocol.md, Speech)

    def due(self, now: float) -> bool:
        # 10% slack so a 25 fps subscription on a 25 fps session never skips every other frame.
        return not self.busy and now - self.last_sent >= 0.9 / self.fps
