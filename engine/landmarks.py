"""Face landmarks from mediapipe FaceMesh (478 points with iris), shared by every engine.

One FaceMesh graph is built lazily and reused behind a lock: the graph is not
thread-safe, and tests may run several engine threads at once.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

# Quiet mediapipe's C++ (glog/absl) and TFLite start-up chatter; warnings and errors still show.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from .api import NoFaceError, check_image  # noqa: E402

N_POINTS = 478
# Detection runs on a copy whose longer side is at most this: FaceMesh works on a
# 192x192 face crop anyway, so larger inputs only cost time.
DETECT_MAX_SIDE = 1024
MAX_FACES = 4


@dataclass(frozen=True)
class FaceLandmarks:
    points: np.ndarray  # (478, 3) float32: x, y in pixels, z in pixel units (same scale as x)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the face in pixels


_lock = threading.Lock()
_mesh = None  # the shared FaceMesh graph, created on first use


def _get_mesh():
    global _mesh
    if _mesh is None:
        try:
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
        except ImportError:  # absl ships with mediapipe; stay quiet if it ever does not
            pass
        import mediapipe as mp

        _mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=MAX_FACES,
            refine_landmarks=True,
            min_detection_confidence=0.5,
        )
    return _mesh


def detect_landmarks(image: np.ndarray) -> FaceLandmarks:
    """Landmarks of the largest face in an HxWx3 uint8 RGB image; NoFaceError if none."""
    image = check_image(image)
    h, w = image.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = image
    if scale < 1.0:
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    with _lock:
        result = _get_mesh().process(small)
    faces = result.multi_face_landmarks or []
    best: np.ndarray | None = None
    best_area = -1.0
    for face in faces:
        pts = np.array([(p.x * sw, p.y * sh, p.z * sw) for p in face.landmark], dtype=np.float32)
        if pts.shape[0] != N_POINTS:
            continue
        x0, y0 = pts[:, :2].min(axis=0)
        x1, y1 = pts[:, :2].max(axis=0)
        area = float((x1 - x0) * (y1 - y0))
        if area > best_area:
            best, best_area = pts, area
    if best is None:
        raise NoFaceError("no face found in the image")
    best = best / np.float32(scale) if scale < 1.0 else best
    x0, y0 = best[:, :2].min(axis=0)
    x1, y1 = best[:, :2].max(axis=0)
    return FaceLandmarks(points=best.astype(np.float32), box=(float(x0), float(y0), float(x1), float(y1)))
