"""Smooth action-unit displacement fields, anchored on landmarks in the face frame.

Each AU is a few "handles": a landmark (or a left/right pair), a displacement in units of
the inter-ocular distance d along the face axes (u: image right, v: down), and a Gaussian
reach sigma (also in d). A handle moves the skin around its landmark by that displacement,
fading with distance, so the field is smooth and its gradient stays well below 1 (no
fold-over) for the activations FaceActivation produces (<= 1.5).

The lips' opening (AU10/16/25/26) tears the skin along the mouth line, which no smooth
field can do; mouth.py builds those fields. Eyelids and gaze are done per pixel in eyes.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import regions as R
from .geometry import FaceFrame


@dataclass(frozen=True)
class Handle:
    landmarks: tuple[int, int] | int  # a (image-left, image-right) pair is mirrored in u
    du: float  # for a pair: outward (away from the face centre line) is positive
    dv: float  # down is positive
    sigma: float


# Displacements at activation 1.0. Signs follow FACS: AU1 lifts the inner brow, AU4 pulls
# the brows down and together, AU12 pulls the corners up and out, AU15 pulls them down...
# AU4 is split: "4" draws the brows together and lowers them in the middle, "4v" lowers the
# inner ends. With AU1 also active (sadness, fear) the inner ends rise instead: the
# oblique "grief" brow, so 4v only gets what AU4 has beyond AU1 (see canvas.coefficients).
AU_HANDLES: dict[str, tuple[Handle, ...]] = {
    # Brow lifts carry the forehead along (second handle) so the skin above is not crushed.
    # A counter-handle on the upper lid keeps the lifted brow from dragging the eye open
    # (AU5 does that, in eyes.py).
    "1": (Handle(R.BROW_INNER_UPPER, -0.01, -0.15, 0.17), Handle(R.BROW_MID_UPPER, 0.0, -0.05, 0.15),
          Handle(R.FOREHEAD_INNER, 0.0, -0.12, 0.3), Handle(R.UPPER_LID, 0.0, 0.05, 0.09)),
    "2": (Handle(R.BROW_OUTER_UPPER, 0.01, -0.14, 0.18), Handle(R.BROW_MID_UPPER, 0.0, -0.06, 0.15),
          Handle(R.FOREHEAD_OUTER, 0.0, -0.12, 0.3), Handle(R.UPPER_LID, 0.0, 0.05, 0.09)),
    # The pull together is kept narrow (sigma 0.1) so the inner eye corners stay put.
    "4": (Handle(R.BROW_INNER, -0.08, 0.0, 0.10), Handle(R.BROW_INNER_UPPER, -0.04, 0.03, 0.12),
          Handle(R.BROW_MID, -0.01, 0.08, 0.15)),
    "4v": (Handle(R.BROW_INNER, 0.0, 0.13, 0.15),),
    "6": (Handle(R.CHEEK_HIGH, 0.0, -0.05, 0.16), Handle(R.CHEEK_UNDER_EYE, 0.0, -0.035, 0.15)),
    "9": (Handle(R.NOSE_WING, 0.0, -0.05, 0.10), Handle(R.NASOLABIAL, 0.0, -0.03, 0.12),
        Handle(R.BROW_INNER, -0.01, 0.02, 0.12)),
    "12": (Handle(R.MOUTH_CORNERS, 0.06, -0.085, 0.14), Handle(R.NASOLABIAL, 0.02, -0.04, 0.15),
         Handle(R.CHEEK_LOW, 0.0, -0.03, 0.16)),
    "15": (Handle(R.MOUTH_CORNERS, 0.01, 0.11, 0.12), Handle(R.LOWER_LIP_SIDE, 0.0, 0.04, 0.12)),
    "20": (Handle(R.MOUTH_CORNERS, 0.085, 0.01, 0.13),),
    "23": (Handle(R.MOUTH_CORNERS, -0.035, 0.0, 0.10),),
}
SMOOTH_AUS: tuple[str, ...] = tuple(AU_HANDLES)


def handle_field(points: np.ndarray, frame: FaceFrame, handles: tuple[Handle, ...],
                 nodes: np.ndarray) -> np.ndarray:
    """Displacement (px) at ``nodes`` (M, 2) for activation 1.0 of one action unit."""
    out = np.zeros_like(nodes, dtype=np.float64)
    for h in handles:
        pairs = h.landmarks if isinstance(h.landmarks, tuple) else (h.landmarks,)
        for k, idx in enumerate(pairs):
            # The image-left member of a pair moves outward towards -u.
            du = -h.du if (len(pairs) == 2 and k == 0) else h.du
            centre = points[idx, :2].astype(np.float64)
            sig = h.sigma * frame.d
            r2 = ((nodes - centre) ** 2).sum(axis=1)
            w = np.exp(-r2 / (2 * sig * sig))
            out += w[:, None] * frame.vec(du, h.dv)[None, :]
    return out


def au_bases(points: np.ndarray, frame: FaceFrame, nodes: np.ndarray) -> np.ndarray:
    """(len(SMOOTH_AUS), M, 2) float32 fields, one per smooth action unit."""
    return np.stack([handle_field(points, frame, AU_HANDLES[k], nodes) for k in SMOOTH_AUS]).astype(np.float32)
