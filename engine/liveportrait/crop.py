"""Face crop like the official cropper (scale 2.3, vy ratio -0.125), from FaceMesh landmarks.

The crop square is aligned to the face's own axis (eye centre -> mouth centre), sized by the
landmarks' extent, scaled by 2.3 and shifted up by 0.125 of its size. The official cropper
uses the 106-point InsightFace layout whose top is the brow line, so we drop the FaceMesh
forehead points above the brows before measuring the extent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

CROP_SCALE = 2.3
CROP_VX_RATIO = 0.0
CROP_VY_RATIO = -0.125
CROP_SIZE = 512  # the crop the decoder renders
NET_INPUT = 256  # the networks' input side

# FaceMesh indices (image-left eye first): outer corner, inner corner, upper lid, lower lid.
EYE_IMAGE_LEFT = (33, 133, 159, 145)
EYE_IMAGE_RIGHT = (263, 362, 386, 374)
# Mouth corners, inner upper lip, inner lower lip.
MOUTH = (61, 291, 13, 14)
BROWS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)


@dataclass(frozen=True)
class CropTransform:
    o2c: np.ndarray  # 3x3, original image pixels -> crop pixels
    c2o: np.ndarray  # 3x3 inverse
    size: int


def _eye_center(p: np.ndarray, idx: tuple[int, ...]) -> np.ndarray:
    return p[list(idx)].mean(axis=0)


def crop_transform(points: np.ndarray, scale: float = CROP_SCALE, vx_ratio: float = CROP_VX_RATIO,
                   vy_ratio: float = CROP_VY_RATIO, dsize: int = CROP_SIZE) -> CropTransform:
    """Similarity transform of the face crop from (N>=468, 2+) FaceMesh points in pixels."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    eyes = (_eye_center(p, EYE_IMAGE_LEFT) + _eye_center(p, EYE_IMAGE_RIGHT)) / 2
    lips = (p[MOUTH[0]] + p[MOUTH[1]]) / 2
    uy = lips - eyes
    length = float(np.linalg.norm(uy))
    uy = uy / length if length > 1e-3 else np.array([0.0, 1.0])
    ux = np.array([uy[1], -uy[0]])
    rot = np.stack([ux, uy])  # rows: the face's x and y axes

    center0 = p.mean(axis=0)
    local = (p - center0) @ rot.T
    brow_top = local[list(BROWS), 1].min()
    local = local[local[:, 1] >= brow_top]
    lo, hi = local.min(axis=0), local.max(axis=0)
    size = float(max(hi - lo)) * scale
    mid = (lo + hi) / 2
    center = center0 + ux * mid[0] + uy * mid[1] + ux * (vx_ratio * size) + uy * (vy_ratio * size)

    s = dsize / max(size, 1e-6)
    o2c = np.eye(3)
    o2c[:2, :2] = s * rot
    o2c[:2, 2] = dsize / 2 - s * rot @ center
    return CropTransform(o2c=o2c, c2o=np.linalg.inv(o2c), size=dsize)


def warp_crop(image: np.ndarray, t: CropTransform) -> np.ndarray:
    """The size x size crop (bilinear, black outside the photo)."""
    return cv2.warpAffine(image, t.o2c[:2], (t.size, t.size), flags=cv2.INTER_LINEAR)


def network_input(crop: np.ndarray) -> np.ndarray:
    return cv2.resize(crop, (NET_INPUT, NET_INPUT), interpolation=cv2.INTER_AREA)


def feather_mask(size: int = CROP_SIZE, margin: float = 0.06, ramp: float = 0.14) -> np.ndarray:
    """(size,size) float32 in [0,1]: 1 in the middle, a smooth ramp to 0 near the crop's edges.

    The ramp hides the seam where the animated crop meets the untouched photo; its corners
    are rounded by taking the Euclidean distance to the inner rectangle.
    """
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    edge = np.minimum(c, 1 - c)  # distance to the nearest border, 0..0.5
    inner = margin + ramp
    dx = np.clip(inner - edge, 0, None)[None, :]
    dy = np.clip(inner - edge, 0, None)[:, None]
    dist = np.sqrt(dx * dx + dy * dy)  # 0 inside the inner rectangle
    x = np.clip(1 - dist / ramp, 0, 1)
    return (x * x * (3 - 2 * x)).astype(np.float32)  # smoothstep


@dataclass(frozen=True)
class PasteBack:
    """What pasting a crop back needs, computed once per portrait: an ROI and its mask."""

    roi: tuple[int, int, int, int]  # x0, y0, x1, y1 in the photo
    c2roi: np.ndarray  # 2x3 crop -> ROI pixels
    mask: np.ndarray  # (h, w, 1) float32 in [0, 1]


def prepare_paste_back(t: CropTransform, width: int, height: int) -> PasteBack:
    corners = np.array([[0, 0, 1], [t.size, 0, 1], [0, t.size, 1], [t.size, t.size, 1]], dtype=np.float64)
    xy = (t.c2o @ corners.T).T[:, :2]
    x0, y0 = np.floor(xy.min(axis=0)).astype(int)
    x1, y1 = np.ceil(xy.max(axis=0)).astype(int)
    x0, y0 = max(0, int(x0)), max(0, int(y0))
    x1, y1 = min(width, int(x1) + 1), min(height, int(y1) + 1)
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)
    c2roi = (shift @ t.c2o)[:2]
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    mask = cv2.warpAffine(feather_mask(t.size), c2roi, (w, h), flags=cv2.INTER_LINEAR)
    return PasteBack(roi=(x0, y0, x0 + w, y0 + h), c2roi=c2roi, mask=mask[..., None])


def paste_back(crop: np.ndarray, image: np.ndarray, pb: PasteBack) -> np.ndarray:
    """Blend the animated crop into a copy of the photo through the feathered mask."""
    x0, y0, x1, y1 = pb.roi
    warped = cv2.warpAffine(crop, pb.c2roi, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
    out = image.copy()
    region = out[y0:y1, x0:x1].astype(np.float32)
    blend = pb.mask * warped.astype(np.float32) + (1 - pb.mask) * region
    out[y0:y1, x0:x1] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    return out


def _ratio(p: np.ndarray, a: int, b: int, c: int, d: int) -> float:
    return float(np.linalg.norm(p[a] - p[b]) / (np.linalg.norm(p[c] - p[d]) + 1e-6))


def open_ratios(points: np.ndarray) -> tuple[tuple[float, float], float]:
    """Eye-open ratios (lid gap / eye width, image-left eye first) and lip-open ratio
    (inner-lip gap / mouth width), the FaceMesh analogue of the official 203-point ratios."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    eyes = (_ratio(p, EYE_IMAGE_LEFT[2], EYE_IMAGE_LEFT[3], EYE_IMAGE_LEFT[0], EYE_IMAGE_LEFT[1]),
            _ratio(p, EYE_IMAGE_RIGHT[2], EYE_IMAGE_RIGHT[3], EYE_IMAGE_RIGHT[0], EYE_IMAGE_RIGHT[1]))
    lip = _ratio(p, MOUTH[2], MOUTH[3], MOUTH[0], MOUTH[1])
    return eyes, lip


def crop_angle_degrees(t: CropTransform) -> float:
    return math.degrees(math.atan2(t.o2c[0, 1], t.o2c[0, 0]))
