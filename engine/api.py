"""The one interface every engine implements. Pure computation: no I/O, no HTTP."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from .motion import Motion


class EngineError(Exception):
    """Base class of every error an engine raises on purpose. ``code`` is stable and public."""

    code = "engine_error"


class NoFaceError(EngineError):
    code = "no_face"


class InvalidImageError(EngineError):
    code = "invalid_image"


class EngineUnavailableError(EngineError):
    """The engine cannot start here (no weights, no GPU, ...). The message says what to do."""

    code = "engine_unavailable"


@dataclass
class Source:
    """Everything computed once per portrait. Engines subclass it with their own fields.

    ``width``/``height`` are the portrait's size; ``face_box`` is (x0, y0, x1, y1) in pixels.
    """

    width: int
    height: int
    face_box: tuple[float, float, float, float]

    def nbytes(self) -> int:  # for the cache's memory budget
        return 0


@dataclass(frozen=True)
class EngineInfo:
    name: str  # "mesh" | "liveportrait"
    device: str  # "cpu" | "cuda:0"
    gpu_name: str | None
    model_version: str
    output_size: int  # side of the square crop render (512)


# How a frame is framed: "crop" returns the square face crop of output_size,
# "full" returns the whole portrait at its own resolution.
RenderMode = str


@runtime_checkable
class Engine(Protocol):
    name: str

    @property
    def info(self) -> EngineInfo: ...

    def prepare(self, image: np.ndarray) -> Source:
        """image: HxWx3 uint8 RGB. Raises NoFaceError / InvalidImageError."""
        ...

    def render(self, jobs: Sequence[tuple[Source, Motion]], mode: RenderMode = "crop",
               size: int | None = None) -> list[np.ndarray]:
        """Batched: one call renders many (source, motion) pairs. Returns HxWx3 uint8 RGB frames.

        mode "crop": a size x size square around the face (default size: info.output_size).
        mode "full": the whole portrait at its own resolution (size ignored).
        """
        ...

    def release(self, source: Source) -> None:
        """Free device memory held for a source (no-op where nothing is held)."""
        ...


def check_image(image: Any) -> np.ndarray:
    """Validate an engine input image; return it as a C-contiguous HxWx3 uint8 array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidImageError("image must be an HxWx3 RGB array")
    if image.dtype != np.uint8:
        raise InvalidImageError("image must be uint8")
    if image.shape[0] < 32 or image.shape[1] < 32:
        raise InvalidImageError("image is too small (at least 32x32 pixels)")
    return np.ascontiguousarray(image)
