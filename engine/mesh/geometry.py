"""The face-normalised frame and the portrait crop."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
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


# Portrait framing, like LivePortrait's own crop: the crop's side is CROP_SCALE times the
# landmark box (mid-forehead to chin), so the face is about 45% of the frame's height;
# CROP_SHIFT moves the centre up (in box heights) to leave room for the hair, which the
# box does not include, with the eyes just above the frame's middle and the neck below.
CROP_SCALE = 2.2
CROP_SHIFT = -0.06
# When the photo is too small for that framing the crop may tighten down to this scale
# before it has to reach beyond the photo's edges.
CROP_SCALE_MIN = 1.7


def portrait_crop(box: tuple[float, float, float, float], size: int,
                  image_size: tuple[int, int] | None = None) -> np.ndarray:
    """2x3 affine from image pixels to a size x size portrait crop around the face.

    With ``image_size`` (w, h) the crop stays inside the photo where it can: it slides
    (the face then sits off-centre) and tightens to CROP_SCALE_MIN before it pads.
    """
    x0, y0, x1, y1 = box
    face = max(x1 - x0, y1 - y0)
    side = CROP_SCALE * face
    cx = (x0 + x1) / 2
    cy = (y0 + y1) / 2 + CROP_SHIFT * (y1 - y0)
    if image_size is not None:
        w, h = image_size
        side = min(side, max(min(w, h), CROP_SCALE_MIN * face))
        cx, cy = _fit(cx, side, w), _fit(cy, side, h)
    s = size / side
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]], dtype=np.float64)


def _fit(c: float, side: float, n: int) -> float:
    """Slide a crop centre so the crop lies within [0, n); a crop wider than n covers it all."""
    lo, hi = side / 2, n - side / 2
    return float(np.clip(c, min(lo, hi), max(lo, hi)))


# Pixels the crop must invent beyond the photo: the photo's edge, extended outward and
# blurred more the farther out (full blur BEYOND_BLUR_PX out), so they read as out-of-focus
# background. Never a mirror image (a mirrored neck and shoulders reads as a second body).
BEYOND_SIGMA = 12.0
BEYOND_BLUR_PX = 24.0


def crop_photo(image: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """The size x size crop ``affine`` describes. A downscale is area-averaged first (a bare
    warpAffine would alias); pixels beyond the photo are its edge extended and blurred."""
    s = float(affine[0, 0])
    h, w = image.shape[:2]
    if s < 0.9:
        sw, sh = max(1, round(w * s)), max(1, round(h * s))
        image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        sx, sy = sw / w, sh / h  # pixel centres: x_small + 0.5 = (x + 0.5) * sx
        pre = np.array([[sx, 0.0, 0.5 * (sx - 1)], [0.0, sy, 0.5 * (sy - 1)], [0.0, 0.0, 1.0]])
        affine = affine @ np.linalg.inv(pre)
        h, w = sh, sw
    out = cv2.warpAffine(image, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Where the crop lies beyond the photo: the inverse map of each corner tells cheaply
    # whether any pixel does.
    inv = cv2.invertAffineTransform(affine)
    corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]], float) @ inv.T
    if corners[:, 0].min() >= -0.5 and corners[:, 1].min() >= -0.5 and \
            corners[:, 0].max() <= w - 0.5 and corners[:, 1].max() <= h - 0.5:
        return out
    inside = cv2.warpAffine(np.full((h, w), 255, np.uint8), affine, (size, size), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    dist = cv2.distanceTransform((inside == 0).astype(np.uint8), cv2.DIST_L2, 3)
    blurred = cv2.GaussianBlur(out, (0, 0), BEYOND_SIGMA, borderType=cv2.BORDER_REPLICATE)
    a = np.clip(dist / BEYOND_BLUR_PX, 0.0, 1.0)[..., None]
    mixed = out.astype(np.float32) * (1 - a) + blurred.astype(np.float32) * a
    return np.where(inside[..., None] > 0, out, np.clip(mixed + 0.5, 0, 255).astype(np.uint8))


# Per-canvas masks and shading (hair, folds) are smooth at the scale of the face: on the
# full-resolution canvas (built while live sessions wait for the engine) they are computed on a
# copy shrunk to this d, about the 512 crop's own.
FULL_WORK_D = 64.0


def reduced(shape: tuple[int, int], points: np.ndarray, frame: FaceFrame,
            work_d: float | None) -> tuple[float, tuple[int, int], np.ndarray, FaceFrame]:
    """(scale, shape, points, frame) shrunk so that d is at most ``work_d`` (None, or a
    smaller d: scale 1, unchanged)."""
    s = 1.0 if work_d is None else min(1.0, work_d / frame.d)
    if s >= 1.0:
        return 1.0, shape, points, frame
    h, w = shape
    pts = points.astype(np.float32).copy()
    pts[:, :2] *= s
    small = FaceFrame(origin=frame.origin * s, u=frame.u, v=frame.v, d=frame.d * s)
    return s, (max(1, int(round(h * s))), max(1, int(round(w * s)))), pts, small
