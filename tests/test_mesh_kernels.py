"""The mesh engine's compiled kernels against plain numpy/OpenCV statements of the same maths."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.mesh import kernels as K
from engine.mesh.warp import INVERT_ITERATIONS, INVERT_TOLERANCE, STEP, invert, make_grid, upsample


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


@pytest.mark.parametrize("size", [(512, 512), (200, 136)])
def test_upsample_is_opencvs_resize_bit_for_bit(size: tuple[int, int]) -> None:
    """kernels.upsample replaces cv2.resize in warp.upsample: the same float32 bits (not just
    close), for whole canvases, boxes at the edges and inside, and exact zeros (-0 vs +0)."""
    width, height = size
    g = make_grid(width, height)
    rng = np.random.default_rng(7)
    boxes = [(0, 0, width, height), (0, 0, width - 8, height), (3, 5, 61, 40),
             (width - 37, height - 29, width, height)]
    for _ in range(40):
        (x0, x1), (y0, y1) = sorted(rng.integers(0, width + 1, 2)), sorted(rng.integers(0, height + 1, 2))
        if x1 > x0 and y1 > y0:
            boxes.append((int(x0), int(y0), int(x1), int(y1)))
    for n, (x0, y0, x1, y1) in enumerate(boxes):
        back = (rng.standard_normal((g.gy, g.gx, 2)) * (0.1, 3.0, 40.0)[n % 3]).astype(np.float32)
        if n % 4 == 1:
            back = -g.node_pos.copy()  # absolute coordinates of exactly 0
        i0, j0 = max(0, x0 // STEP - 1), max(0, y0 // STEP - 1)
        i1, j1 = min(g.gx, -(-x1 // STEP) + 1), min(g.gy, -(-y1 // STEP) + 1)
        block = back[j0:j1, i0:i1] + g.node_pos[j0:j1, i0:i1]
        want = cv2.resize(block, ((i1 - i0) * STEP, (j1 - j0) * STEP), interpolation=cv2.INTER_LINEAR)
        want = want[y0 - j0 * STEP:y1 - j0 * STEP, x0 - i0 * STEP:x1 - i0 * STEP]
        # Into a larger array at an offset, as backward_maps writes the lower lip's rows.
        into = np.full((y1 - y0 + 5, x1 - x0 + 3, 2), 7.0, np.float32)
        K.upsample(back, g.node_pos, i0, j0, i1, j1, STEP, x0, y0, y1 - y0, x1 - x0, into, 2, 4)
        got = into[4:4 + y1 - y0, 2:x1 - x0 + 2]
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (x0, y0, x1, y1)
        untouched = np.ones(into.shape[:2], bool)
        untouched[4:4 + y1 - y0, 2:x1 - x0 + 2] = False
        assert (into[untouched] == 7.0).all()


def test_warp_upsample_into_matches_its_own_array() -> None:
    """warp.upsample's ``into``: the same values as the array it returns on its own, on a
    normal grid (the kernel) and on a grid one node wide (the resize fallback)."""
    rng = np.random.default_rng(8)
    for width, height in ((96, 64), (8, 64)):
        g = make_grid(width, height)
        back = (rng.standard_normal((g.gy, g.gx, 2)) * 3.0).astype(np.float32)
        alone = upsample(g, back, 2, 9, width, 50)
        into = np.zeros((60, width + 4, 2), np.float32)
        part = upsample(g, back, 2, 9, width, 50, into=into, at=(3, 5))
        assert np.array_equal(part, alone) and np.shares_memory(part, into)
        assert np.array_equal(into[5:46, 3:width + 1], alone)


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


# A plain teeth texture for kernels.paint (mouth.TeethTexture's arrays): the flat enamel colour.
_FLAT_TEETH = (np.full((4, 8, 3), K.TEETH, np.float32), np.ones(8), 1.0)


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
    K.paint(out, alpha, depth, s, 12.0, 60.0, 20.0, 0.9, 1.0, 1.0, 0.0, knots, flat, knots, flat + 5.0, *_FLAT_TEETH)
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
    K.paint(out, alpha, depth, s, 12.0, 60.0, 20.0, 0.9, 1.0, teeth, 0.0, knots, flat, knots, flat, *_FLAT_TEETH)
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
    K.paint(out, alpha, depth, s, 12.0, 60.0, 20.0, 0.9, 1.0, 0.0, lower, knots, flat, knots, flat, *_FLAT_TEETH)
    bottom = out[14:16, 12:18].astype(int)  # just over the lower lip, mid-mouth
    if lower > 0:
        assert bottom.mean() > 140, "no lower teeth over the lower lip"
    else:
        assert bottom.max() < 140, "lower teeth painted at scale 0"
    assert out[8:10, 12:18].max() < 90, "the middle of the gap stays cavity"


def test_blend_seam_matches_remap() -> None:
    """The closed lips' seam mix: the source sampled bilinearly at ``other``,
    weighted by ``blend``; pixels with no weight untouched."""
    rng = np.random.default_rng(5)
    source = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    out = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    before = out.copy()
    other = np.dstack([rng.uniform(1, 48, (12, 16)), rng.uniform(1, 38, (12, 16))]).astype(np.float32)
    blend = (rng.uniform(0, 0.5, (12, 16)) * (rng.uniform(size=(12, 16)) > 0.4)).astype(np.float32)
    K.blend_seam(out, source, blend, other)
    sx, sy = other[..., 0].astype(float), other[..., 1].astype(float)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    src = source[..., :3].astype(float)
    sampled = ((src[y0, x0] * (1 - fx) + src[y0, x0 + 1] * fx) * (1 - fy)
               + (src[y0 + 1, x0] * (1 - fx) + src[y0 + 1, x0 + 1] * fx) * fy)
    want = before * (1 - blend[..., None]) + sampled * blend[..., None]
    np.testing.assert_allclose(out.astype(float), want, atol=0.51)  # rounded to uint8
    np.testing.assert_array_equal(out[blend == 0], before[blend == 0])


def _closed_lips(gap: float) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Two sides' maps over a 30x60 band around a level mouth (centre (30, 15), inner lips at
    t = -5 (upper) and +5 (lower)): the upper lip's edge lands at t_out 0.3 + 0.05 x, the lower
    one's ``gap`` px below it (negative: they overlap)."""
    y, x = np.mgrid[0:30, 0:60].astype(np.float32)
    t_out = y - 15.0 - 0.05 * (x - 30.0)
    q_up = np.dstack([x, 15.0 + t_out - 5.3 + 0.05 * (x - 30.0)]).astype(np.float32)
    q_low = np.dstack([x, 15.0 + t_out + 5.0 - 0.3 - gap + 0.05 * (x - 30.0)]).astype(np.float32)
    knots = np.array([-1.0, 0.0, 1.0])
    geom = (30.0, 15.0, 1.0, 0.0, 0.0, 1.0, 40.0, 1.0, knots, np.full(3, 5.0), knots, np.full(3, -5.0))
    return q_up, q_low, geom


def _sides(q_up, q_low, geom, line_w):
    q = q_up.copy()
    shape = q.shape[:2]
    out = [np.zeros(shape, np.float32) for _ in range(3)]
    out += [np.zeros(shape, np.bool_), np.zeros(shape, np.float32), np.zeros(shape + (2,), np.float32)]
    K.choose_sides(q, q_low, *geom, geom[-2], geom[-1], line_w, 2.0, *out)  # no dark corners
    return q, out


def test_choose_sides_blends_where_closed_lips_meet() -> None:
    q_up, q_low, geom = _closed_lips(-2.0)
    q_off, (alpha_off, *_rest, blend_off, _o) = _sides(q_up, q_low, geom, 0.0)
    q_on, (alpha, _d, _s, _seam, blend, other) = _sides(q_up, q_low, geom, 1.25)
    assert not blend_off.any() and not alpha_off.any() and not alpha.any()  # lips overlap: no opening
    np.testing.assert_array_equal(q_on, q_off)  # the map itself is unchanged
    # Every column mixes the two lips over a pixel or two at the lower lip's edge, no further.
    t_low = q_low[..., 1] - 15.0 - 5.0  # the lower side's source relative to its edge
    assert (blend.max(axis=0)[5:-5] > 0.1).all() and blend.max() <= 0.5
    assert (np.abs(t_low[blend > 0]) < 2 * 1.25 + 1e-6).all()
    # The mixed-in colour comes from inside the other lip.
    up_won = (t_low < 0) & (blend > 0)
    assert (other[..., 1][up_won] - 15.0 >= 5.0).all()
    assert (other[..., 1][(t_low >= 0) & (blend > 0)] - 15.0 <= -5.0).all()


def test_choose_sides_fills_thin_slivers_from_the_lips() -> None:
    q_up, q_low, geom = _closed_lips(1.0)  # the lips part by 1 px
    _q, (alpha_off, *_r) = _sides(q_up, q_low, geom, 0.0)
    q, (alpha, _d, _s, seam, _b, _o) = _sides(q_up, q_low, geom, 1.25)
    assert seam.any() and alpha_off[seam].max() > 0.5
    assert (alpha <= alpha_off).all() and alpha[seam].max() <= 0.5 * alpha_off[seam].max() + 1e-6
    t = q[..., 1][seam] - 15.0  # the sliver's pixels now sample a lip, not the interior between them
    assert ((t <= -5.0 + 1e-4) | (t >= 5.0 - 1e-4)).all()


def test_choose_sides_draws_the_lip_over_a_raised_corner_edge() -> None:
    """mouth.corner_edge: with the upper lip's edge raised 3 px (a photo's black mouth corner
    under it), the upper lip's last 6 px are drawn from the 6 px above the raised edge, squeezed
    to half, so nothing between the two edges is sampled; where the lower lip wins, and above
    that stretch, the maps are unchanged."""
    q_up, q_low, geom = _closed_lips(-2.0)
    q_off, _ = _sides(q_up, q_low, geom, 1.25)
    q = q_up.copy()
    shape = q.shape[:2]
    out = [np.zeros(shape, np.float32) for _ in range(3)]
    out += [np.zeros(shape, np.bool_), np.zeros(shape, np.float32), np.zeros(shape + (2,), np.float32)]
    knots = geom[-2]
    K.choose_sides(q, q_low, *geom, knots, np.full(3, -8.0), 1.25, 2.0, *out)
    t_up = q_up[..., 1] - 15.0  # the upper side's source, relative to the mouth line
    t_low = q_low[..., 1] - 15.0
    moved = (t_low < 5.0) & (t_up >= -11.0) & (t_up <= -5.0)
    assert moved.sum() > 100
    np.testing.assert_allclose(q[..., 1][moved] - 15.0, 0.5 * t_up[moved] - 5.5, atol=1e-4)
    assert (q[..., 1][moved] - 15.0 <= -8.0 + 1e-4).all()  # never between the two edges
    np.testing.assert_array_equal(q[~moved], q_off[~moved])
