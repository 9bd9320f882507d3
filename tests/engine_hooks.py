"""Test-only faults for the engine child process: ProcessEngine(req, child_hook=HOOK).

The child passes its real engine through ``faulty``; the wrapper behaves exactly like it,
except that a 1x1 "command image" handed to prepare() asks for a fault. Production code
has no such commands: the hook is only ever set here.
"""
from __future__ import annotations

import os
import time

import numpy as np

from avatar_testkit.engine_wrap import EngineWrapper
from engine.api import Engine, Source

HOOK = "engine_hooks:faulty"
_CRASH, _STALL = 1, 2


def crash_image() -> np.ndarray:
    """prepare(crash_image()) makes the child exit abruptly, as a segfault would."""
    return np.array([[[_CRASH, 0, 0]]], np.uint8)


def stall_image(seconds: int) -> np.ndarray:
    """prepare(stall_image(s)) keeps the child busy for s seconds, as a very slow call would."""
    return np.array([[[_STALL, seconds, 0]]], np.uint8)


class FaultyEngine(EngineWrapper):
    def prepare(self, image: np.ndarray) -> Source:
        if image.shape[:2] == (1, 1):
            command, arg = int(image[0, 0, 0]), int(image[0, 0, 1])
            if command == _CRASH:
                os._exit(3)
            if command == _STALL:
                time.sleep(arg)
        return self.inner.prepare(image)


def faulty(engine: Engine) -> Engine:
    return FaultyEngine(engine)
