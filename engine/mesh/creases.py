"""Expression creases: the skin's folds that some action units make, as shading on the canvas.

The mesh engine only moves pixels, so a raised inner brow or a wrinkled nose showed no crease;
people (and the expression judge) read fear, disgust, anger and sadness partly from them. Once
per canvas, from the landmarks, this module makes one shading layer per crease group in SOURCE
(canvas) space, so the warp carries each crease with the skin it lies in:

* ``"9"`` (AU9, the nose wrinkler: disgust): short horizontal wrinkles across the nose's root
  between the eyes, and the nasolabial lines deepened from the nose wings to beside the mouth;
* ``"4"`` (AU4, the brows drawn together: anger, sadness, fear; disgust's frown): two vertical
  furrows on the glabella between the inner brows;
* ``"1"`` (AU1, the inner brows raised: fear, sadness) the central part of the forehead's
  horizontal lines, and ``"2"`` (AU2 with it: surprise) their outer parts: fear's and sadness's
  creases stay central, surprise's run across the forehead.

A crease is a soft dark line (a Gaussian across it, sigma CREASE_WIDTH) with a faint highlight on
its lit side (the ridge beside the valley), feathered at both ends and varying a little in depth
along its length (a drawn line is even). The layer is a relative change of the pixel's value
(multiplicative), so a crease is as visible on pale skin as on dark skin. Creases stay off what
is not bare skin: hair (hairline.py's mask), strong edges (glasses rims, the brows' hairs, the
photo's own deep wrinkles: rigid.py's measure) and the brows, eyes, nostrils and lips.

Per frame the render samples a source with the layers applied at the frame's weights (canvas.
coefficients: the AU activations), composed with the softened folds (folds.py). Weights are
quantised to 1/F.STEPS and the composed sources cached by the tuple of levels (at most CACHE),
so a steady expression costs nothing and a changing one one small blend per step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import cv2
import numpy as np

from . import folds as F
from . import regions as R
from .geometry import FaceFrame
from .lru import Lru

# The layers, in the order of Coefficients.creases.
LAYERS = ("9", "4", "1", "2")
# Width of a crease's dark valley (Gaussian sigma across it, units of d) and its depth at weight
# 1 (the relative drop of the pixel values at the valley's floor), per layer.
CREASE_WIDTH = 0.008
DEPTH: dict[str, float] = {"9": 0.22, "4": 0.2, "1": 0.1, "2": 0.1}
# The glabella's furrows: wider, from FURROW_SPAN[0] d below the inner brows' lower edge to
# FURROW_SPAN[1] d above their upper edge (the skin there stretches when the inner brows rise).
FURROW_WIDTH = 0.010
FURROW_SPAN = (0.03, 0.0)
# The nose root's wrinkles: where they cross the midline, as fractions of the way from the
# nose's root (landmark 168) to the bridge below it (6); AU9's pull compresses that skin, so
# they lie far apart in the photo.
ROOT_LINES = (0.3, 1.0, 1.7)
# The nasolabial fold deepened: a broad soft shadow (it deepens the fold a smiling photo
# already has rather than drawing a second line beside it).
NASOLABIAL_WIDTH = 0.025
NASOLABIAL_DEPTH = 0.4
# Its depth along it, nose wing to mouth corner (clipped to [0, 1]): deepest near the nose,
# fading out beside the corner.
NASOLABIAL_TAPER = (1.4, 0.0)
# Where it ends: at least this far out from the nose wing, at most this far below it (d).
NASOLABIAL_FLARE = 0.18
NASOLABIAL_REACH = 0.5
# Its profile: this share of its shade is a slope on the side away from the light (the lip's
# side), SOFT_WIDTH sigmas wide and SOFT_OFFSET sigmas out; the rest a crisp valley under the
# cheek's lit ridge.
NASOLABIAL_SOFT = 0.6
SOFT_WIDTH = 2.5
SOFT_OFFSET = 2.5
# The highlight beside the valley: this share of the depth, offset HIGHLIGHT_OFFSET sigmas to
# the lit side, HIGHLIGHT_WIDTH sigmas wide.
HIGHLIGHT = 0.25
HIGHLIGHT_OFFSET = 2.2
HIGHLIGHT_WIDTH = 1.6
# The depth along a crease varies by up to this share (slow, fixed waves), and its ends feather
# over this share of its length.
DEPTH_JITTER = 0.3
FEATHER_END = 0.3
# The forehead lines: the lowest this far above the brows' fitted upper edge, the next ones
# spaced so (units of d).
FOREHEAD_LIFT = 0.24
FOREHEAD_SPACING = 0.11
# The forehead lines' waviness (units of d).
WAVE = 0.008
# Keep-outs: hair and strong edges (rims, brows) grown by this (d), feathered by half of it.
CLEAR = 0.03
EDGE_FACTOR = 4.0
EDGE_FLOOR = 60.0
# A crease forms once the muscle pulls hard enough: from ONSET of an action unit, full at FULL.
# (A crease drawn from the first hint of a frown made FaceMesh read half an expression's
# landmarks nearly as far moved as the whole one's: tests/test_mesh_engine.py.)
ONSET = 0.3
FULL = 1.0
# Composed sources kept per canvas (RGBA copies of the canvas): the bench's emotion mix needs
# 10 per portrait crop (five creasing emotions at two intensities; with 6, nearly every frame
# was a miss: +10% per frame); at most CACHE_BYTES of them (a full-resolution canvas keeps fewer).
CACHE = 12
CACHE_BYTES = 16 << 20
# Fear's outer brow lift held down by its AU4 (canvas.TAIL_HOLD, equal: canvas imports this
# module): its forehead lines stay central.
TAIL_HOLD = 1.85
# The share of AU9 that draws the brows together (canvas.NOSE_FROWN, equal): disgust's furrows.
NOSE_FROWN = 0.5

# The brows' upper edge, outer to inner, per side (hairline.BROW_TOP) and lower edge.
BROW_TOP = ((70, 63, 105, 66, 107), (300, 293, 334, 296, 336))
BROW_LOW = ((46, 53, 52, 65, 55), (276, 283, 282, 295, 285))
NOSE_ROOT = (168, 6)


def _curve(ctrl: np.ndarray, n: int = 48) -> np.ndarray:
    """A smooth curve through the control points (face frame, units of d): a Catmull-Rom spline."""
    p = np.concatenate([ctrl[:1] * 2 - ctrl[1:2], ctrl, ctrl[-1:] * 2 - ctrl[-2:-1]])
    segs = len(ctrl) - 1
    t = np.linspace(0.0, segs, n)
    i = np.minimum(t.astype(int), segs - 1)
    s = (t - i)[:, None]
    p0, p1, p2, p3 = p[i], p[i + 1], p[i + 2], p[i + 3]
    return 0.5 * (2 * p1 + (-p0 + p2) * s + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s ** 2
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * s ** 3)


def _draw(acc: np.ndarray, origin: tuple[int, int], frame: FaceFrame, curve: np.ndarray, width: float,
          depth: float, lit: np.ndarray, seed: int, taper: np.ndarray | None = None,
          soft: float = 0.0) -> None:
    """Add one crease (``curve``: (n, 2) face-frame points) to ``acc`` (its top-left pixel at
    ``origin``). ``lit``: the face-frame direction of the highlight side; ``taper``: (n,)
    extra weight along the curve (1 if None); ``soft``: the share of the valley that is a wider
    shade on the side away from the light (a fold's slope), 0 for a symmetric valley.

    The curve is drawn as an anti-aliased line whose value is its depth along it, and blurred
    across (a Gaussian valley: a blurred line's profile); the highlight is the same line moved
    to the lit side and blurred wider."""
    h, w = acc.shape
    xy = frame.origin + (curve[:, :1] * frame.u + curve[:, 1:] * frame.v) * frame.d
    sig = max(0.6, width * frame.d)
    towards = lit[0] * frame.u + lit[1] * frame.v
    shift = HIGHLIGHT_OFFSET * sig * towards / max(float(np.hypot(*towards)), 1e-6)
    reach = int(np.ceil(max(HIGHLIGHT_OFFSET + 3.0 * HIGHLIGHT_WIDTH,
                            (SOFT_OFFSET + 3.0 * SOFT_WIDTH) if soft > 0 else 0.0) * sig)) + 2
    x0 = max(0, int(np.floor(xy[:, 0].min())) - reach - origin[0])
    y0 = max(0, int(np.floor(xy[:, 1].min())) - reach - origin[1])
    x1 = min(w, int(np.ceil(xy[:, 0].max())) + reach + 1 - origin[0])
    y1 = min(h, int(np.ceil(xy[:, 1].max())) + reach + 1 - origin[1])
    if x1 <= x0 or y1 <= y0:
        return
    # Along the crease: feathered ends, slow depth waves, the caller's taper.
    n = len(curve)
    t = np.linspace(0.0, 1.0, n)
    end = np.clip(np.minimum(t, 1 - t) / FEATHER_END, 0.0, 1.0)
    along = end * end * (3 - 2 * end)
    rng = np.random.default_rng(seed)
    ph = rng.uniform(0, 2 * np.pi, 2)
    wave = 0.6 * np.sin(2 * np.pi * 1.3 * t + ph[0]) + 0.4 * np.sin(2 * np.pi * 3.1 * t + ph[1])
    along *= 1.0 - DEPTH_JITTER * 0.5 * (1 + wave)
    if taper is not None:
        along *= taper
    box = (y1 - y0, x1 - x0)
    rel = xy - (origin[0] + x0, origin[1] + y0)
    out = np.zeros(box, np.float32)
    parts = [(np.zeros(2), sig, -(1.0 - soft)), (shift, HIGHLIGHT_WIDTH * sig, HIGHLIGHT)]
    if soft > 0:
        # The slope's shade: wider, moved to the shaded side, so the valley is crisp under the lit
        # ridge and fades gradually the other way.
        parts.append((-shift * (SOFT_OFFSET / HIGHLIGHT_OFFSET), SOFT_WIDTH * sig, -soft))
    for offset, blur, gain in parts:
        line = np.zeros(box, np.float32)
        pts = np.round((rel + offset) * 16).astype(np.int32)
        for i in range(n - 1):
            v = float(0.5 * (along[i] + along[i + 1]))
            if v > 1e-3:
                cv2.line(line, tuple(pts[i]), tuple(pts[i + 1]), v, 1, cv2.LINE_AA, shift=4)
        # A one-pixel line blurred by sigma peaks at 1 / (sqrt(2 pi) sigma): scaled back to its value.
        line = cv2.GaussianBlur(line, (0, 0), blur) * (np.sqrt(2 * np.pi) * blur)
        out += gain * line
    acc[y0:y1, x0:x1] += depth * out


def _ff(points: np.ndarray, frame: FaceFrame, idx) -> np.ndarray:
    return frame.coords(points[list(idx), :2].astype(np.float64))


def _brow_fit(points: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """Quadratic v(u) (face frame) through both brows' upper edges: the forehead lines follow it."""
    p = np.concatenate([_ff(points, frame, s) for s in BROW_TOP])
    return np.polyfit(p[:, 0], p[:, 1], 2)


def _geometry(points: np.ndarray, frame: FaceFrame) -> dict[str, list[tuple]]:
    """Per layer: the creases as (curve, width, depth, lit direction, taper, soft)."""
    out: dict[str, list[tuple]] = {k: [] for k in LAYERS}
    inner_lo = _ff(points, frame, (BROW_LOW[0][-1], BROW_LOW[1][-1]))
    inner_hi = _ff(points, frame, (BROW_TOP[0][-1], BROW_TOP[1][-1]))
    mid_u = float(inner_lo[:, 0].mean())
    gap = float(inner_lo[1, 0] - inner_lo[0, 0])
    # "4": two vertical furrows, a little apart from the midline, their tops leaning out.
    v_bot = float(inner_lo[:, 1].mean()) + FURROW_SPAN[0]
    v_top = float(inner_hi[:, 1].mean()) - FURROW_SPAN[1]
    off = max(0.04, 0.22 * gap)
    for s in (-1, 1):
        # Slightly bowed out in the middle, a little closer together at the bottom.
        ctrl = np.array([[mid_u + s * off * 0.92, v_bot], [mid_u + s * off * 1.06, (v_bot + v_top) / 2],
                         [mid_u + s * off * 1.08, v_top]])
        out["4"].append((_curve(ctrl), FURROW_WIDTH, DEPTH["4"], np.array([s * 1.0, 0.0]), None, 0.0))
    # "9": wrinkles across the nose root (between the eyes' inner corners), arched down at the ends.
    root = _ff(points, frame, NOSE_ROOT)
    inner_eye = _ff(points, frame, (R.EYE_CORNERS[0][1], R.EYE_CORNERS[1][1]))
    half = 0.5 * float(inner_eye[1, 0] - inner_eye[0, 0]) / 2
    for j, f in enumerate(ROOT_LINES):
        v = float(root[0, 1] + f * (root[1, 1] - root[0, 1]))
        cu = float(root[0, 0] + f * (root[1, 0] - root[0, 0]))
        ctrl = np.array([[cu - half, v + 0.03], [cu, v], [cu + half, v + 0.03]])
        out["9"].append((_curve(ctrl, 32), CREASE_WIDTH * 0.9, DEPTH["9"] * (1.0 - 0.2 * j),
                         np.array([0.0, 1.0]), None, 0.0))
    # "9": the nasolabial folds: from above the nose wing, curving outward around the mouth
    # corner and fading beside it. The end is kept out from the wing (NASOLABIAL_FLARE) so a narrow
    # photo mouth (the `surprised` portrait's O) does not make two straight parallel strokes, and
    # it stops NASOLABIAL_REACH d below the wing (an open jaw's corner lies far lower).
    for side, (wing, corner) in enumerate(zip(R.NOSE_WING, R.MOUTH_CORNERS)):
        s = -1 if side == 0 else 1
        a, c = (_ff(points, frame, (i,))[0] for i in (wing, corner))
        top = a + [s * 0.03, -0.03]
        end_u = s * max(s * c[0] + 0.07, s * a[0] + NASOLABIAL_FLARE)
        end = np.array([end_u, min(c[1] + 0.03, a[1] + NASOLABIAL_REACH)])
        # Bowed out: it leaves the wing heading outward and runs down beside the corner.
        mid = np.array([top[0] + 0.75 * (end[0] - top[0]), top[1] + 0.45 * (end[1] - top[1])])
        ctrl = np.array([top, mid, end])
        taper = np.clip(np.linspace(NASOLABIAL_TAPER[0], NASOLABIAL_TAPER[1], 48), 0, 1)  # strongest near the nose
        out["9"].append((_curve(ctrl), NASOLABIAL_WIDTH, NASOLABIAL_DEPTH, np.array([s * 0.8, -0.6]), taper,
                         NASOLABIAL_SOFT))
    # "1" / "2": forehead lines parallel to the brows' fitted arch, flatter higher up; "1" their
    # central part, "2" the outer parts (complementary tapers: together one whole line).
    q = _brow_fit(points, frame)
    us = np.linspace(-0.85, 0.85, 64) + mid_u
    centre = np.abs(us - mid_u)
    c_ramp = np.clip((centre - 0.22) / 0.2, 0.0, 1.0)
    c_ramp = c_ramp * c_ramp * (3 - 2 * c_ramp)
    for j in range(3):
        lift = FOREHEAD_LIFT + FOREHEAD_SPACING * j
        flat = 0.65 ** j
        v = np.polyval([q[0] * flat, q[1] * flat, q[2]], us) - lift
        v = np.minimum(v, float(inner_hi[:, 1].min()) - lift + 0.02)  # never on the inner brows
        v += WAVE * np.sin(2 * np.pi * (1.6 + 0.4 * j) * us + 1.7 * j)  # skin's lines are never straight
        curve = np.stack([us, v], axis=1)
        depth = DEPTH["1"] * (1.0 - 0.15 * j)
        # Fear's central lines are short (about the inner brows' span).
        out["1"].append((curve, CREASE_WIDTH, depth, np.array([0.0, 1.0]), 1.0 - c_ramp, 0.0))
        out["2"].append((curve, CREASE_WIDTH, depth, np.array([0.0, 1.0]), c_ramp, 0.0))
    return out


def _keep_out(image: np.ndarray, points: np.ndarray, frame: FaceFrame, box: tuple[int, int, int, int],
              hair: np.ndarray | None) -> np.ndarray:
    """(box h, box w) float32: 1 where a crease may show (bare skin), 0 on hair, rims, brows,
    eyes and nostrils, feathered."""
    x0, y0, x1, y1 = box
    g = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 1.0)
    mag = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    thr = max(EDGE_FLOOR, EDGE_FACTOR * float(np.median(mag)))
    out = (mag > thr).astype(np.uint8)
    pts = np.round(points[:, :2] - (x0, y0)).astype(np.int32)
    for s in (0, 1):
        cv2.fillPoly(out, [np.concatenate([pts[list(BROW_TOP[s])], pts[list(BROW_LOW[s])][::-1]])], 1)
    for eye in ((*R.EYE_R_UPPER, *R.EYE_R_LOWER[::-1]), (*R.EYE_L_UPPER, *R.EYE_L_LOWER[::-1])):
        cv2.fillPoly(out, [pts[list(eye)]], 1)
    cv2.fillConvexPoly(out, cv2.convexHull(pts[list(F.NOSE_LOW)]), 1)
    lips = np.concatenate([pts[list(R.LIP_UPPER_OUTER)], pts[list(R.LIP_LOWER_OUTER)][::-1]])
    cv2.fillPoly(out, [lips], 1)
    if hair is not None:
        out |= hair[y0:y1, x0:x1].astype(np.uint8)
    k = max(1, int(round(CLEAR * frame.d)))
    out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    free = 1.0 - out.astype(np.float32)
    return cv2.GaussianBlur(free, (0, 0), max(0.5, 0.5 * CLEAR * frame.d))


def _entries(rgba: np.ndarray) -> int:
    return int(min(CACHE, max(2, CACHE_BYTES // max(1, rgba.nbytes))))


@dataclass
class Creases:
    """A canvas's crease layers and the composed sources the render samples."""

    box: tuple[int, int, int, int]  # the union of the layers' boxes
    layers: tuple[np.ndarray, ...]  # per LAYERS: (box h, box w) float32 relative change at weight 1
    _cache: Lru = field(default_factory=Lru, repr=False)

    def nbytes(self, rgba: np.ndarray) -> int:
        """The layers plus the most the cache holds for a canvas of ``rgba``'s size."""
        return int(sum(x.nbytes for x in self.layers) + _entries(rgba) * rgba.nbytes)

    def source(self, base: np.ndarray, fold_level: int, weights: tuple[float, ...]) -> np.ndarray:
        """``base`` (the canvas's RGBA, its folds softened at ``fold_level``) with each layer at
        its weight (quantised to 1/F.STEPS; all 0 gives ``base`` itself). Never written again."""
        levels = tuple(int(round(min(max(w, 0.0), 1.0) * F.STEPS)) for w in weights)
        if not any(levels):
            return base
        key = (fold_level, levels)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        x0, y0, x1, y1 = self.box
        gain = np.ones((y1 - y0, x1 - x0), np.float32)
        for layer, lv in zip(self.layers, levels):
            if lv:
                cv2.scaleAdd(layer, lv / F.STEPS, gain, dst=gain)
        out = base.copy()
        part = base[y0:y1, x0:x1, :3].astype(np.float32) * gain[..., None]
        out[y0:y1, x0:x1, :3] = np.clip(np.rint(part), 0, 255).astype(np.uint8)
        self._cache.put(key, out, _entries(base))
        return out


def build_creases(image: np.ndarray, points: np.ndarray, frame: FaceFrame,
                  hair: np.ndarray | None = None) -> Creases | None:
    """The canvas's crease layers (None when the face's creases fall outside the canvas)."""
    h, w = image.shape[:2]
    geo = _geometry(points, frame)
    allxy = []
    for items in geo.values():
        for curve, *_ in items:
            allxy.append(frame.origin + (curve[:, :1] * frame.u + curve[:, 1:] * frame.v) * frame.d)
    xy = np.concatenate(allxy)
    pad = 0.06 * frame.d + 4
    x0, y0 = max(0, int(np.floor(xy[:, 0].min() - pad))), max(0, int(np.floor(xy[:, 1].min() - pad)))
    x1, y1 = min(w, int(np.ceil(xy[:, 0].max() + pad)) + 1), min(h, int(np.ceil(xy[:, 1].max() + pad)) + 1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    box = (x0, y0, x1, y1)
    free = _keep_out(image, points, frame, box, hair)
    layers = []
    for li, name in enumerate(LAYERS):
        acc = np.zeros((y1 - y0, x1 - x0), np.float32)
        for ci, (curve, width, depth, lit, taper, soft) in enumerate(geo[name]):
            _draw(acc, (x0, y0), frame, curve, width, depth, lit, seed=17 * li + ci, taper=taper, soft=soft)
        layers.append(np.ascontiguousarray(acc * free, dtype=np.float32))
    return Creases(box=box, layers=tuple(layers))


def weights(aus: Mapping[int, float]) -> tuple[float, float, float, float]:
    """A frame's layer weights (LAYERS' order) from its action units."""
    # Plain floats: this runs every frame, and numpy's scalar calls cost more than the arithmetic.
    a1, a2, a4, a9 = (float(aus.get(k, 0.0)) for k in (1, 2, 4, 9))
    if a1 > 0 and a4 > 0:
        a2 = max(0.0, a2 - TAIL_HOLD * a4)  # fear's outer brows held down: no outer lines
    s = 1.0 / (FULL - ONSET)
    w9, w4, w1, w2 = ((x - ONSET) * s for x in (a9, a4 + NOSE_FROWN * a9, a1, min(a1, a2)))
    return (min(max(w9, 0.0), 1.0), min(max(w4, 0.0), 1.0), min(max(w1, 0.0), 1.0), min(max(w2, 0.0), 1.0))
