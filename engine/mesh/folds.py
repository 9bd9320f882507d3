"""A smiling photo's folds, softened when an absolute expression undoes its smile.

The mesh engine only moves pixels: undoing the photo's smile (expression.py, canvas.coefficients)
puts the lip corners back, but the smile's shading stays where it was: the nasolabial folds from
the nose wings to beyond the mouth corners and the bunched, lit cheek "apples". To a person (and
to the expression judge) those still read as a smile: smile_outdoor's neutral read happy 0.83.

Once per canvas, when the photo smiles, this module makes a "de-smiled" copy of the skin there by
frequency separation (per colour channel): the band between fine skin texture (kept: no plastic
look) and the cheek's overall shading (kept: the face's colour and light) is flattened inside a
feathered mask built from the landmarks (nose wing -> outside the mouth corner -> jaw line, up to
the cheek's apple). The band is measured with a normalised convolution over skin only, so the
lips, nostrils and eyes (left out of the weight) do not bleed their darkness into it, and the
mask itself leaves those features, the jaw outline and glasses' rims alone.

Per frame the render samples from a blend of the photo and its de-smiled copy, weighted by how
much of the photo's smile the frame undoes (canvas.coefficients: 0 when the expression smiles at
least as much as the photo, 1 for neutral and the unsmiling emotions, less where the frame's own
AU9 furrows the same skin: disgust keeps the folds). Only the mask's box is
blended, and blends are cached per weight step (1/STEPS), so a steady expression costs nothing
and a changing one one small blend per step (a step changes a pixel by at most 1/STEPS of its
correction: no visible pop).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import regions as R
from .geometry import FaceFrame, reduced
from .lru import Lru

# Per side: the region the smile's folds and cheek apples occupy, as a landmark polygon: the nose
# wing, up the cheek below the eye, out to its side, down to above the jaw line, in below and
# past the mouth corner, and back up along the upper lip's side to the nostril's base.
FOLD_POLY = ((129, 50, 123, 147, 213, 192, 214, 212, 57, 186, 92, 165, 98),
             (358, 280, 352, 376, 433, 416, 434, 432, 287, 410, 322, 391, 327))
# Feathering of the mask's edge (Gaussian sigma, units of d).
FEATHER = 0.06
# Margins kept clear around the features whose lines are not folds (units of d).
LIP_CLEAR = 0.04
NOSTRIL_CLEAR = 0.03
OVAL_CLEAR = 0.12
# The shading band: finer than FINE (skin texture, pores, moles) and coarser than COARSE (the
# cheek's overall light and colour) are kept; the band between them is what a fold or a bunched
# cheek adds (sigmas, units of d). FINE 0.01-0.015 reads a little less happy to the judge but
# wipes smile_teeth's moles off (painted); COARSE 0.22 leaves the lit cheek apples (smile_outdoor's
# neutral still reads happy 0.58, against 0.46).
FINE = 0.02
COARSE = 0.35
# The mask starts this far below the eye line (units of d): above it the lower lids' creases
# and glasses' lower rims stay.
TOP = 0.45
# How much of the band is flattened at weight 1 (0.8 left the folds visible, 5 hits fewer).
STRENGTH = 1.0
# Blend weights are quantised to 1/STEPS; this many blended sources (RGBA copies of the canvas,
# 1 MB on the 512 crop) are kept per canvas: the bench's emotion mix needs 5 on the astronaut.
STEPS = 16
CACHE = 6
# The nose wrinkler (AU9) deepens the nasolabial furrow itself (FACS): a frame asking for this
# much of it keeps the photo's folds whole (disgust). The upper lip raiser (AU10) does too, but
# fear's open grimace (AU10 1.44) with the photo's smiling folds kept read as a smile to the judge
# (smile_outdoor's fear: happy 0.54, sad 0.21 softened), so AU10 alone keeps nothing.
FURROW_FULL = 1.0
# The photo's smile (AU12 + AU20 undone, expression.estimate) below which nothing is softened.
MIN_SMILE = 0.2


def _poly(points: np.ndarray, idx: tuple[int, ...]) -> np.ndarray:
    return np.round(points[list(idx), :2]).astype(np.int32)


def fold_mask(shape: tuple[int, int], points: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """(h, w) float32 in [0, 1]: where the smile's shading is flattened."""
    h, w = shape
    d = frame.d
    region = np.zeros((h, w), np.uint8)
    for poly in FOLD_POLY:
        cv2.fillPoly(region, [_poly(points, poly)], 1)
    # Not folds: the lips (and teeth between them), the nostrils, the eyes; cleared with a margin.
    keep_out = np.zeros((h, w), np.uint8)
    lips = np.concatenate([_poly(points, R.LIP_UPPER_OUTER), _poly(points, R.LIP_LOWER_OUTER)[::-1]])
    cv2.fillPoly(keep_out, [lips], 1)
    keep_out = cv2.dilate(keep_out, _disc(LIP_CLEAR * d))
    nose = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(nose, _nose_hull(points), 1)
    nose = cv2.dilate(nose, _disc(NOSTRIL_CLEAR * d))
    keep_out = np.maximum(keep_out, nose)
    # Nor the jaw outline: the mask stays well inside the face's oval.
    face = np.zeros((h, w), np.uint8)
    cv2.fillPoly(face, [_poly(points, R.FACE_OVAL)], 1)
    face = cv2.erode(face, _disc(OVAL_CLEAR * d))
    m = (region & face & (1 - keep_out)).astype(np.float32)
    # Nothing above the cheek's apple: the lower lids' creases and glasses' lower rims stay.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    below = (xx - frame.origin[0]) * frame.v[0] + (yy - frame.origin[1]) * frame.v[1]
    m *= np.clip((below - TOP * d) / (0.1 * d), 0.0, 1.0)
    s = FEATHER * d
    m = cv2.GaussianBlur(m, (0, 0), s)
    # The blur lets the mask creep back onto the features' edges: take it away there again.
    m *= 1.0 - cv2.GaussianBlur(keep_out.astype(np.float32), (0, 0), 0.5 * s)
    return np.clip(m, 0.0, 1.0)


# The nose's lower part: tip, wings and nostrils (their hull).
NOSE_LOW = (1, 2, 4, 5, 97, 98, 64, 129, 49, 48, 219, 79, 326, 327, 294, 358, 279, 278, 439, 309)


def _nose_hull(points: np.ndarray) -> np.ndarray:
    return cv2.convexHull(_poly(points, NOSE_LOW))


def _disc(r: float) -> np.ndarray:
    k = max(1, int(round(r)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))


def _skin_weight(shape: tuple[int, int], points: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """1 on skin, 0 on what is not (lips and mouth, nostrils, eyes, brows, beyond the face)."""
    h, w = shape
    face = np.zeros((h, w), np.uint8)
    cv2.fillPoly(face, [_poly(points, R.FACE_OVAL)], 1)
    face = cv2.erode(face, _disc(0.03 * frame.d))
    out = np.zeros((h, w), np.uint8)
    lips = np.concatenate([_poly(points, R.LIP_UPPER_OUTER), _poly(points, R.LIP_LOWER_OUTER)[::-1]])
    cv2.fillPoly(out, [lips], 1)
    for eye in ((*R.EYE_R_UPPER, *R.EYE_R_LOWER[::-1]), (*R.EYE_L_UPPER, *R.EYE_L_LOWER[::-1])):
        cv2.fillPoly(out, [_poly(points, eye)], 1)
    cv2.fillConvexPoly(out, _nose_hull(points), 1)
    out = cv2.dilate(out, _disc(0.03 * frame.d))
    return (face & (1 - out)).astype(np.float32)


def _smooth(x: np.ndarray, wgt: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian: the weighted mean of x ((h, w, c)) around each pixel (skin only).
    Wide blurs run on a copy shrunk to about 4 px per sigma (the result is smooth at that
    scale; a 0.35 d blur at full size cost ~100 ms per canvas)."""
    if sigma <= 0:
        return x
    h, w = wgt.shape
    both = np.concatenate([x * wgt[..., None], wgt[..., None]], axis=-1)
    f = max(1.0, sigma / 4.0)
    if f > 1.5:
        small = cv2.resize(both, (max(1, round(w / f)), max(1, round(h / f))), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma / f)
        both = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        both = cv2.GaussianBlur(both, (0, 0), sigma)
    return both[..., :-1] / np.maximum(both[..., -1:], 1e-3)


def _in_face_box(make, shape: tuple[int, int], points: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """``make(shape, points, frame)`` (a mask that is 0 outside the face's oval) computed over
    the oval's box only (a margin of 0.1 d), zero elsewhere: a full-resolution canvas is mostly
    not face."""
    h, w = shape
    oval = points[list(R.FACE_OVAL), :2]
    pad = 0.1 * frame.d
    x0, y0 = (max(0, int(np.floor(v - pad))) for v in oval.min(axis=0))
    x1, y1 = (int(np.ceil(v + pad)) + 1 for v in oval.max(axis=0))
    x1, y1 = min(w, x1), min(h, y1)
    out = np.zeros((h, w), np.float32)
    if x1 <= x0 or y1 <= y0:
        return out
    pts = points.astype(np.float32).copy()
    pts[:, :2] -= (x0, y0)
    box = FaceFrame(origin=frame.origin - (x0, y0), u=frame.u, v=frame.v, d=frame.d)
    out[y0:y1, x0:x1] = make((y1 - y0, x1 - x0), pts, box)
    return out


def desmile_delta(image: np.ndarray, points: np.ndarray, frame: FaceFrame,
                  strength: float | None = None) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """(box, delta): the change (float32, (y1-y0, x1-x0, 3)) that flattens the smile's shading
    inside the box of the fold mask, or None when the mask is empty."""
    strength = STRENGTH if strength is None else strength
    h, w = image.shape[:2]
    mask = _in_face_box(fold_mask, (h, w), points, frame)
    ys, xs = np.nonzero(mask > 1.0 / 255)
    if len(xs) == 0:
        return None
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    # The band is computed over the box grown by the coarse scale's reach.
    pad = int(np.ceil(2.5 * COARSE * frame.d))
    X0, Y0, X1, Y1 = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)
    rgb = image[Y0:Y1, X0:X1].astype(np.float32)
    skin = _in_face_box(_skin_weight, (h, w), points, frame)[Y0:Y1, X0:X1]
    # Per channel, not on the luminance alone: a fold's shadow is tinted (reddish) and a cheek's
    # highlight has the light's colour (bluish-white outdoors); taking the band's luminance away
    # in any one colour left grey or blue patches.
    band = _smooth(rgb, skin, FINE * frame.d) - _smooth(rgb, skin, COARSE * frame.d)
    m = mask[Y0:Y1, X0:X1]
    new = np.clip(rgb - (strength * m)[..., None] * band, 0.0, 255.0)
    delta = (new - rgb)[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0]
    return (x0, y0, x1, y1), np.ascontiguousarray(delta, dtype=np.float32)


@dataclass
class Folds:
    """A canvas's de-smiled shading: per frame weight, the RGBA source the render samples."""

    box: tuple[int, int, int, int]
    delta: np.ndarray  # (y1-y0, x1-x0, 3) float32
    _cache: Lru = field(default_factory=Lru, repr=False)

    def nbytes(self, rgba: np.ndarray) -> int:
        """The correction plus the most the blend cache holds for a canvas of ``rgba``'s size."""
        return int(self.delta.nbytes + CACHE * rgba.nbytes)

    def source(self, rgba: np.ndarray, weight: float) -> np.ndarray:
        """The canvas's RGBA pixels with ``weight`` of the correction applied (quantised to
        1/STEPS; 0 gives ``rgba`` itself). The array returned is never written again."""
        level = int(round(min(max(weight, 0.0), 1.0) * STEPS))
        if level == 0:
            return rgba
        hit = self._cache.get(level)
        if hit is not None:
            return hit
        x0, y0, x1, y1 = self.box
        out = rgba.copy()
        part = rgba[y0:y1, x0:x1, :3].astype(np.float32)
        cv2.scaleAdd(self.delta, level / STEPS, part, dst=part)
        out[y0:y1, x0:x1, :3] = np.clip(np.rint(part), 0, 255).astype(np.uint8)
        self._cache.put(level, out, CACHE)
        return out


def build_folds(image: np.ndarray, points: np.ndarray, frame: FaceFrame, smile: float,
                work_d: float | None = None) -> Folds | None:
    """The canvas's Folds when the photo smiles (``smile``: AU12 + AU20 it undoes), else None.
    With ``work_d`` a large canvas's correction is made on a copy shrunk to that d and scaled
    back up (the correction is the mid band, smooth at that scale)."""
    if smile < MIN_SMILE:
        return None
    h, w = image.shape[:2]
    scale, small, pts, fr = reduced((h, w), points, frame, work_d)
    if scale >= 1.0:
        found = desmile_delta(image, points, frame)
    else:
        tiny = cv2.resize(np.ascontiguousarray(image), (small[1], small[0]), interpolation=cv2.INTER_AREA)
        found = desmile_delta(tiny, pts, fr)
        if found is not None:
            (x0, y0, x1, y1), delta = found
            box = (int(x0 / scale), int(y0 / scale), min(w, int(np.ceil(x1 / scale))), min(h, int(np.ceil(y1 / scale))))
            delta = cv2.resize(delta, (box[2] - box[0], box[3] - box[1]), interpolation=cv2.INTER_LINEAR)
            found = box, np.ascontiguousarray(delta, dtype=np.float32)
    if found is None:
        return None
    box, delta = found
    return Folds(box=box, delta=delta)


def photo_smile(aus: dict[str, float]) -> float:
    """How much the photo smiles, in the estimate's units: its lip corners pulled up and out."""
    return float(aus.get("12", 0.0) + aus.get("20", 0.0))


def undone(photo_aus: dict[str, float], requested_12: float, full: float) -> float:
    """The share of the photo's smile a frame undoes, in [0, 1]: 1 - requested / photo's smile
    (``requested_12``: the frame's AU12 gain as rendered). A requested smile of ``full`` or more
    (a happy face at intensity 1) keeps all of the folds, whatever the photo's estimate (a wide
    smile is partly estimated as lip stretch, AU20, in other units)."""
    s = photo_smile(photo_aus)
    if s < MIN_SMILE:
        return 0.0
    return float(np.clip(1.0 - requested_12 / min(s, full), 0.0, 1.0))


def furrow_keeps(aus: dict[int, float]) -> float:
    """The share of the folds a frame's own action units keep (AU9 furrows the same skin)."""
    furrow = aus.get(9, 0.0)
    return float(np.clip(furrow / FURROW_FULL, 0.0, 1.0))
