"""JPEG/WebP encoding of session frames for `subscribe_frames`, off the event loop.

cv2.imencode releases the GIL, so a small dedicated pool keeps encodes from competing
with the engine thread's queue and from blocking the loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass

import cv2
import numpy as np

_POOL = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="frame-encode")


def encode_frame(frame: np.ndarray, fmt: str, quality: int) -> bytes:
    """RGB uint8 frame -> one complete JPEG or WebP image."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == "webp":
        ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, int(quality)])
    else:
        raise ValueError(f"unknown frame format {fmt!r}")
    if not ok:
        raise RuntimeError(f"{fmt} encoding failed")
    return buf.tobytes()


async def encode_frame_async(frame: np.ndarray, fmt: str, quality: int) -> bytes:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, encode_frame, frame, fmt, quality)


@dataclass
class FrameSubscription:
    """One socket's subscribe_frames settings; at most one encode in flight (newest wins)."""

    format: str
    quality: int
    fps: float
    last_sent: float = -1e9
    busy: bool = False

    def due(self, now: float) -> bool:
        # 10% slack so a 25 fps subscription on a 25 fps session never skips every other frame.
        return not self.busy and now - self.last_sent >= 0.9 / self.fps
