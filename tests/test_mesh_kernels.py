"""The mesh engine's compiled kernels against plain numpy/OpenCV statements of the same maths."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.mesh import kernels as K
from engine.mesh.warp import INVERT_ITERATIONS, INVERT_TOLERANCE, STEP, invert, make_grid


def test_interp_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    xp = np.sort(rng.uniform(-1, 1, 11))
    fp = rng.uniform(-20, 20, 11)
    for x in np.concatenate([rng.uniform(-1.5, 1.5, 500), xp, [-9.0, 9.0]]):
        assert K.interp(float(x), xp, fp) == pytest.approx(np.interp(x, xp, fp), abs=1e-9)


def test_weighted_sum_matches_numpy() -> None:
    rng = np.random.default_rng(2)
    bases = rng.standard_normal((6, 8, 9, 2)).astype(np.float32)
    coeffs = np.array([0.5, 0.0, -1.25, 1e-9, 2.0, 0.3], np.float32)
    out = np.empty((8, 9, 2), np.float32)
    K.weighted_sum(coeffs, bases.reshape(6, -1), out.reshape(-1))
    keep = np.where(np.abs(coeffs) > 1e-7, coeffs, 0)
    np.testing.assert_allclose(out, np.einsum("k,kijc->ijc", keep, bases), atol=1e-5)


def _bump_field(gy: int, gx: int, amplitude: float) -> np.ndarray:
    """A smooth forward field (px) on the grid: two Gaussian pushes, gradients well below 1."""
    j, i = np.mgrid[0:gy, 0:gx].astype(np.float64)
    f = np.zeros((gy, gx, 2))
    for (cj, ci, ax, ay, sigma) in ((20, 24, 1.0, -0.6, 6.0), (40, 38, -0.7, 0.9, 5.0)):
        w = np.exp(-((j - cj) ** 2 + (i - ci) ** 2) / (2 * sigma ** 2))
        f[..., 0] += amplitude * ax * w
        f[..., 1] += amplitude * ay * w
    return f.astype(np.float32)


def _residual(forward: np.ndarray, back: np.ndarray) -> np.ndarray:
    """|B + F(p + B)| per node, with F sampled bilinearly by OpenCV (node index coordinates)."""
    gy, gx = forward.shape[:2]
    ix, iy = np.meshgrid(np.arange(gx, dtype=np.float32), np.arange(gy, dtype=np.float32))
    where = np.dstack([ix, iy]) + back / STEP
    f_at = cv2.remap(forward, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.abs(back + f_at).max(axis=2)


@pytest.mark.parametrize("amplitude", [3.0, 12.0, 25.0])
def test_invert_solves_the_forward_map(amplitude: float) -> None:
    grid = make_grid(64 * STEP, 64 * STEP)
    f = _bump_field(64, 64, amplitude)
    back = invert(grid, f)
    # -F alone is off by about |F| |dF|, far more than the tolerance for strong fields.
    naive = _residual(f, -f).max()
    resid = _residual(f, back)
    # OpenCV samples with 1/32-cell weights: 0.25 px of slack on top of the tolerance.
    assert resid.max() < INVERT_TOLERANCE + 0.25, (amplitude, resid.max(), naive)
    if amplitude >= 12:
        assert naive > 1.0  # the test field needs the solve
    # The forward map moves p to p + F(p); the backward map brings it home.
    gy, gx = f.shape[:2]
    assert np.isfinite(back).all() and back.shape == (gy, gx, 2)


def test_invert_block_leaves_minus_f_outside() -> None:
    grid = make_grid(64 * STEP, 64 * STEP)
    f = _bump_field(64, 64, 20.0)
    back = invert(grid, f, (30, 30, 50, 50))
    outside = np.ones((64, 64), bool)
    outside[30:50, 30:50] = False
    np.testing.assert_array_equal(back[outside], -f[outside])
    assert _residual(f, back)[30:50, 30:50].max() < INVERT_TOLERANCE + 0.25
    assert INVERT_ITERATIONS >= 3


def test_moving_nodes_and_extent() -> None:
    back = np.zeros((10, 12, 2), np.float32)
    assert K.moving_nodes(back, 0.01)[2] == 0  # nothing moves
    back[3, 4] = (0.5, -2.0)
    back[7, 9] = (-1.0, 0.02)
    assert K.moving_nodes(back, 0.01) == (4, 3, 10, 8)
    assert K.extent(back, 0, 0, 12, 10) == (-1.0, -2.0, 0.5, pytest.approx(0.02))


def test_paint_touches_only_the_opening() -> None:
    rng = np.random.default_rng(3)
    out = rng.integers(100, 200, (20, 30, 3), dtype=np.uint8)
    before = out.copy()
    alpha = np.zeros((20, 30), np.float32)
    alpha[8:12, 10:20] = 1.0
    depth = np.full((20, 30), 6.0, np.float32)  # mid-gap, below any teeth
    s = np.zeros((20, 30), np.float32)
    knots = np.array([-1.0, 0.0, 1.0])
    flat = np.zeros(3)
    K.paint(out, alpha, depth, s, 12.0, 60.0, 20.0, 0.9, 1.0, 1.0, 0.0, knots, flat, knots, flat + 5.0)
    np.testing.assert_array_equal(out[alpha == 0], before[alpha == 0])
    cavity = out[alpha == 1].astype(int)
    # A dark, reddish interior, not the skin that was there.
    assert cavity.max() < 90 and (cavity[:, 0] > cavity[:, 2]).all()


def _open_gap() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 12 px opening (rows 4-15) on a grey 20x30 patch: (out, alpha, depth, s, knots, flat)."""
    out = np.full((20, 30, 3), 150, np.uint8)
    alpha = np.zeros((20, 30), np.float32)
    alpha[4:16, 5:25] = 1.0
    depth = np.broadcast_to((np.arange(20, dtype=np.float32) - 4.0)[:, None], (20, 30)).copy()
    s = np.broadcast_to(np.linspace(-0.3, 0.3, 30, dtype=np.float32)[None, :], (20, 30)).copy()
    return out, alpha, depth, s, np.array([-1.0, 0.0, 1.0]), np.zeros(3)


@pytest.mark.parametrize("teeth", [1.0, 0.0])
def test_paint_teeth_scale(teeth: float) -> None:
    """Teeth hang under the upper lip at scale 1; at 0 (surprise's oval) the top of the gap is cavity."""
    out, alpha, depth, s, knots, flat = _open_gap()
    # No interior of the photo's own (its inner lips meet), a 12 px gap, d = 60 px.
    K.paint(out, alpha, depth, s, 12.0, 60.0, 20.0, 0.9, 1.0, teeth, 0.0, knots, flat, knots, flat)
    top = out[4:6, 12:18].astype(int)  # just under the upper lip, mid-mouth
    if teeth > 0:
        assert top.min() > 150, "no teeth under the upper lip"
    else:
        assert top.max() < 90, "teeth painted at scale 0"


@pytest.mark.parametrize("lower", [1.0, 0.0])
def test_paint_lower_teeth(lower: float) -> None:
    """Lower teeth rest on the lower lip at 1 (fear's stretched lips); at 0 its edge is cavity."""
    out, alpha, depth, s, knots, flat = _open_gap()
    # A 12 px gap: the lower lip is at depth 12 (row 16); no upper teeth.
    K.paint(out, alpha, depth, s, 12.0, 60.0, 20.0, 0.9, 1.0, 0.0, lower, knots, flat, knots, flat)
    bottom = out[14:16, 12:18].astype(int)  # just over the lower lip, mid-mouth
    if lower > 0:
        assert bottom.mean() > 140, "no lower teeth over the lower lip"
    else:
        assert bottom.max() < 140, "lower teeth painted at scale 0"
    assert out[8:10, 12:18].max() < 90, "the middle of the gap stays cavity"
