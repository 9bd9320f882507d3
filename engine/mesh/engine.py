"""MeshEngine: the embedded CPU engine (landmarks + action-unit warps, no model weights)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from engine.api import EngineInfo, InvalidImageError, Source, check_image
from engine.facs import activation
from engine.landmarks import detect_landmarks
from engine.motion import Motion

from .canvas import Canvas, build_canvas, coefficients, render_canvas
from .expression import PhotoExpression, estimate
from .geometry import FULL_WORK_D, crop_photo, portrait_crop
from .warp import STEP

MODEL_VERSION = "mesh-0.1.0"
OUTPUT_SIZE = 512
# The full-resolution canvas reaches this many face widths beyond the face box;
# everything farther is copied from the photo unchanged.
FULL_MARGIN = 1.0


@dataclass
class MeshSource(Source):
    crop: Canvas = None  # type: ignore[assignment]  # the OUTPUT_SIZE portrait crop
    full_box: tuple[int, int, int, int] = (0, 0, 0, 0)  # where the full canvas sits in the photo
    image: np.ndarray = None  # type: ignore[assignment]  # the photo (read-only)
    crop_affine: np.ndarray = None  # type: ignore[assignment]  # photo -> crop, 2x3
    points: np.ndarray = None  # type: ignore[assignment]  # landmarks in photo pixels
    # The photo's own expression, undone when Motion.baseline is "neutral" (expression.py).
    expression: PhotoExpression = field(default_factory=PhotoExpression)
    # The full-resolution canvas is built on the first "full" render: streaming only
    # ever uses the crop, so prepare does not pay for it.
    _full: Canvas | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def full(self) -> Canvas:
        with self._lock:
            if self._full is None:
                x0, y0, x1, y1 = self.full_box
                pts = self.points.copy()
                pts[:, 0] -= x0
                pts[:, 1] -= y0
                self._full = build_canvas(self.image[y0:y1, x0:x1].copy(), pts, self.expression, FULL_WORK_D)
            return self._full

    def nbytes(self) -> int:
        full = self._full.nbytes() if self._full is not None else 0
        return self.crop.nbytes() + full + int(self.image.nbytes)


def _full_box(box: tuple[float, float, float, float], w: int, h: int) -> tuple[int, int, int, int]:
    """The face box grown by FULL_MARGIN face widths, clipped, with sides a multiple of STEP."""
    x0, y0, x1, y1 = box
    m = FULL_MARGIN * max(x1 - x0, y1 - y0)
    bx0, by0 = max(0, int(x0 - m)), max(0, int(y0 - m))
    bx1, by1 = min(w, int(np.ceil(x1 + m))), min(h, int(np.ceil(y1 + m)))

    def fit(a: int, b: int, limit: int) -> tuple[int, int]:
        size = max(STEP, -(-(b - a) // STEP) * STEP)  # round up, then slide/trim into the image
        size = min(size, limit // STEP * STEP)
        a = min(a, limit - size)
        return max(0, a), max(0, a) + size

    bx0, bx1 = fit(bx0, bx1, w)
    by0, by1 = fit(by0, by1, h)
    return bx0, by0, bx1, by1


class MeshEngine:
    name = "mesh"

    def __init__(self, threads: int | None = 1) -> None:
        # The server renders on one engine thread; one OpenCV thread per call keeps
        # the other core free for the event loop and encoding.
        if threads is not None:
            cv2.setNumThreads(threads)
        self._info = EngineInfo(name="mesh", device="cpu", gpu_name=None, model_version=MODEL_VERSION,
                                output_size=OUTPUT_SIZE)

    @property
    def info(self) -> EngineInfo:
        return self._info

    def prepare(self, image: np.ndarray) -> MeshSource:
        image = check_image(image)
        h, w = image.shape[:2]
        if h < 2 * STEP or w < 2 * STEP:
            raise InvalidImageError("image is too small")
        lm = detect_landmarks(image)  # NoFaceError when there is none
        pts = lm.points
        affine = portrait_crop(lm.box, OUTPUT_SIZE, (w, h))
        crop_img = crop_photo(image, affine, OUTPUT_SIZE)
        crop_pts = pts.copy()
        crop_pts[:, :2] = pts[:, :2] @ affine[:, :2].T.astype(np.float32) + affine[:, 2].astype(np.float32)
        crop_pts[:, 2] = pts[:, 2] * np.float32(affine[0, 0])
        image_ro = image.copy()
        image_ro.setflags(write=False)
        expr = estimate(crop_img, crop_pts)
        return MeshSource(width=w, height=h, face_box=lm.box, crop=build_canvas(crop_img, crop_pts, expr),
                          full_box=_full_box(lm.box, w, h), image=image_ro, crop_affine=affine,
                          points=pts, expression=expr)

    def render(self, jobs: Sequence[tuple[Source, Motion]], mode: str = "crop",
               size: int | None = None) -> list[np.ndarray]:
        if mode not in ("crop", "full"):
            raise ValueError(f"unknown render mode {mode!r}; valid: crop, full")
        size = OUTPUT_SIZE if size is None else int(size)
        if size < 16 or size > 4096:
            raise ValueError("size must be between 16 and 4096")
        frames = []
        for source, motion in jobs:
            if not isinstance(source, MeshSource):
                raise TypeError("MeshEngine.render needs sources prepared by MeshEngine")
            frames.append(self._render_one(source, motion, mode, size))
        return frames

    def _render_one(self, src: MeshSource, motion: Motion, mode: str, size: int) -> np.ndarray:
        # Absolute expressions undo the photo's own first; "photo" renders on top of it.
        k = coefficients(activation(motion), src.expression if motion.baseline == "neutral" else None)
        if mode == "full":
            out = src.image.copy()
            x0, y0, x1, y1 = src.full_box
            out[y0:y1, x0:x1] = render_canvas(src.full, k)
            return out
        frame = render_canvas(src.crop, k)
        if size != OUTPUT_SIZE:
            interp = cv2.INTER_AREA if size < OUTPUT_SIZE else cv2.INTER_LINEAR
            frame = cv2.resize(frame, (size, size), interpolation=interp)
        return frame

    def release(self, source: Source) -> None:
        """Nothing to free: a MeshSource is plain arrays that go with the source."""
