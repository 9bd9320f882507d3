"""The face-normalised frame and the portrait crop."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import regions as R


@dataclass(frozen=True)
class FaceFrame:
    """Origin between the eyes, u along the eye line (image right), v = u turned 90 deg (down).

    ``d`` is the inter-ocular distance in pixels: every displacement is defined in units of d.
    """

    origin: np.ndarray  # (2,)
    u: np.ndarray  # (2,) unit
    v: np.ndarray  # (2,) unit
    d: float

    def vec(self, du: float, dv: float) -> np.ndarray:
        """A face-frame vector (in units of d) as an image-space pixel vector."""
        return (du * self.u + dv * self.v) * self.d

    def coords(self, pts: np.ndarray) -> np.ndarray:
        """Image points (..., 2) -> face-frame coordinates (..., 2) in units of d."""
        rel = pts - self.origin
        return np.stack([rel @ self.u, rel @ self.v], axis=-1) / self.d


def face_frame(points: np.ndarray) -> FaceFrame:
    p = points[:, :2].astype(np.float64)
    right = p[list(R.EYE_CORNERS[0])].mean(axis=0)  # image-left eye
    left = p[list(R.EYE_CORNERS[1])].mean(axis=0)
    axis = left - right
    d = float(np.hypot(*axis))
    u = axis / max(d, 1e-6)
    v = np.array([-u[1], u[0]])
    return FaceFrame(origin=(right + left) / 2, u=u, v=v, d=max(d, 1.0))


def portrait_crop(box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """2x3 affine from image pixels to a size x size portrait crop around the face.

    The landmark box spans brows to chin; 2.6x its size with the centre a little low gives
    hair, ears and the top of the shoulders, with the face near the middle.
    """
    x0, y0, x1, y1 = box
    side = 2.6 * max(x1 - x0, y1 - y0)
    cx = (x0 + x1) / 2
    cy = (y0 + y1) / 2 + 0.08 * (y1 - y0)
    s = size / side
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]], dtype=np.float64)
