"""Test-only faults for the engine child process: ProcessEngine(req, child_hook=HOOK).

The child passes its real engine through ``faulty``; the wrapper behaves exactly like it,
except that a 1x1 "command image" handed to prepare() asks for a fault. Production code
has no such commands: the hook is only ever set here.
"""
from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np

from engine.api import Engine, EngineInfo, Source
from engine.motion import Motion

HOOK = "engine_hooks:faulty"
_CRASH, _STALL = 1, 2


def crash_image() -> np.ndarray:
    """prepare(crash_image()) makes the child exit abruptly, as a segfault would."""
    return np.array([[[_CRASH, 0, 0]]], np.uint8)


def stall_image(seconds: int) -> np.ndarray:
    """prepare(stall_image(s)) keeps the child busy for s seconds, as a very slow call would."""
    return np.array([[[_STALL, seconds, 0]]], np.uint8)


class FaultyEngine:
    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def info(self) -> EngineInfo:
        return self.inner.info

    def prepare(self, image: np.ndarray) -> Source:
        if image.shape[:2] == (1, 1):
            command, arg = int(image[0, 0, 0]), int(image[0, 0, 1])
            if command == _CRASH:
                os._exit(3)
            if command == _STALL:
                time.sleep(arg)
        return self.inner.prepare(image)

    def render(self, jobs: Sequence[tuple[Source, Motion]], mode: str = "crop",
               size: int | None = None) -> list[np.ndarray]:
        return self.inner.render(jobs, mode=mode, size=size)  # type: ignore[arg-type]

    def release(self, source: Source) -> None:
        self.inner.release(source)


def faulty(engine: Engine) -> Engine:
    return FaultyEngine(engine)
