"""Hair and hats stay put: the brow and forehead fields stop short of them.

The brow fields carry the forehead along (a frown lowers the lower forehead, a brow raise
lifts it as a sheet) and reach half an inter-ocular distance d up. A fringe, a hairline or a
cap's brim inside that reach used to move with the skin, and since the fields are strongest
over the inner brows the hair's edge bent into a V (anger) or a bump (surprise). Hair is
attached to the scalp, not to the skin the brows move, so here:

* **Where is hair?** Found once per canvas, from colour: the skin's colour is sampled on
  the glabella, the nose bridge, the lower forehead and the cheeks (robust median and
  spread in Lab), and a pixel is *not skin* when it is much darker than that skin, or of
  another hue, or somewhat of both. Hair is what is not skin above the brows (their upper
  edge, less ``ABOVE_BROWS`` d) and ``BROW_CLEAR`` d clear of them every way; the brows
  themselves, lashes, glasses rims and beards lie lower down. Specks are opened away and
  the outline smoothed (``EDGE_SMOOTH``).
* **How do the fields stop?** Over the hair each brow and forehead field (``FIELDS``)
  becomes one translation, ``FOLLOW`` of its pull on the hair's edge. Off the hair the
  field's departure from that translation is scaled down, per grid node, so that at the
  strongest activation (``MAX_ACTIVATION``) it is at most ``MAX_STRAIN`` times the node's
  distance to the hair: the skin between the brows and the hair takes the stretch, with
  no fold-over.

Measured on the six test portraits (the forward field over the hair within 0.15 d of its
edge, tests/test_mesh_hairline.py): at intensity 1.0 it bent by 0.09-0.19 d (max minus min
across the edge) in anger, surprise and fear on the five whose hair or cap the brows reach;
now it is one translation everywhere (0.000 d).
"""
from __future__ import annotations

import cv2
import numpy as np

from .geometry import FaceFrame, reduced
from .warp import sample_at

# Skin samples: the glabella, the nose bridge, the lower forehead over each inner brow, the
# mid-forehead and the cheeks (each a small square around the landmark).
SKIN_SAMPLES = (9, 8, 168, 6, 197, 108, 337, 151, 117, 346)
SAMPLE_RADIUS = 0.04  # d
# The brows' upper edge, outer to inner then inner to outer (the zone's lower bound).
BROW_TOP = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
ABOVE_BROWS = 0.12  # d above the brows' upper edge: where hair may begin
BROW_CLEAR = 0.2  # d from the brows' upper edge, any way
# Not skin: darker than the skin by DARK spreads, or as far in hue (a, b) as CHROMA spreads,
# or a little of both (blond hair is only somewhat darker and somewhat yellower than skin).
DARK = 2.5
CHROMA = 4.0
BOTH = (1.2, 2.5)
# Where hair is looked for (d, face frame): as far as the brow fields reach (the forehead
# sheet's handle, 0.45 d wide, sits 0.6 d above the eye line), and down to the cheeks' samples.
REACH_U = (-1.6, 1.6)
REACH_T = (-2.0, 0.6)
# Spread floors (Lab units): a very even skin sample must not make every shade hair.
SPREAD_FLOOR = (8.0, 2.5, 2.5)
LIGHT_SPREAD = 1.5  # lighting varies more than hue: the luminance spread counts 1.5x
# The fields that reach the hair: the brows' and the forehead's (the cheeks' and the mouth's
# stay on the face).
FIELDS = ("1", "2", "4", "4v", "4u", "4w", "4f", "9")
# The hair's edge, where its one translation is measured, is this deep (d); the hair follows
# that much of the pull on it (the scalp moves a little with the forehead, not as far).
EDGE = 0.15
FOLLOW = 0.5
# The strongest brow activation an emotion asks for (surprise's AU1/AU2 0.8 x scale 1.5), and
# the stretch allowed then between the hair and the brows (a fold comes at 1).
MAX_ACTIVATION = 1.5
MAX_STRAIN = 0.8
# The hair's outline is smoothed over this (d): a ragged fringe's strands would otherwise
# put kinks into the distance the fields are bounded by, and the warp would draw them.
EDGE_SMOOTH = 0.05
# How far (d) the scale of a field near the hair is smoothed.
SMOOTH = 0.12


def _skin_stats(lab: np.ndarray, points: np.ndarray, frame: FaceFrame) -> tuple[np.ndarray, np.ndarray]:
    h, w = lab.shape[:2]
    r = max(2, int(round(SAMPLE_RADIUS * frame.d)))
    samples = []
    for x, y in points[list(SKIN_SAMPLES), :2]:
        x0, y0 = int(np.clip(round(x) - r, 0, w - 1)), int(np.clip(round(y) - r, 0, h - 1))
        samples.append(lab[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1].reshape(-1, 3))
    s = np.concatenate(samples)
    med = np.median(s, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(s - med), axis=0), SPREAD_FLOOR)
    spread[0] *= LIGHT_SPREAD
    return med, spread


def _coords(xy: np.ndarray, frame: FaceFrame) -> tuple[np.ndarray, np.ndarray]:
    """(u, t) face-frame coordinates of pixels (N, 2), units of d, float32."""
    rel = xy.astype(np.float32) - frame.origin.astype(np.float32)
    return (rel @ frame.u.astype(np.float32)) / np.float32(frame.d), (rel @ frame.v.astype(np.float32)) / np.float32(frame.d)


def _above_brows(xy: np.ndarray, points: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """(N,) how far (d) each pixel lies above the brows' upper edge (< 0 below it; held flat
    beyond the brows' ends)."""
    u, t = _coords(xy, frame)
    brow = frame.coords(points[list(BROW_TOP), :2].astype(np.float64))
    order = np.argsort(brow[:, 0])
    return (np.interp(u, brow[order, 0], brow[order, 1]) - t).astype(np.float32)


def _reach_box(frame: FaceFrame, w: int, h: int) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1) around where the brow fields reach, and the skin samples."""
    corners = np.array([frame.origin + frame.vec(a, b) for a in REACH_U for b in REACH_T])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def hair_mask(image: np.ndarray, points: np.ndarray, frame: FaceFrame, work_d: float | None = None) -> np.ndarray:
    """(h, w) bool: hair, hats and whatever else is not skin above the brows (looked for only
    where the brow fields reach)."""
    h, w = image.shape[:2]
    scale, small, pts, fr = reduced((h, w), points, frame, work_d)
    if scale < 1.0:   # a full-resolution canvas: found on a shrunk copy
        tiny = cv2.resize(np.ascontiguousarray(image), (small[1], small[0]), interpolation=cv2.INTER_AREA)
        mask = hair_mask(tiny, pts, fr).astype(np.float32)
        return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    x0, y0, x1, y1 = _reach_box(frame, w, h)
    out = np.zeros((h, w), bool)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return out
    p = points[:, :2].astype(np.float64)
    roi = np.ascontiguousarray(image[y0:y1, x0:x1])
    lab = cv2.cvtColor(cv2.GaussianBlur(roi, (0, 0), 1.5), cv2.COLOR_RGB2LAB).astype(np.float32)
    med, spread = _skin_stats(lab, p - [x0, y0], frame)
    dark = (med[0] - lab[..., 0]) / spread[0]
    chroma = np.sqrt((((lab[..., 1:] - med[1:]) / spread[1:]) ** 2).sum(axis=-1))
    not_skin = (dark > DARK) | (chroma > CHROMA) | ((dark > BOTH[0]) & (chroma > BOTH[1]))
    k = max(3, int(round(0.03 * frame.d)) | 1)
    not_skin = cv2.morphologyEx(not_skin.astype(np.uint8), cv2.MORPH_OPEN, np.ones((k, k), np.uint8)) > 0
    # The zone: above the brows' upper edge (followed along the eye line, held flat beyond
    # the brows' ends). Hair beside the brows (the temples) is left to move: holding it held
    # the outer brows down.
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    above = _above_brows(np.stack([xx.ravel(), yy.ravel()], axis=1), p, frame).reshape(xx.shape)
    # ... and clear of the brows by BROW_CLEAR d every way: hair right beside a brow's tail,
    # held, pins it while the rest of the brow rises (a kink).
    brows = np.zeros(xx.shape, np.uint8)
    for side in (BROW_TOP[:5], BROW_TOP[5:]):
        line = np.round(p[list(side)] - [x0, y0]).astype(np.int32)
        cv2.polylines(brows, [line], False, 1, thickness=max(1, int(round(0.03 * frame.d))))
    clear = cv2.distanceTransform((brows == 0).astype(np.uint8), cv2.DIST_L2, 5) > BROW_CLEAR * frame.d
    zone = (above > ABOVE_BROWS) & clear
    # Ragged edges (strands, a speck of skin colour in blond hair) smoothed: the warp would
    # draw them as ragged lines.
    mask = cv2.morphologyEx((not_skin & zone).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    smooth = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), EDGE_SMOOTH * frame.d)
    out[y0:y1, x0:x1] = smooth > 0.5
    return out


def hair_weights(mask: np.ndarray, frame: FaceFrame, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, edge) at ``nodes``, each (M,): the distance in pixels to the nearest hair
    pixel (0 on the hair), and 1 on the hair within EDGE d of its edge (where the fields
    reach it), 0 elsewhere."""
    if not mask.any():
        return np.full(len(nodes), 1e6), np.zeros(len(nodes))
    outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    edge = (mask & (inside < EDGE * frame.d)).astype(np.float32)
    return sample_at(outside, nodes), sample_at(edge, nodes)


def hold_hair(bases: np.ndarray, keys: tuple[str, ...], distance: np.ndarray, edge: np.ndarray,
              shape: tuple[int, int], smooth_nodes: float, keep: np.ndarray | None = None) -> None:
    """In place, for the FIELDS among ``keys`` (bases is (K, gy * gx, 2), one field per key,
    nodes in rows of ``shape``): the hair moves as one piece, by the field's mean over its
    edge; off the hair, the field's departure from that translation is scaled down so that
    at MAX_ACTIVATION no node departs more than MAX_STRAIN times its distance to the hair
    (no fold-over between the brows and a low fringe). The scale is blurred over
    ``smooth_nodes`` nodes (the distance to a ragged edge has kinks a warp would draw), and
    kept under the bound. ``keep`` (M,) in 0..1: where the fields stay as they are (a glasses
    frame, already one translation per rim: rigid.py)."""
    if edge.sum() < 1:
        return
    allowed = MAX_STRAIN * distance / MAX_ACTIVATION
    r = max(1.0, smooth_nodes)
    for k in (keys.index(f) for f in FIELDS if f in keys):
        f = bases[k].astype(np.float64)
        # Weighted by how far each part of the edge is pulled: the hair goes with the
        # strongest pull on it, which leaves the skin below the least to stretch.
        w = edge * np.hypot(f[:, 0], f[:, 1])
        if w.sum() < 1e-9:
            continue
        move = FOLLOW * (f * w[:, None]).sum(axis=0) / w.sum()
        rest = f - move[None, :]
        scale = np.minimum(1.0, allowed / np.maximum(np.hypot(rest[:, 0], rest[:, 1]), 1e-9))
        # Blurred, and never above the bound (so the hair itself keeps exactly 0).
        blurred = cv2.GaussianBlur(scale.reshape(shape).astype(np.float32), (0, 0), r).ravel()
        scale = np.minimum(scale, blurred)[:, None]
        held = move[None, :] + rest * scale
        if keep is not None:
            held = keep[:, None] * f + (1 - keep[:, None]) * held
        bases[k] = held.astype(bases.dtype)
