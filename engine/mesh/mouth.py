"""Lips parting: the skin tears along the mouth line, and the gap gets a mouth interior.

The upper side (upper lip, and any interior the photo already shows, which moves with
the upper teeth) and the lower side (lower lip, chin) each get their own smooth field:
``U`` lifts the upper lip, ``J_LIP`` lowers the lower lip, ``J_JAW`` drops the jaw with the
chin. Each side is inverted separately on the coarse grid; per pixel, whichever side maps
back onto its own half of the source wins, and pixels neither side claims are the opening,
painted as a dark cavity with a hint of upper teeth.

Coordinates: s along the corner-to-corner line (-1 and 1 at the outer corners), t across it
in pixels (down). The inner lip curves t_ui(s) <= t_li(s) come from the landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from . import regions as R
from .geometry import FaceFrame

TEAR_BASES = ("U", "J_LIP", "J_JAW")
JAW_WIDE = 1.9  # the jaw moves across 1.9x the mouth half width at the chin


@dataclass(frozen=True)
class MouthGeom:
    centre: np.ndarray
    u: np.ndarray
    v: np.ndarray
    half: float  # half the corner-to-corner distance, px
    s_ui: np.ndarray
    t_ui: np.ndarray
    s_li: np.ndarray
    t_li: np.ndarray
    s_corner: float  # |s| of the inner lip corners
    chin: float  # t of the chin below the lower inner lip at s=0, px
    d: float
    box: tuple[int, int, int, int]  # source pixels the tear fields can touch
    brightness: float  # photo exposure, scales the painted colours
    own_mid: float  # the photo's own inner-lip gap at mid-mouth, px

    @property
    def frame_args(self) -> tuple[float, float, float, float, float, float]:
        """centre, u and v as plain floats, as the kernels take them."""
        return (float(self.centre[0]), float(self.centre[1]), float(self.u[0]), float(self.u[1]),
                float(self.v[0]), float(self.v[1]))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _curve(points: np.ndarray, idx: tuple[int, ...], centre: np.ndarray, u: np.ndarray,
           v: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
    rel = points[list(idx), :2] - centre
    s, t = rel @ u / half, rel @ v
    order = np.argsort(s)
    return s[order], t[order]


def mouth_geom(points: np.ndarray, frame: FaceFrame, image: np.ndarray) -> MouthGeom:
    p = points[:, :2].astype(np.float64)
    a, b = p[R.MOUTH_CORNERS[0]], p[R.MOUTH_CORNERS[1]]
    centre = (a + b) / 2
    half = max(float(np.hypot(*(b - a))) / 2, 2.0)
    u = (b - a) / (2 * half)
    v = np.array([-u[1], u[0]])
    s_ui, t_ui = _curve(p, R.LIP_UPPER_INNER, centre, u, v, half)
    s_li, t_li = _curve(p, R.LIP_LOWER_INNER, centre, u, v, half)
    s_corner = float(np.clip(np.abs(s_ui[[0, -1]]).mean(), 0.5, 1.0))
    d = frame.d
    chin = float((p[R.CHIN] - centre) @ v - np.interp(0.0, s_li, t_li))
    chin = max(chin, 0.3 * d)
    reach_x = JAW_WIDE * half + 2
    top = float(t_ui.min()) - 0.45 * d
    bottom = float(np.interp(0.0, s_li, t_li)) + chin + 0.75 * d
    corners = np.array([centre + x * u + y * v for x in (-reach_x, reach_x) for y in (top, bottom)])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    h, w = image.shape[:2]
    fx0, fy0 = int(np.clip(p[:, 0].min(), 0, w - 1)), int(np.clip(p[:, 1].min(), 0, h - 1))
    fx1, fy1 = int(np.clip(p[:, 0].max(), fx0 + 1, w)), int(np.clip(p[:, 1].max(), fy0 + 1, h))
    face = image[fy0:fy1, fx0:fx1].reshape(-1, 3).astype(np.float64)
    luma = float(np.median(face @ np.array([0.299, 0.587, 0.114]))) if face.size else 150.0
    return MouthGeom(centre, u, v, half, s_ui, t_ui, s_li, t_li, s_corner, chin, d,
                     (int(x0), int(y0), int(x1), int(y1)), float(np.clip(luma / 150.0, 0.55, 1.15)),
                     max(0.0, float(np.interp(0.0, s_li, t_li) - np.interp(0.0, s_ui, t_ui))))


def lip_profile(m: MouthGeom, s: np.ndarray) -> np.ndarray:
    """1 mid-mouth, 0 at and beyond the inner lip corners, flat at the ends."""
    x = np.clip(1 - (s / m.s_corner) ** 2, 0.0, 1.0)
    return x * np.sqrt(x)


def _local(m: MouthGeom, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rel_x = q[..., 0] - m.centre[0]
    rel_y = q[..., 1] - m.centre[1]
    s = (rel_x * m.u[0] + rel_y * m.u[1]) / m.half
    t = rel_x * m.v[0] + rel_y * m.v[1]
    return s, t


def tear_bases(m: MouthGeom, nodes: np.ndarray) -> np.ndarray:
    """(3, M, 2) float32: U (upper side, up), J_LIP and J_JAW (lower side, down), per unit d."""
    s, t = _local(m, nodes)
    tu = np.interp(s, m.s_ui, m.t_ui)
    tl = np.interp(s, m.s_li, m.t_li)
    lp = lip_profile(m, s)
    d = m.d
    # Upper side: fades upwards to the nose; constant over the photo's own mouth interior and
    # a little below it, then fading. Each side is only used on its own half of the mouth, so
    # these continuations just keep the fields smooth (gradients < 1) for the inversion.
    up = np.where(t < tu, 1 - _smoothstep((tu - t) / (0.4 * d)),
                  1 - _smoothstep((t - tl - 0.1 * d) / (0.6 * d)))
    U = lp * up
    below = t >= tl
    ext = lp * (1 - _smoothstep((tl - t) / (0.45 * d)))  # the lower side's fields, continued upwards
    r = np.maximum(t - tl, 0.0)
    J_lip = np.where(below, lp * (1 - _smoothstep(r / (0.4 * d))), ext)
    wide = m.s_corner + (JAW_WIDE - m.s_corner) * _smoothstep(r / (0.6 * d))
    lat = np.clip(1 - (s / wide) ** 2, 0.0, 1.0) ** 1.5
    chin = 1 - _smoothstep((r - m.chin) / (0.7 * d))
    J_jaw = np.where(below, lat * chin, ext)
    vec_up = (-m.v * d)[None, :]
    vec_down = (m.v * d)[None, :]
    return np.stack([U[:, None] * vec_up, J_lip[:, None] * vec_down,
                     J_jaw[:, None] * vec_down]).astype(np.float32)


# Closing the photo's own open mouth: the upper lip comes down by this share of the gap and
# the lower lip (with the jaw and chin) rises by the rest, as a jaw closes; the lips then
# overlap by CLOSE_OVERLAP px so no line of the interior is left between them.
CLOSE_UP_SHARE = 0.35
CLOSE_UP_SHARE_TEETH = 0.5  # a toothy smile raised its upper lip: more of the close is there
# A mouth opened without a smile (the `surprised` portrait's round O, its jaw dropped) closes with
# the upper lip brought down further: with the lower lip raised by 0.65 of the gap its thick,
# pouting lower lip closed high under a narrow mouth and its smile read sad (0.50, happy 0.04);
# with 0.6 and canvas.SMILE_WIDEN happy 0.47 / sad 0.18, and its neutral keeps 0.54 (0.39 at
# 0.65, 0.75 lost it). 0.6-0.7 read happy, 0.5 and 0.75 not (bench/fidelity.md).
CLOSE_UP_SHARE_ROUND = 0.6
CLOSE_OVERLAP = 1.0


def own_gap(m: MouthGeom, s: np.ndarray) -> np.ndarray:
    """The photo's own inner-lip gap at mouth coordinate s, px (0 at and beyond the corners)."""
    return np.maximum(np.interp(s, m.s_li, m.t_li) - np.interp(s, m.s_ui, m.t_ui), 0.0)


def close_bases(m: MouthGeom, nodes: np.ndarray, up_share: float) -> np.ndarray:
    """(2, M, 2) float32: C_UP (upper side, down) and C_LOW (lower side with the chin, up),
    which at coefficient 1 close the photo's own gap exactly: at every s along the mouth the
    inner lips meet (overlapping by CLOSE_OVERLAP px) on the line between them, so the
    interior the photo shows (teeth, a dark mouth) ends up under the lips.

    Both are continued smoothly beyond their own half like the tear bases (gradients < 1 for
    gaps up to ~0.4 d), and the lower one carries the chin like J_JAW (a jaw closing).
    """
    s, t = _local(m, nodes)
    tu = np.interp(s, m.s_ui, m.t_ui)
    tl = np.interp(s, m.s_li, m.t_li)
    d = m.d
    gap = own_gap(m, s)
    # Smooth along s: the 11 landmarks give a piecewise-linear gap; the overlap fades to 0
    # at the inner corners with the same profile as the tear.
    amp = gap + CLOSE_OVERLAP * lip_profile(m, s)
    a_up, a_low = up_share * amp, (1 - up_share) * amp
    up = np.where(t < tu, 1 - _smoothstep((tu - t) / (0.4 * d)),
                  1 - _smoothstep((t - tl - 0.1 * d) / (0.6 * d)))
    C_up = a_up * up
    below = t >= tl
    r = np.maximum(t - tl, 0.0)
    # Just under the lower lip it follows the lip's own profile (a_low(s)); further down it
    # blends into the jaw's wide, even lift of the chin.
    k = _smoothstep(r / (0.3 * d))
    wide = m.s_corner + (JAW_WIDE - m.s_corner) * _smoothstep(r / (0.6 * d))
    lat = np.clip(1 - (s / wide) ** 2, 0.0, 1.0) ** 1.5
    mid = float(own_gap(m, np.zeros(1))[0]) * (1 - up_share)
    chin = 1 - _smoothstep((r - m.chin) / (0.7 * d))
    low_below = ((1 - k) * a_low + k * mid * lat) * chin
    ext = a_low * (1 - _smoothstep((tl - t) / (0.45 * d)))
    C_low = np.where(below, low_below, ext)
    vec_up = (-m.v)[None, :]
    vec_down = m.v[None, :]
    return np.stack([C_up[:, None] * vec_down, C_low[:, None] * vec_up]).astype(np.float32)


# Where the photo's closed-away lips meet, the two sides' maps jump from the upper lip's edge
# to the lower one's (the interior between them is skipped): per pixel one side or the other,
# a hard edge stair-stepped along the slanted line (the `surprised` portrait's pressed anger, a
# backward-map area ratio of 28.8 there). Within LIP_SEAM_W output px of it the two lips'
# colours are mixed by how much of the pixel each covers (kernels.choose_sides, blend_seam).
# A darkened lip line there instead (a 2 px line darkened 15-30%) turned smile_teeth's neutral
# disgusted (0.45-0.48 over neutral 0.25; neutral 0.40 without it). smile_outdoor's neutral is a
# near-tie with happy: 0.55 / 0.41 at 1.25, 0.56 / 0.40 at 1.5, 0.48 / 0.49 at 1.0; from 1.75
# smile_teeth's neutral reads disgusted again (0.39-0.52).
LIP_SEAM_W = 1.25
# Slivers where the closed lips part by less than LIP_FILL_W px (the two sides' fields differ
# there: glasses' sad corners) are filled from the lip edges, not painted as interior (they
# were thin black strokes); the painted interior fades in as the gap widens. 1.5-3 px read
# alike; at 4 the `surprised` portrait's smile (its painted opening thins at the ends) read
# fearful 0.30 over happy 0.26.
LIP_FILL_W = 2.0
# A closed-away mouth asked to stay shut (no opening at mid-mouth) still parted a few px where the
# two sides' fields differ near a corner (the `surprised` portrait's sad right corner: a 3x4 px
# black spot of painted interior): there slivers up to SHUT_FILL_W px are filled from the lips too,
# widening back to LIP_FILL_W as the asked opening grows to SHUT_GAP px (no jump in a stream).
SHUT_FILL_W = 6.0
SHUT_GAP = 2.0
_NO_BLEND = np.zeros((1, 1), np.float32)  # (the kernel's arguments when there is no seam)
_NO_OTHER = np.zeros((1, 1, 2), np.float32)


@dataclass
class Opening:
    """The painted gap inside an output box: alpha and where in the gap each pixel is."""

    alpha: np.ndarray  # (h, w) float32 0..1
    depth: np.ndarray  # (h, w) px below the upper lip edge
    s: np.ndarray  # (h, w) mouth coordinate
    seam: np.ndarray  # (h, w) bool: claimed by neither side (the opening, and slivers at its ends)
    # Where the photo's lips are closed away (else None): the other lip's share (h, w) float32
    # 0..0.5 where the closed lips meet, and where that lip is sampled, (h, w, 2) float32.
    blend: np.ndarray | None
    other: np.ndarray | None


def choose_sides(m: MouthGeom, q_up: np.ndarray, q_low: np.ndarray, closed: bool = False,
                 gap: float = float("inf")) -> Opening:
    """Per pixel source coordinates for the mouth band, written into ``q_up`` in place, and
    the opening to paint (kernels.choose_sides). ``closed``: the photo's own interior is
    closed away (Canvas.close), so any opening is painted rather than showing it (a smile's
    teeth would bring the smile back). ``gap``: the opening asked for at mid-mouth, px (a shut
    mouth's slivers are filled wider, SHUT_FILL_W)."""
    shape = q_up.shape[:2]
    seam_w = LIP_SEAM_W if closed else 0.0
    fill_w = LIP_FILL_W
    if closed and gap < SHUT_GAP:
        fill_w += (SHUT_FILL_W - LIP_FILL_W) * (1.0 - gap / SHUT_GAP)
    op = Opening(np.empty(shape, np.float32), np.empty(shape, np.float32), np.empty(shape, np.float32),
                 np.empty(shape, np.bool_), np.zeros(shape, np.float32) if seam_w > 0 else None,
                 np.empty(shape + (2,), np.float32) if seam_w > 0 else None)
    s_ub, t_ub = (m.s_ui, m.t_ui) if closed else (m.s_li, m.t_li)
    kernels.choose_sides(q_up, q_low, *m.frame_args, m.half, m.s_corner, m.s_li, m.t_li, s_ub, t_ub,
                         seam_w, fill_w, op.alpha, op.depth, op.s, op.seam,
                         _NO_BLEND if op.blend is None else op.blend, _NO_OTHER if op.other is None else op.other)
    return op


def paint(out: np.ndarray, m: MouthGeom, op: Opening, gap: float, closed: bool = False,
          teeth: float = 1.0, lower: float = 0.0, source: np.ndarray | None = None) -> None:
    """Draw the cavity, tongue and teeth into ``out`` (the output box) where ``op.alpha`` > 0.

    ``gap`` is the opening at mid-mouth in px (kernels.paint has the shading). ``closed``: the
    photo's interior is closed away, so teeth are painted as for a closed photo. ``teeth``
    scales the painted upper teeth (0: none, surprise's dark oval), ``lower`` the lower ones
    (0: none). ``source``: the pixels the frame was sampled from, for the closed lips' seam.
    """
    s_li, t_li = (m.s_ui, m.t_ui) if closed else (m.s_li, m.t_li)
    if source is not None and op.blend is not None and op.other is not None:
        kernels.blend_seam(out, source, op.blend, op.other)
    kernels.paint(out, op.alpha, op.depth, op.s, gap, m.d, m.half, m.s_corner, m.brightness, teeth, lower,
                  m.s_ui, m.t_ui, s_li, t_li)
