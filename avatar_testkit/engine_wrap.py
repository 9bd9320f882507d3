"""A pass-through engine for tests: subclasses wrap the real engine and change one call
(add a delay, count the jobs, inject a failure) while everything else goes to the inner one."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from engine.api import Engine, EngineInfo, Source
from engine.motion import Motion


class EngineWrapper:
    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def info(self) -> EngineInfo:
        return self.inner.info

    def prepare(self, image: np.ndarray) -> Source:
        return self.inner.prepare(image)

    def render(self, jobs: Sequence[tuple[Source, Motion]], mode: str = "crop",
               size: int | None = None) -> list[np.ndarray]:
        return self.inner.render(jobs, mode=mode, size=size)  # type: ignore[arg-type]

    def release(self, source: Source) -> None:
        self.inner.release(source)
