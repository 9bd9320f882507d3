"""Hair and hats do not bend with the brows (engine/mesh/hairline.py), on real portraits.

The astronaut's fringe and Grace Hopper's cap ship with scikit-image and matplotlib; the
`surprised` portrait's low fringe comes from `make portraits` (CI makes them; elsewhere it is
skipped when missing).
"""
from __future__ import annotations


import numpy as np
import pytest

from avatar_testkit.portraits import portrait_rgb, require_portrait
from engine.facs import activation
from engine.mesh import MeshEngine, hairline
from engine.mesh import regions as R
from engine.mesh.canvas import build_canvas, coefficients, edge_fade
from engine.mesh.rigid import rigid_weights
from engine.motion import Motion

NAMES = ("astronaut", "grace_hopper", "surprised")
EMOTIONS = ("angry", "surprised", "fearful", "sad")


@pytest.fixture(scope="module")
def engine() -> MeshEngine:
    return MeshEngine()


@pytest.fixture(scope="module", params=NAMES)
def source(request, engine):
    name = request.param
    require_portrait(name)
    return name, engine.prepare(portrait_rgb(name))


def _forward(canvas, motion: Motion, expression) -> np.ndarray:
    """(gy * gx, 2) forward displacement of every grid node, units of d."""
    k = coefficients(activation(motion), expression)
    f = np.tensordot(k.smooth, canvas.smooth, axes=1).reshape(-1, 2)
    return f / canvas.frame.d


def _hair_edge_nodes(canvas) -> np.ndarray:
    """Nodes on the hair (2 px inside it or more), within 0.15 d of its edge, where
    the brow fields reach (up to 1 d above the eye line) and the canvas's border fade does
    not (canvas.edge_fade: there every field fades to nothing, the hair's move too)."""
    import cv2

    mask = hairline.hair_mask(canvas.image, canvas.points, canvas.frame)
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    band = (inside > 2) & (inside < hairline.EDGE * canvas.frame.d)
    xy = np.round(canvas.grid.nodes).astype(int)
    height = -(canvas.grid.nodes - canvas.frame.origin) @ canvas.frame.v / canvas.frame.d
    keep = band[xy[:, 1], xy[:, 0]] & (edge_fade(canvas.grid) == 1.0) & (height < 1.0)
    # Where a glasses frame's rigid zone reaches the hair (Grace's cap sits low over her rims),
    # the rims' own translation wins (hairline.hold_hair's keep): those nodes are not hair's.
    found = rigid_weights(canvas.image, canvas.points, canvas.frame, canvas.grid.nodes)
    return keep if found is None else keep & (found[0] < 0.01)


def test_hair_is_found_above_the_brows_and_not_on_the_forehead(source):
    name, src = source
    c = src.crop
    mask = hairline.hair_mask(c.image, c.points, c.frame)
    # Between the brows up to the mid-forehead is skin on every one of these portraits.
    for i in (9, 151):
        x, y = np.round(c.points[i, :2]).astype(int)
        assert not mask[y - 2:y + 3, x - 2:x + 3].any(), f"{name}: landmark {i} taken for hair"
    # Straight up from the glabella the hair (or the cap) begins within a face height.
    up = c.points[151, :2] - c.points[9, :2]
    up /= np.linalg.norm(up)
    ray = [np.round(c.points[151, :2] + s * up).astype(int) for s in range(0, int(1.2 * c.frame.d))]
    hits = [mask[y, x] for x, y in ray if 0 <= x < mask.shape[1] and 0 <= y < mask.shape[0]]
    assert any(hits), f"{name}: no hair found above the forehead"


def test_nothing_below_the_brows_is_hair(source):
    name, src = source
    c = src.crop
    mask = hairline.hair_mask(c.image, c.points, c.frame)
    for i in (*R.EYE_R_UPPER, *R.EYE_L_UPPER, *R.BROW_INNER, *R.BROW_MID, *R.BROW_OUTER, *R.MOUTH_CORNERS):
        x, y = np.round(c.points[i, :2]).astype(int)
        assert not mask[y, x], f"{name}: landmark {i} (eyes, brows, mouth) taken for hair"


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_the_hair_edge_moves_as_one_piece(source, emotion):
    """Every node along the hair's edge moves the same way (no V, no bump), while the brows
    move the FACS way; without the hold the same edge bends (the check can fail)."""
    name, src = source
    c = src.crop
    edge = _hair_edge_nodes(c)
    assert edge.sum() >= 20, f"{name}: only {edge.sum()} nodes along the hair's edge"
    motion = Motion.emotion(emotion, 1.0)
    f = _forward(c, motion, src.expression)[edge]
    spread = float(np.hypot(*(f.max(axis=0) - f.min(axis=0))))
    assert spread < 0.01, f"{name} {emotion}: the hair's edge bends by {spread:.3f} d"

    old = hairline.FIELDS
    try:
        hairline.FIELDS = ()
        free = build_canvas(c.image, c.points, src.expression)
    finally:
        hairline.FIELDS = old
    g = _forward(free, motion, src.expression)[edge]
    bent = float(np.hypot(*(g.max(axis=0) - g.min(axis=0))))
    assert bent > 3 * spread and bent > 0.01, f"{name} {emotion}: free fields bend it only {bent:.3f} d"


def test_a_face_without_hair_is_left_as_it_is():
    fields = np.random.default_rng(0).normal(size=(3, 12 * 10, 2)).astype(np.float32)
    before = fields.copy()
    far = np.full(120, 1e6)
    hairline.hold_hair(fields, ("1", "2", "12"), far, np.zeros(120), (12, 10), 1.0)
    assert np.array_equal(fields, before)


def test_fields_off_the_hair_are_left_alone():
    """Only the brows' and forehead's fields are held: a smile's field is never touched."""
    fields = np.ones((2, 12 * 10, 2), np.float32)
    fields[0, :, 1] = np.linspace(-1.0, 1.0, 120)   # "1" varies along the hair: it is held
    before = fields.copy()
    distance = np.linspace(0.0, 50.0, 120)
    edge = (distance < 5).astype(np.float64)
    hairline.hold_hair(fields, ("1", "12"), distance, edge, (12, 10), 1.0)
    assert np.array_equal(fields[1], before[1])
    assert not np.allclose(fields[0], before[0])
