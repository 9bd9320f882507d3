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
    # Reach above the landmark (in d; 0: sigma). The frown's handles carry the lower forehead
    # with the brows, fading over a larger height, so its stretch spreads instead of pulling
    # the skin above the glabella out from one point (a starburst smear).
    up: float = 0.0
    # Reach along u (in d; 0: sigma): the brows drawn together slide as a whole, so the skin
    # along them is not pulled out sideways from the inner ends.
    wide: float = 0.0


# Displacements at activation 1.0. Signs follow FACS: AU1 lifts the inner brow, AU4 pulls
# the brows down and together, AU12 pulls the corners up and out, AU15 pulls them down...
# AU4 is split: "4" draws the brows together and lowers them in the middle, "4v" lowers the
# inner ends. With AU1 also active (sadness, fear) the inner ends rise instead: the
# oblique "grief" brow, so 4v only gets what AU4 has beyond AU1 (see canvas.coefficients).
# A frown's reach (in d): above the inner brows (the lower forehead goes down with them) and
# along the brows (they slide together as a whole). See "4w".
# The lowering fades over half a d up the forehead (0.3 stretched the skin above the glabella
# up and away from it, one of the two halves of the radial streaks fanning up the forehead).
BROW_UP = 0.5
BROW_WIDE = 0.32
# The drawing together stays at the brows (the other half: reaching 0.2 d up, the forehead's
# columns slid in by different amounts with height and fanned out from the glabella; more
# reach, with the head turned and pitched, also folds the skin beside the nose root:
# test_no_fold_overs).
DRAW_UP = 0.1
# The narrow drawing together (field "4": sadness, fear) reaches only this far above the brows.
GLABELLA_UP = 0.06
# The sneer's reach above the upper lip (field "10s").
SNEER_UP = 0.14
AU_HANDLES: dict[str, tuple[Handle, ...]] = {
    # Brow lifts carry the forehead along (second handle) so the skin above is not crushed.
    # The forehead goes up as one sheet (one wide handle on the midline, not a pair whose
    # Gaussians would add up between the brows): the glabella then stretches no more than
    # the skin under the brows, instead of a streak of smeared skin above the nose.
    # AU1 lifts the inner brows 0.20 d (the forehead 0.10 d), 1.5x its first strength: at
    # 0.13 d sadness's oblique brows were too faint and smile_outdoor's sadness read neutral
    # (0.36 vs sad 0.16; sad 0.42 now). Glasses wearers keep 0.13 d (UNDER_RIMS).
    "1": (Handle(R.BROW_INNER_UPPER, -0.01, -0.20, 0.17), Handle(R.BROW_MID_UPPER, 0.0, -0.05, 0.15),
          Handle(R.FOREHEAD_MID, 0.0, -0.10, 0.45)),
    "2": (Handle(R.BROW_OUTER_UPPER, 0.01, -0.13, 0.18), Handle(R.BROW_MID_UPPER, 0.0, -0.05, 0.15),
          Handle(R.FOREHEAD_OUTER, 0.0, -0.05, 0.3)),
    # Brows drawn together are anger's strongest cue to a face reader (and to an expression
    # classifier): AU4 pulls them 1.4x as far as it did at first. The pull stays narrow (sigma
    # 0.11) so the inner eye corners stay put (wider folds a shut eye's lids under lowered
    # brows). Their inner lowering (4v) is rendered 1.25x in canvas.coefficients; the field
    # itself stays, as the photo's lowered brows are measured in its units (expression.py).
    # AU9 wrinkles the nose 1.5x as far as at first (disgust's cue); its brows come mostly
    # from the frown fields (canvas.NOSE_FROWN).
    # Its drawing together fades fast above the brows (GLABELLA_UP) and the handle above them
    # only lowers: reaching up, the narrow pull crushed the skin between them into a line that
    # AU1 (sadness, fear) then lifted up the forehead as a streak. The glabella compresses
    # at the brows, the forehead above rises with AU1 as one sheet.
    "4": (Handle(R.BROW_INNER, -0.14, 0.0, 0.11, GLABELLA_UP), Handle(R.BROW_INNER_UPPER, 0.0, 0.04, 0.12),
          Handle(R.BROW_MID, -0.01, 0.10, 0.15)),
    "4v": (Handle(R.BROW_INNER, 0.0, 0.16, 0.15),),
    # A frown's inner lowering (canvas.coefficients): 4v reaching further up the forehead,
    # so the skin above the glabella goes down with the brows instead of being pulled out.
    # 4v itself stays for the photo's own lowered brows (expression.py measures in its units).
    "4u": (Handle(R.BROW_INNER, 0.0, 0.16, 0.15, BROW_UP),),
    # A frown's brows drawn together (canvas.coefficients: the AU4 beyond AU1, anger's, moves
    # here from "4"): its handles reach further along the
    # brows. Its upper handle only lowers (drawing in, it sheared the forehead above the
    # glabella into streaks): the forehead follows the brows down as one sheet.
    # Field "4"'s narrow pull, this strong, crushed the glabella into a line and pulled the
    # skin beside it out into a starburst; here the brows slide together as a whole and the
    # lower forehead comes along (4u), so the glabella compresses over its width. Sadness and fear
    # (AU1 with AU4) and the photo's own lowered brows (expression.py) keep field "4".
    "4w": (Handle(R.BROW_INNER, -0.14, 0.0, 0.11, DRAW_UP, BROW_WIDE),
           Handle(R.BROW_INNER_UPPER, 0.0, 0.04, 0.12, DRAW_UP, BROW_WIDE),
           Handle(R.BROW_MID, -0.01, 0.10, 0.15)),
    # A frown's extra inner lowering (canvas.coefficients: AU4 beyond AU1, anger): the 4v
    # field again, as its own basis so that a canvas with glasses can leave it out (their top
    # rims take the brow fields' mean and would bend under it).
    "4f": (Handle(R.BROW_INNER, 0.0, 0.16, 0.15, BROW_UP),),
    # AU6 raises the cheek and with it the lower lid (the bunched lower lid of a real smile).
    "6": (Handle(R.CHEEK_HIGH, 0.0, -0.05, 0.16), Handle(R.CHEEK_UNDER_EYE, 0.0, -0.035, 0.15),
          Handle(R.UNDER_EYE, 0.0, -0.025, 0.07)),
    # AU7 tightens the lids: the lower lid rises over the eye's bottom (anger's glare; the
    # upper lid's part is the lid travel in eyes.py). Narrow, so the cheek stays.
    "7": (Handle(R.LOWER_LID, 0.0, -0.03, 0.06), Handle(R.UNDER_EYE, 0.0, -0.02, 0.07)),
    "9": (Handle(R.NOSE_WING, 0.0, -0.105, 0.10), Handle(R.NASOLABIAL, 0.0, -0.0675, 0.12),
          Handle(R.BROW_INNER, -0.0225, 0.045, 0.12)),
    # Disgust's sneer (canvas.SNEER, driven by AU9): the upper lip and nose wing raised on one
    # side only (the portrait's right, image-left): a unilateral AU10, the sneer of disgust; the
    # symmetric lift is the tear field's (mouth.py). Reaching up (the nasolabial
    # furrow deepens with it) more than down, so the lower lip follows it less.
    "10s": (Handle(R.LIP_UPPER_OUTER[3], 0.0, -0.06, 0.08, SNEER_UP), Handle(R.NOSE_WING[0], 0.0, -0.04, 0.09)),
    "12": (Handle(R.MOUTH_CORNERS, 0.06, -0.085, 0.14), Handle(R.NASOLABIAL, 0.02, -0.04, 0.15),
         Handle(R.CHEEK_LOW, 0.0, -0.03, 0.16)),
    "15": (Handle(R.MOUTH_CORNERS, 0.01, 0.13, 0.12), Handle(R.LOWER_LIP_SIDE, 0.0, 0.045, 0.12)),
    # The chin boss pushes up and the lower lip with it (the pout of sadness and doubt).
    "17": (Handle(R.CHIN, 0.0, -0.05, 0.22), Handle(R.LOWER_LIP_MID, 0.0, -0.035, 0.10)),
    # Lip pucker (speech's rounded visemes): corners drawn well in, both lips pushed out,
    # which in the picture makes them fuller at mid-mouth.
    "18": (Handle(R.MOUTH_CORNERS, -0.09, 0.0, 0.10), Handle(R.UPPER_LIP_MID, 0.0, -0.012, 0.06),
           Handle(R.LOWER_LIP_MID, 0.0, 0.012, 0.06)),
    "20": (Handle(R.MOUTH_CORNERS, 0.085, 0.01, 0.13),),
    "23": (Handle(R.MOUTH_CORNERS, -0.035, 0.0, 0.10),),
    # Lips pressed together: each lip's outer edge moves towards the seam (thin lips), the
    # corners in a little; the seam itself stays where it is.
    "24": (Handle(R.UPPER_LIP_MID, 0.0, 0.03, 0.08), Handle(R.LOWER_LIP_MID, 0.0, -0.03, 0.08),
           Handle(R.MOUTH_CORNERS, -0.015, 0.0, 0.08)),
}
# Under glasses' rims the inner brow lift stays at its first strength (0.13 d): the rims take
# the brow fields' mean and rise as one piece, so the stronger lift bent them past the rigidity
# bound (tests/test_mesh_engine.py) and Grace Hopper's sadness read neutral 0.82 (0.30 with
# this one) and her surprise 0.55 (0.87). The photo's own raised inner brows are measured in
# AU_HANDLES' units (expression.py), so under rims they would be undone only 0.65x as far
# (none of the test portraits has them).
UNDER_RIMS: dict[str, tuple[Handle, ...]] = {
    "1": (Handle(R.BROW_INNER_UPPER, -0.01, -0.13, 0.17), Handle(R.BROW_MID_UPPER, 0.0, -0.05, 0.15),
          Handle(R.FOREHEAD_MID, 0.0, -0.07, 0.45)),
}
SMOOTH_AUS: tuple[str, ...] = tuple(AU_HANDLES)
# Brow lifts must not drag the eye open (that is AU5's job, in eyes.py) nor stretch the
# lashes: their fields fade over each eye and its lid, so the skin between the lid's crease
# and the brow takes the stretch, as it does on a real face.
PROTECT_EYES = ("1", "2")


def eye_guard(points: np.ndarray, frame: FaceFrame, nodes: np.ndarray) -> np.ndarray:
    """(M,) weights: 0.05 over each eye, its lid up to the crease and below, rising to 1 at the brow."""
    guard = np.ones(len(nodes))
    for side, upper in enumerate((R.EYE_R_UPPER, R.EYE_L_UPPER)):
        p = points[:, :2].astype(np.float64)
        c = p[list(R.EYE_CORNERS[side])].mean(axis=0)
        t_up = float(((p[list(upper)] - c) @ frame.v).min())
        t_brow = float((p[[R.BROW_INNER[side], R.BROW_MID[side], R.BROW_OUTER[side]]] - c).mean(axis=0) @ frame.v)
        crease = t_up - 0.35 * (t_up - t_brow)  # the lid's top: the stretch starts above it
        rel = nodes - c
        x, t = rel @ frame.u / (0.32 * frame.d), rel @ frame.v
        lat = np.exp(-x * x / 2)
        rise = np.clip((crease - t) / max(crease - t_brow, 1.0), 0.0, 1.0)
        # Below the crease the guard stays down (also under the eye): letting the field
        # back in there would squeeze the cheek.
        keep = rise * rise * (3 - 2 * rise)
        guard *= 1 - 0.95 * lat * (1 - keep)
    return guard


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
            rel = nodes - centre
            if h.up > 0 or h.wide > 0:
                # Gaussian in u and below; above, the v part fades over the longer reach
                # (smooth at t = 0: both halves are flat there).
                x, t = rel @ frame.u, rel @ frame.v
                su = (h.wide or h.sigma) * frame.d
                sv = np.where(t < 0, (h.up or h.sigma) * frame.d, sig)
                w = np.exp(-x * x / (2 * su * su) - t * t / (2 * sv * sv))
            else:
                w = np.exp(-(rel ** 2).sum(axis=1) / (2 * sig * sig))
            out += w[:, None] * frame.vec(du, h.dv)[None, :]
    return out


def au_bases(points: np.ndarray, frame: FaceFrame, nodes: np.ndarray,
             handles: dict[str, tuple[Handle, ...]] | None = None) -> np.ndarray:
    """(len(SMOOTH_AUS), M, 2) float32 fields, one per smooth action unit (``handles``
    replaces some AUs' handles, e.g. UNDER_RIMS on glasses wearers)."""
    guard = eye_guard(points, frame, nodes)[:, None]
    table = {**AU_HANDLES, **(handles or {})}
    return np.stack([handle_field(points, frame, table[k], nodes) * (guard if k in PROTECT_EYES else 1.0)
                     for k in SMOOTH_AUS]).astype(np.float32)
