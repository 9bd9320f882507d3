"""Eyelids and gaze, applied per pixel to the backward map around each eye.

Everything is measured along the eye's own axes: s along the corner-to-corner line, t
across it (down). With c the lid travel (0 open as photographed, 1 closed, < 0 wider):
the upper lid edge moves from t_up to t_up + c*h (h = the opening). The lid skin above it
stretches down over the eye and the visible eye compresses under it; both maps are monotone
in t, so nothing folds. Gaze slides the iris inside the opening with a smooth bump.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import regions as R
from .geometry import FaceFrame
from .lut import Curve, clamp, curve

CLOSE_MAX = 0.97  # a sliver of the eye stays so the map stays invertible
WIDEN_MAX = 0.2  # AU5 at 1: the upper lid rises by 20% of the opening
GAZE_X = 0.25  # iris travel at gaze 1, as a fraction of the eye width
LASH = 0.25  # thickness of the upper lid's lash line, as a fraction of the opening
GAZE_Y = 0.12  # ... as a fraction of the opening


@dataclass(frozen=True)
class EyeGeom:
    centre: np.ndarray  # (2,) px, middle of the corners
    u: np.ndarray  # (2,) unit along the eye (image right)
    v: np.ndarray  # (2,) unit down
    s_up: np.ndarray  # upper lid curve: s (sorted) -> t, px
    t_up: np.ndarray
    s_low: np.ndarray
    t_low: np.ndarray
    skin: float  # lid skin height above the upper lid that stretches when closing, px
    iris_s: float
    iris_t: float
    width: float  # corner to corner, px
    opening: float  # lid gap at the iris, px
    box: tuple[int, int, int, int]  # source pixels the eye maps can touch (x0, y0, x1, y1)
    upper: Curve  # t_up(s) and t_low(s) as lookup tables, for the per-pixel maps
    lower: Curve


def _curve(points: np.ndarray, idx: tuple[int, ...], centre: np.ndarray, u: np.ndarray,
           v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rel = points[list(idx), :2] - centre
    s, t = rel @ u, rel @ v
    order = np.argsort(s)
    return s[order], t[order]


def eye_geom(points: np.ndarray, frame: FaceFrame, side: int) -> EyeGeom:
    """side 0: the image-left eye (portrait's right), 1: the image-right eye."""
    p = points[:, :2].astype(np.float64)
    upper = (R.EYE_R_UPPER, R.EYE_L_UPPER)[side]
    lower = (R.EYE_R_LOWER, R.EYE_L_LOWER)[side]
    outer, inner = R.EYE_CORNERS[side]
    centre = (p[outer] + p[inner]) / 2
    u, v = frame.u, frame.v
    s_up, t_up = _curve(p, upper, centre, u, v)
    s_low, t_low = _curve(p, lower, centre, u, v)
    brow = p[[R.BROW_INNER[side], R.BROW_MID[side], R.BROW_OUTER[side]]].mean(axis=0)
    gap_to_brow = float(np.interp(0.0, s_up, t_up) - (brow - centre) @ v)
    skin = float(np.clip(0.85 * gap_to_brow, 0.1 * frame.d, 0.3 * frame.d))
    iris = p[R.IRIS_CENTER[side]] - centre
    width = float(np.hypot(*(p[outer] - p[inner])))
    iris_s = float(iris @ u)
    opening = float(np.interp(iris_s, s_low, t_low) - np.interp(iris_s, s_up, t_up))
    pad = 3.0
    ex = np.concatenate([[s_up.min() - pad, s_up.max() + pad]])
    ty = [float(t_up.min() - skin - pad), float(t_low.max() + pad)]
    corners = np.array([centre + a * u + b * v for a in ex for b in ty])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    return EyeGeom(centre, u, v, s_up, t_up, s_low, t_low, skin, iris_s, float(iris @ v),
                   width, max(opening, 1.0), (int(x0), int(y0), int(x1), int(y1)),
                   curve(s_up, t_up), curve(s_low, t_low))


def lid_travel(close: float, widen: float) -> float:
    return CLOSE_MAX * close - WIDEN_MAX * widen * (1.0 - close)


def apply_eye(q: np.ndarray, eye: EyeGeom, travel: float, gaze_x: float, gaze_y: float) -> None:
    """Rewrite the source coordinates ``q`` (..., 2) in place for one eye."""
    if abs(travel) < 1e-4 and abs(gaze_x) < 1e-4 and abs(gaze_y) < 1e-4:
        return
    rel_x = q[..., 0] - eye.centre[0]
    rel_y = q[..., 1] - eye.centre[1]
    s = rel_x * eye.u[0] + rel_y * eye.u[1]
    t = rel_x * eye.v[0] + rel_y * eye.v[1]
    tu = eye.upper(s)
    tl = eye.lower(s)
    h = np.maximum(tl - tu, 0.0)
    t_new = t
    if abs(travel) >= 1e-4:
        tu2 = tu + travel * h  # where the upper lid edge is drawn
        top = tu - eye.skin
        # The lash line (the lid's lowest part) moves down unstretched; only the lid skin
        # above it stretches, so a closed eye shows skin with the lashes at the bottom.
        # Across the eye t maps piecewise linearly: top stays, the lash line [tu2 - lash,
        # tu2] comes from [tu - lash, tu], the visible eye [tu2, tl] from [tu, tl], tl stays.
        # That is t plus (tu - tu2) times a trapezoid in t (no per-zone masks).
        lash = np.minimum(LASH * h, 0.35 * eye.skin)
        rise = (t - top) / np.maximum(tu2 - lash - top, 1e-3)
        fall = (tl - t) / np.maximum(tl - tu2, 1e-3)
        trap = clamp(np.minimum(np.minimum(rise, fall), 1.0), 0.0, None)
        t_new = t - (travel * h) * trap
    s_new = s
    # A closing lid hides the iris: gaze fades out with it (and the squeezed eye stays foldless).
    open_part = (1.0 - min(max(travel, 0.0), 1.0)) ** 2
    if (abs(gaze_x) >= 1e-4 or abs(gaze_y) >= 1e-4) and open_part > 1e-3:
        gx = gaze_x * GAZE_X * eye.width * open_part
        gy = gaze_y * GAZE_Y * eye.opening * open_part
        # Horizontal: the iris slides rigidly, the white on either side is squeezed or
        # stretched linearly, the corners stay. Vertical: a small shift of the same part.
        # Both fade towards the lids, so the eye's outline never moves.
        lo, hi = float(eye.s_up[0]), float(eye.s_up[-1])
        r = 0.2 * eye.width
        c = eye.iris_s
        g = float(np.clip(gx, lo + r + 1 - c, hi - r - 1 - c))
        # The source of s: [c+g-r, c+g+r] from [c-r, c+r] (a shift by g), linear to the
        # corners lo and hi, identity beyond: s minus g times a trapezoid in s.
        tau = (t_new - tu) / np.maximum(h, 1e-3)
        # Gaze only moves pixels inside the opening (0 < tau < 1, where the ramp below is not
        # 0): the rest of the box, the lid skin above it above all, skips the arithmetic.
        inside = (tau > 0) & (tau < 1)
        rows = np.flatnonzero(inside.any(axis=1))
        if rows.size:
            cols = np.flatnonzero(inside[rows[0]:rows[-1] + 1].any(axis=0))
            win = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
            sw, tau = s[win], tau[win]
            slide = clamp(np.minimum(np.minimum((sw - lo) / (c + g - r - lo), (hi - sw) / (hi - c - g - r)),
                                     1.0), 0.0, None)
            ramp = clamp(np.minimum(tau, 1 - tau) / 0.5, 0.0, 1.0)
            # Fading out towards the corners too, where the lids meet and tau changes fast.
            mid, half = (lo + hi) / 2, max((hi - lo) / 2, 1.0)
            ramp = ramp * ramp * (3 - 2 * ramp) * clamp(1 - ((sw - mid) / half) ** 2, 0.0, 1.0) ** 2
            s_new = s.copy()
            s_new[win] = sw - g * ramp * slide
            across = clamp(1 - ((sw - c - g) / (2.5 * r)) ** 2, 0.0, 1.0) ** 2
            t_new = t_new.copy() if t_new is t else t_new
            t_new[win] = t_new[win] - gy * ramp * across
    q[..., 0] = eye.centre[0] + s_new * eye.u[0] + t_new * eye.v[0]
    q[..., 1] = eye.centre[1] + s_new * eye.u[1] + t_new * eye.v[1]
