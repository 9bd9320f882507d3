"""Rigid things near the eyes: glasses frames stay put while brows, lids and cheeks move.

A glasses frame sits on the nose, not on the skin the brow and cheek fields move: dragged by
them it bends (the seed's Grace Hopper raised her brows and her frames curved with them).
Found once per canvas from the image:

* **Are there glasses?** The bridge of a frame crosses the nose between the eyes, where bare
  skin is smooth. Across the nose bridge (a strip 0.12 d wide on the eyes' midline, from 0.35
  d above the eye line to 0.25 d below) the steepest step of the mean brightness, per unit d,
  is 20-28 (x100 grey levels) on the glasses portraits we test and at most 4.5 without
  glasses (smiles, open mouths, a tight crop); GLASSES_BRIDGE sits between them.
* **Where is the frame?** Around each eye (the zone the brow, lid and cheek fields reach),
  the strong edges: the rims, and whatever else is sharp there (lashes, the brows under a
  rim). Over them the fields of the brows and cheeks are replaced, smoothly (a Gaussian of
  RIGID_BLUR d, so the gradients stay below 1), by one translation: the field's mean over the
  top rims (and the brows under them), nothing lower down. So the top rims rise with the
  brows as straight pieces instead of bending around each brow's bump, the lower rims and the
  bridge stay, the skin above (forehead, brows above the rim) moves freely, and the eye moves
  inside the lens by its own per-pixel lid map.
* **How far the top rims rise?** Glasses rest on the nose and ears; the brows move behind
  them. Where the brows sit low over the lids the rims rest on the lids, and the lens's thin
  top between rim and lid would take all of a rim's rise as a stretch (Grace Hopper: 2.7x at
  brows=1, her lens's white glints with it): there the rims rise by RIM_LIFT_MIN of the
  brows' motion and the brows slide out above them (rim_lift).
"""
from __future__ import annotations

import cv2
import numpy as np

from . import regions as R
from .geometry import FaceFrame
from .warp import sample_at

GLASSES_BRIDGE = 10.0
# Edge strength (Sobel of the grey image smoothed by 1 px) that counts as a frame's edge,
# relative to the median over the face's zone (skin texture), and never below an absolute floor.
EDGE_FACTOR = 4.0
EDGE_FLOOR = 60.0
RIGID_BLUR = 0.07  # d
TOP_CLEAR = 0.05  # d: how far above the upper lid the frame's top part may begin
# Glasses sit on the nose and ears, not on the brows. Where the brows sit low, close over the
# upper lids (Grace Hopper: their inner and middle points 0.13 d above the lid line), the rims
# rest on the lids and hide the brows, and the lens's top between rim and lid is too thin to
# take a rim's rise: lifted with the brows (13.6 px at brows=1) it stretched there 2.7x, white
# glints and all. So the top rims there rise by RIM_LIFT_MIN of the brows' motion, the brows
# slide up behind and above them; with the brows BROW_GAP_FULL d or more above the lids (the
# `glasses` portrait: 0.23 d) the rims (and the brows the frame's zone holds) rise with them
# in full, as before; in between, linearly. Lowering (anger) keeps the brows' motion in full.
RIM_LIFT_MIN = 0.35
BROW_GAP_LOW = 0.15
BROW_GAP_FULL = 0.2
# The fields that reach the frames: brow lifts and lowering, the nose wrinkler's brow handle,
# the cheek raiser and the lid tightener's lower lid (under the lower rims).
RIGID_AUS = ("1", "2", "4", "4w", "4v", "4u", "6", "7", "9")


def _grey(image: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(g, (0, 0), 1.0)


def bridge_score(image: np.ndarray, points: np.ndarray, frame: FaceFrame) -> float:
    """The steepest brightness step across the nose bridge, grey levels per unit d / 100."""
    g = _grey(image)
    p = points[:, :2].astype(np.float64)
    mid = (p[R.EYE_CORNERS[0][1]] + p[R.EYE_CORNERS[1][1]]) / 2
    u0 = float((mid - frame.origin) @ frame.u / frame.d)
    vs = np.linspace(-0.35, 0.25, 61)
    us = np.linspace(u0 - 0.06, u0 + 0.06, 7)
    U, V = np.meshgrid(us, vs)
    xy = (frame.origin[None, None, :] + (U[..., None] * frame.u + V[..., None] * frame.v) * frame.d)
    xy = xy.astype(np.float32)
    prof = cv2.remap(g, np.ascontiguousarray(xy[..., 0]), np.ascontiguousarray(xy[..., 1]),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).mean(axis=1)
    return float(np.abs(np.diff(prof)).max() / (vs[1] - vs[0]) / 100.0)


def rigid_weights(image: np.ndarray, points: np.ndarray, frame: FaceFrame,
                  nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(rigid, top) at ``nodes``, each (M,): ``rigid`` 1 on a glasses frame, 0 away from it;
    ``top`` the part of it above the upper lids (the top rims, and brows under them), which
    may move as one piece; None without glasses."""
    if bridge_score(image, points, frame) < GLASSES_BRIDGE:
        return None
    g = _grey(image)
    mag = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    h, w = g.shape
    zone = np.zeros((h, w), np.uint8)
    p = points[:, :2].astype(np.float64)
    for side in (0, 1):
        c = p[list(R.EYE_CORNERS[side])].mean(axis=0)
        # From above the brows to below the lower rim, past both eye corners.
        corners = [c + frame.vec(a, b) for a in (-0.5, 0.5) for b in (-0.5, 0.45)]
        hull = cv2.convexHull(np.round(np.array(corners)).astype(np.int32))
        cv2.fillConvexPoly(zone, hull, 1)
    # The bridge between the lenses too.
    mid = (p[R.EYE_CORNERS[0][1]] + p[R.EYE_CORNERS[1][1]]) / 2
    bridge = [mid + frame.vec(a, b) for a in (-0.15, 0.15) for b in (-0.3, 0.2)]
    cv2.fillConvexPoly(zone, cv2.convexHull(np.round(np.array(bridge)).astype(np.int32)), 1)
    inside = zone > 0
    if not inside.any():
        return None
    thr = max(EDGE_FLOOR, EDGE_FACTOR * float(np.median(mag[inside])))
    edges = ((mag > thr) & inside).astype(np.uint8)
    k = max(3, int(round(0.12 * frame.d)) | 1)
    edges = cv2.dilate(edges, np.ones((k, k), np.uint8)).astype(np.float32)
    rigid = cv2.GaussianBlur(edges, (0, 0), RIGID_BLUR * frame.d)
    rigid = np.clip(rigid * 2.0, 0.0, 1.0)  # the rim itself keeps weight 1: the ramp lies beyond it
    at = sample_at(rigid, nodes, cv2.BORDER_CONSTANT, 0.0)
    # Above each upper lid (at the same point along the eye; beyond the corners, above the
    # corner) by more than TOP_CLEAR d, fading in over the next 0.08 d: the whole top rim,
    # cat-eye ends included, moves as one piece.
    top = np.zeros(len(nodes))
    for side, upper in enumerate((R.EYE_R_UPPER, R.EYE_L_UPPER)):
        c = p[list(R.EYE_CORNERS[side])].mean(axis=0)
        rel = p[list(upper)] - c
        ls, lt = rel @ frame.u, rel @ frame.v
        order = np.argsort(ls)
        x = (nodes - c) @ frame.u
        t = (nodes - c) @ frame.v
        lid = np.interp(x, ls[order], lt[order])
        rise = np.clip((lid - TOP_CLEAR * frame.d - t) / (0.08 * frame.d), 0.0, 1.0) * (np.abs(x) < 0.6 * frame.d)
        top = np.maximum(top, rise * rise * (3 - 2 * rise))
    return at, at * top


def rim_lift(points: np.ndarray, frame: FaceFrame) -> float:
    """The share of the brows' upward motion the top rims take: RIM_LIFT_MIN where the brows
    sit low over the lids (the rims rest on the lids), 1 where they sit high."""
    p = points[:, :2].astype(np.float64)
    gaps = []
    for side, upper in enumerate((R.EYE_R_UPPER, R.EYE_L_UPPER)):
        c = p[list(R.EYE_CORNERS[side])].mean(axis=0)
        lid = float(((p[list(upper)] - c) @ frame.v).min())
        brow = float(np.mean([(p[b[side]] - c) @ frame.v for b in (R.BROW_INNER, R.BROW_MID)]))
        gaps.append((lid - brow) / frame.d)
    share = (float(np.mean(gaps)) - BROW_GAP_LOW) / (BROW_GAP_FULL - BROW_GAP_LOW)
    return float(np.clip(share, RIM_LIFT_MIN, 1.0))


def rigidify(bases: np.ndarray, rigid: np.ndarray, top: np.ndarray, nodes: np.ndarray, frame: FaceFrame,
             lift: float = 1.0) -> None:
    """In place, per field (K, M, 2): over the frame the field becomes one translation per top
    rim (they rise or fall as pieces, unbent): the field's mean over that rim across the face
    (v; rising, only ``lift`` of it: rim_lift), and its mean over both rims along it (u: brows
    drawn together must not squeeze the frame, whose bridge stays); nothing below the top rims."""
    side = ((nodes - frame.origin) @ frame.u > 0).astype(np.float64)  # 1: the image-right rim
    wr, wl = top * side, top * (1 - side)
    for k in range(len(bases)):
        f = bases[k]
        u, v = f @ frame.u, f @ frame.v
        mu = (u * top).sum() / max(top.sum(), 1e-6)
        mv = np.where(side > 0, (v * wr).sum() / max(wr.sum(), 1e-6), (v * wl).sum() / max(wl.sum(), 1e-6))
        mv = np.where(mv < 0, lift * mv, mv)  # v < 0: up
        move = mu * frame.u[None, :] + mv[:, None] * frame.v[None, :]
        bases[k] = f * (1 - rigid)[:, None] + top[:, None] * move
