"""Compiled per-pixel and per-node loops of the mesh engine (numba).

A frame's small-area work (the Newton inversion on the coarse grid, the eyelids and gaze
around each eye, the lips' side choice and the painted mouth interior) is a few dozen
arithmetic steps per pixel over a few thousand pixels. As numpy passes that is hundreds
of calls per frame whose fixed cost (1-5 us each) outweighs the arithmetic; one compiled
loop per job does it in a single pass. The big dense steps stay in OpenCV (resize, remap).

Every kernel has one explicit signature: it is compiled when this module is first imported
on a machine (about 5 s) and cached next to this file (``cache=True``; numba falls back to a
per-user cache directory where that is not writable), so later imports load it in
milliseconds and no frame ever waits for the compiler.
"""
from __future__ import annotations

import math

import numpy as np
from numba import boolean, float32, float64, int64, njit, types, uint8, void

F4_1, F4_2, F4_3, F4_4 = float32[:], float32[:, :], float32[:, :, :], float32[:, :, :, :]
F8_1 = float64[:]

# Thickness of the upper lid's lash line, as a fraction of the eye's opening (eyes.py).
LASH = 0.25
# Mouth interior colours, RGB, for a photo of average exposure (mouth.py scales them).
CAVITY = (62.0, 24.0, 22.0)
TONGUE = (128.0, 58.0, 56.0)
TEETH = (236.0, 226.0, 208.0)
TEETH_MAX = 0.085  # the painted upper teeth's largest height, d

# Explicit signatures: compiled (or loaded from the cache) once at import, and any array
# layout (the engine passes strided views as well as whole arrays) reuses the same code.
_JIT = dict(cache=True, nogil=True, error_model="numpy")
# Newton takes no step at a node whose residual is already within this fraction of the
# inversion tolerance.
SETTLED = 0.3


@njit(float64(float64, F8_1, F8_1), **_JIT)
def interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """np.interp for one point over a handful of sorted knots (ends held)."""
    n = xp.shape[0]
    if x <= xp[0]:
        return fp[0]
    if x >= xp[n - 1]:
        return fp[n - 1]
    k = 1
    while xp[k] < x:
        k += 1
    span = xp[k] - xp[k - 1]
    if span <= 0.0:
        return fp[k]
    return fp[k - 1] + (fp[k] - fp[k - 1]) * ((x - xp[k - 1]) / span)


@njit(float64(float64, float64, float64), **_JIT)
def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else (hi if x > hi else x)


# ---------------------------------------------------------------- the coarse grid

@njit(void(F4_1, float32[:, ::1], float32[::1]), **_JIT)
def weighted_sum(coeffs: np.ndarray, bases: np.ndarray, out: np.ndarray) -> None:
    """out = sum_i coeffs[i] * bases[i] over the non-zero coefficients; bases (n, m) flat."""
    out[:] = 0.0
    for k in range(bases.shape[0]):
        a = coeffs[k]
        if abs(a) <= 1e-7:
            continue
        row = bases[k]
        for i in range(out.shape[0]):
            out[i] += a * row[i]


@njit(void(float32[:, :, ::1], float32[:, :, ::1], float32, float32[:, :, ::1]), **_JIT)
def add_scaled(out: np.ndarray, base: np.ndarray, a: float, field: np.ndarray) -> None:
    """out = base + a * field on the grid (out may be base), in float32 as numpy's
    ``base + a * field`` rounds it, without allocating the product and the sum. All three
    are whole grids (C order): one flat loop the compiler vectorizes."""
    o, x, f = out.reshape(-1), base.reshape(-1), field.reshape(-1)
    for k in range(o.shape[0]):
        o[k] = x[k] + a * f[k]


@njit(float32[:, :, ::1](F4_3, float64), **_JIT)
def _newton_table(f: np.ndarray, step: float) -> np.ndarray:
    """(gy, gx, 6) per node: F, then the entries a, b, c, d of I + dF by central
    differences (one-sided at the grid's edges), so a bilinear sample reads one table."""
    gy, gx = f.shape[0], f.shape[1]
    tab = np.empty((gy, gx, 6), np.float32)
    for j in range(gy):
        jm, jp = max(j - 1, 0), min(j + 1, gy - 1)
        ky = 1.0 / (step * (jp - jm)) if jp > jm else 0.0
        for i in range(gx):
            im, ip = max(i - 1, 0), min(i + 1, gx - 1)
            kx = 1.0 / (step * (ip - im)) if ip > im else 0.0
            tab[j, i, 0] = f[j, i, 0]
            tab[j, i, 1] = f[j, i, 1]
            tab[j, i, 2] = 1.0 + (f[j, ip, 0] - f[j, im, 0]) * kx
            tab[j, i, 3] = (f[jp, i, 0] - f[jm, i, 0]) * ky
            tab[j, i, 4] = (f[j, ip, 1] - f[j, im, 1]) * kx
            tab[j, i, 5] = 1.0 + (f[jp, i, 1] - f[jm, i, 1]) * ky
    return tab


@njit(void(F4_3, int64, int64, int64, int64, float64, int64, float64, F4_3), **_JIT)
def invert(forward: np.ndarray, i0: int, j0: int, i1: int, j1: int, step: float,
           iterations: int, tolerance: float, back: np.ndarray) -> None:
    """Backward displacement B with B(p) + F(p + B(p)) = 0 on the grid nodes, into ``back``.

    Newton's method per node, with F and I + dF sampled bilinearly between nodes (the grid's
    edge values held beyond it). It converges wherever the forward map folds nothing
    (det(I + dF) > 0), even where F is steep, which a plain fixed-point iteration does not.
    Steps are capped at one cell: where F bends sharply between nodes a full step can
    overshoot. Nodes outside [i0, i1) x [j0, j1) get -F (used where only a block matters).
    """
    gy, gx = forward.shape[0], forward.shape[1]
    for j in range(gy):
        for i in range(gx):
            back[j, i, 0] = -forward[j, i, 0]
            back[j, i, 1] = -forward[j, i, 1]
    if i1 <= i0 or j1 <= j0:
        return
    tab = _newton_table(forward, step)
    inv_step = 1.0 / step
    xmax, ymax = gx - 1.0, gy - 1.0
    xa_max, ya_max = max(gx - 2, 0), max(gy - 2, 0)
    for j in range(j0, j1):
        for i in range(i0, i1):
            bx, by = back[j, i, 0], back[j, i, 1]
            last = np.inf
            for _ in range(iterations):
                x = _clamp(i + bx * inv_step, 0.0, xmax)
                y = _clamp(j + by * inv_step, 0.0, ymax)
                xa, ya = min(int(x), xa_max), min(int(y), ya_max)
                xb, yb = min(xa + 1, gx - 1), min(ya + 1, gy - 1)
                fx, fy = x - xa, y - ya
                w00, w01 = (1.0 - fx) * (1.0 - fy), fx * (1.0 - fy)
                w10, w11 = (1.0 - fx) * fy, fx * fy
                rx = bx + (w00 * tab[ya, xa, 0] + w01 * tab[ya, xb, 0] + w10 * tab[yb, xa, 0]
                           + w11 * tab[yb, xb, 0])
                ry = by + (w00 * tab[ya, xa, 1] + w01 * tab[ya, xb, 1] + w10 * tab[yb, xa, 1]
                           + w11 * tab[yb, xb, 1])
                err = max(abs(rx), abs(ry))
                # Already far within the tolerance (-F itself is, where the head sways almost
                # rigidly): no step needed, and no Jacobian to sample.
                if err < SETTLED * tolerance:
                    break
                a = w00 * tab[ya, xa, 2] + w01 * tab[ya, xb, 2] + w10 * tab[yb, xa, 2] + w11 * tab[yb, xb, 2]
                b = w00 * tab[ya, xa, 3] + w01 * tab[ya, xb, 3] + w10 * tab[yb, xa, 3] + w11 * tab[yb, xb, 3]
                c = w00 * tab[ya, xa, 4] + w01 * tab[ya, xb, 4] + w10 * tab[yb, xa, 4] + w11 * tab[yb, xb, 4]
                d = w00 * tab[ya, xa, 5] + w01 * tab[ya, xb, 5] + w10 * tab[yb, xa, 5] + w11 * tab[yb, xb, 5]
                inv_det = 1.0 / max(a * d - b * c, 0.1)
                bx -= _clamp((d * rx - b * ry) * inv_det, -step, step)
                by -= _clamp((a * ry - c * rx) * inv_det, -step, step)
                # Done when close enough (the step just taken makes it closer still), or when
                # Newton has settled at the grid's own accuracy (bilinear F and Jacobian
                # disagree slightly where F bends sharply).
                if err < tolerance or (err < 2.0 and err > 0.7 * last):
                    break
                last = err
            back[j, i, 0], back[j, i, 1] = bx, by


@njit(void(F4_3, float32[:, :, ::1], int64, int64, int64, int64, int64, int64, int64, int64, int64,
           float32[:, :, ::1], int64, int64), **_JIT)
def upsample(back: np.ndarray, pos: np.ndarray, i0: int, j0: int, i1: int, j1: int, step: int,
             x0: int, y0: int, h: int, w: int, out: np.ndarray, at_x: int, at_y: int) -> None:
    """``out``'s (h, w) block at (at_x, at_y) = the pixels [x0, x0+w) x [y0, y0+h) of
    cv2.resize(back + pos over the
    nodes [i0, i1) x [j0, j1), x step, INTER_LINEAR), bit for bit (warp.upsample; needs
    i1 - i0 >= 2). OpenCV's float path, reproduced: each source row resized horizontally
    (weights 1 - fx, fx in float; left of the first node's centre sx = 0 with weights 1, 0;
    right of the last node's centre its value), then rows mixed with 1 - fy, fy, rows
    clamped to the block but fy kept. Cheaper than the resize for a two-channel map: OpenCV
    tries its IPP path first, which throws (and catches) a C++ exception on every call."""
    sw, sh = i1 - i0, j1 - j0
    scale = 1.0 / step
    ox, oy = i0 * step, j0 * step
    half = step // 2
    # Between nodes i and i+1 lie the block's pixels step*i + half + p, p < step, at the
    # same fraction for every i: (p + 0.5) / step, as OpenCV's float fx - floor(fx) gives it.
    wa = np.empty(2 * step, np.float32)
    wb = np.empty(2 * step, np.float32)
    for p in range(step):
        fx = np.float32((step + half + p + 0.5) * scale - 0.5)
        fx = np.float32(fx - np.float32(1.0))
        wa[2 * p] = wa[2 * p + 1] = np.float32(1.0) - fx
        wb[2 * p] = wb[2 * p + 1] = fx
    full = 2 * step * sw
    c0 = 2 * (x0 - ox)
    rows = np.empty((2, full), np.float32)  # the two source rows in use, resized horizontally
    have = np.array([-1, -1])
    s = np.empty(2 * sw, np.float32)
    o = out.reshape(out.shape[0], 2 * out.shape[1])
    for y in range(h):
        fy = np.float32((y + y0 - oy + 0.5) * scale - 0.5)
        sy = int(math.floor(fy))
        fy = np.float32(fy - np.float32(sy))
        b0, b1 = np.float32(1.0) - fy, fy
        ra, rb = min(max(sy, 0), sh - 1), min(max(sy + 1, 0), sh - 1)
        for r in (ra, rb):
            if have[0] == r or have[1] == r:
                continue
            slot = 0 if have[0] != ra and have[0] != rb else 1
            have[slot] = r
            hr = rows[slot]
            j = j0 + r
            for i in range(sw):
                s[2 * i] = back[j, i0 + i, 0] + pos[j, i0 + i, 0]
                s[2 * i + 1] = back[j, i0 + i, 1] + pos[j, i0 + i, 1]
            for k in range(half):
                hr[2 * k] = s[0] * np.float32(1.0) + s[2] * np.float32(0.0)
                hr[2 * k + 1] = s[1] * np.float32(1.0) + s[3] * np.float32(0.0)
            for i in range(sw - 1):
                # One cell's pixels, a contiguous run (slicing first lets the loop vectorize).
                seg = hr[2 * (step * i + half):2 * (step * i + half + step)]
                a0, a1, e0, e1 = s[2 * i], s[2 * i + 1], s[2 * i + 2], s[2 * i + 3]
                for k in range(step):
                    seg[2 * k] = a0 * wa[2 * k] + e0 * wb[2 * k]
                    seg[2 * k + 1] = a1 * wa[2 * k + 1] + e1 * wb[2 * k + 1]
            last = hr[2 * (step * (sw - 1) + half):]
            for k in range(last.shape[0] // 2):
                last[2 * k] = s[2 * (sw - 1)]
                last[2 * k + 1] = s[2 * (sw - 1) + 1]
        ha = rows[0 if have[0] == ra else 1, c0:c0 + 2 * w]
        hb = rows[0 if have[0] == rb else 1, c0:c0 + 2 * w]
        orow = o[at_y + y, 2 * at_x:2 * (at_x + w)]
        for k in range(2 * w):
            orow[k] = ha[k] * b0 + hb[k] * b1


@njit(void(F4_3, int64, int64, int64, int64, int64, int64, int64), **_JIT)
def edge_positions(out: np.ndarray, x0: int, y0: int, x1: int, y1: int, width: int, height: int,
                   e: int) -> None:
    """Within ``e`` px of the canvas edge, add each pixel's offset from the edge node's centre
    to the upsampled map ``out`` (the box [x0,x1) x [y0,y1)), in float32 as numpy would
    (warp.upsample): resize held the edge node's value there. One pass instead of four
    strided numpy updates plus their ramps."""
    h, w = out.shape[0], out.shape[1]
    if x0 < e:
        for y in range(h):
            for x in range(x0, min(e, x1)):
                out[y, x - x0, 0] += np.float32(x - (e - 0.5))
    if x1 > width - e:
        for y in range(h):
            for x in range(max(width - e, x0), x1):
                out[y, w - (x1 - x), 0] += np.float32(x - (width - e - 0.5))
    if y0 < e:
        for y in range(y0, min(e, y1)):
            d = np.float32(y - (e - 0.5))
            for x in range(w):
                out[y - y0, x, 1] += d
    if y1 > height - e:
        for y in range(max(height - e, y0), y1):
            d = np.float32(y - (height - e - 0.5))
            for x in range(w):
                out[h - (y1 - y), x, 1] += d


@njit(types.UniTuple(int64, 4)(F4_3, float64), **_JIT)
def moving_nodes(back: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """(i0, j0, i1, j1): the nodes whose |B| exceeds ``threshold`` in x or y; empty as i1 = 0."""
    gy, gx = back.shape[0], back.shape[1]
    i0, j0, i1, j1 = gx, gy, 0, 0
    for j in range(gy):
        for i in range(gx):
            if abs(back[j, i, 0]) > threshold or abs(back[j, i, 1]) > threshold:
                i0, i1 = min(i0, i), max(i1, i + 1)
                j0, j1 = min(j0, j), max(j1, j + 1)
    return i0, j0, i1, j1


@njit(types.UniTuple(float64, 4)(F4_3, int64, int64, int64, int64), **_JIT)
def extent(back: np.ndarray, i0: int, j0: int, i1: int, j1: int) -> tuple[float, float, float, float]:
    """(min x, min y, max x, max y) of B over the nodes [i0, i1) x [j0, j1) (non-empty)."""
    lx, ly, hx, hy = np.inf, np.inf, -np.inf, -np.inf
    for j in range(j0, j1):
        for i in range(i0, i1):
            x, y = back[j, i, 0], back[j, i, 1]
            lx, hx = min(lx, x), max(hx, x)
            ly, hy = min(ly, y), max(hy, y)
    return lx, ly, hx, hy


@njit(types.UniTuple(float64, 2)(float64[:, :], F4_3, float64), **_JIT)
def landed_rows(points: np.ndarray, back: np.ndarray, step: float) -> tuple[float, float]:
    """Lowest and highest output y of source points under the backward map ``back``:
    p = q - B(p), by three fixed-point steps from p = q with B at the nearest node."""
    gy, gx = back.shape[0], back.shape[1]
    lo, hi = np.inf, -np.inf
    for k in range(points.shape[0]):
        qx, qy = points[k, 0], points[k, 1]
        px, py = qx, qy
        for _ in range(3):
            i = min(max(int(round((px + 0.5) / step - 0.5)), 0), gx - 1)
            j = min(max(int(round((py + 0.5) / step - 0.5)), 0), gy - 1)
            px, py = qx - back[j, i, 0], qy - back[j, i, 1]
        lo, hi = min(lo, py), max(hi, py)
    return lo, hi


# ---------------------------------------------------------------- eyes

@njit(float64(F4_3, int64, float64, float64, float64, float64, float64), **_JIT)
def _t_at(q: np.ndarray, x: int, row: float, cx: float, cy: float, vx: float, vy: float) -> float:
    """t (across the eye) of the source that output row ``row`` (sub-pixel) of column x maps to."""
    row = min(max(row, 0.0), q.shape[0] - 1.0)
    k = min(int(row), q.shape[0] - 2)
    w = row - k
    ax = (1.0 - w) * q[k, x, 0] + w * q[k + 1, x, 0] - cx
    ay = (1.0 - w) * q[k, x, 1] + w * q[k + 1, x, 1] - cy
    return ax * vx + ay * vy


@njit(float64(F4_3, int64, int64, float64, float64, float64, float64, float64, float64, F8_1, F8_1), **_JIT)
def _below_lid(q: np.ndarray, y: int, x: int, cx: float, cy: float, ux: float, uy: float, vx: float,
               vy: float, s_up: np.ndarray, t_up: np.ndarray) -> float:
    """How far below the upper lash line (t) the source of output pixel (y, x) lies."""
    rx, ry = q[y, x, 0] - cx, q[y, x, 1] - cy
    return rx * vx + ry * vy - interp(rx * ux + ry * uy, s_up, t_up)


@njit(void(F4_3, float64, float64, float64, float64, float64, float64, F8_1, F8_1, F8_1, F8_1, float64, float64, F4_2), **_JIT)
def lid_stretch(q: np.ndarray, cx: float, cy: float, ux: float, uy: float, vx: float, vy: float,
                s_up: np.ndarray, t_up: np.ndarray, s_low: np.ndarray, t_low: np.ndarray,
                travel: float, skin: float, out: np.ndarray) -> None:
    """Per column of ``q`` (h, w, 2, the backward map before the lids), into ``out`` (w, 2):
    the shares of a widening lid's travel (``travel`` < 0, as eye() takes it) and of its lash
    line to apply in source units so that the lid rises by travel * opening output pixels and
    its lash line keeps its height in the output.

    Under glasses the top rims rise with the brows as one piece while the lid stays, so the
    smooth map stretches the band between them (about 3x on grace_hopper): a source shift
    there shows magnified, and the lid's lashes filled the lens up to the rim (a dark peaked
    smear). The shares are read off the column: the source distance the output rise (then
    the lash line above it) covers, over that rise (lash line); 1 where nothing is stretched."""
    rows = q.shape[0]
    for x in range(q.shape[1]):
        out[x, 0] = 1.0
        out[x, 1] = 1.0
        # The lid's output row: where the column's source crosses the lash line (the map is
        # monotone down a column, so bisect: a few rows per column, not all of them).
        if _below_lid(q, 0, x, cx, cy, ux, uy, vx, vy, s_up, t_up) >= 0.0:
            continue
        lo, hi = 0, rows - 1
        if _below_lid(q, hi, x, cx, cy, ux, uy, vx, vy, s_up, t_up) < 0.0:
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _below_lid(q, mid, x, cx, cy, ux, uy, vx, vy, s_up, t_up) < 0.0:
                lo = mid
            else:
                hi = mid
        a = _below_lid(q, lo, x, cx, cy, ux, uy, vx, vy, s_up, t_up)
        b = _below_lid(q, hi, x, cx, cy, ux, uy, vx, vy, s_up, t_up)
        at = lo + (-a) / max(b - a, 1e-6)
        rx, ry = q[lo, x, 0] - cx, q[lo, x, 1] - cy
        s = rx * ux + ry * uy
        tu = interp(s, s_up, t_up)
        h = max(interp(s, s_low, t_low) - tu, 0.0)
        # The rows its lash line should rise to (the box ends first: what it holds is measured).
        rise = min(-travel * h, at)
        if rise <= 1e-3:
            continue
        tu2 = _t_at(q, x, at - rise, cx, cy, vx, vy)
        out[x, 0] = min(max((tu - tu2) / (-travel * h), 0.05), 1.0)
        lash = min(min(LASH * h, 0.35 * skin), at - rise)
        if lash > 1e-3:
            top = _t_at(q, x, at - rise - lash, cx, cy, vx, vy)
            out[x, 1] = min(max((tu2 - top) / min(LASH * h, 0.35 * skin), 0.05), 1.0)


@njit(void(F4_3, float64, float64, float64, float64, float64, float64, F8_1, F8_1, F8_1, F8_1, float64, float64, float64, float64, boolean, boolean, float64, float64, float64, float64, float64, float64, boolean, F4_2, float64, float64), **_JIT)
def eye(q: np.ndarray, cx: float, cy: float, ux: float, uy: float, vx: float, vy: float,
        s_up: np.ndarray, t_up: np.ndarray, s_low: np.ndarray, t_low: np.ndarray,
        skin: float, travel: float, skin_low: float, low: float, lid: bool,
        gaze: bool, g: float, gy_px: float, lo: float, hi: float, r: float, c: float,
        squeezed: bool, share: np.ndarray, slant: float, inner: float) -> None:
    """Rewrite the source coordinates ``q`` (h, w, 2) in place for one eye (see eyes.py).

    Across the eye (t) the lid maps piecewise linearly: top of the lid skin stays, the lash
    line comes down unstretched, the visible eye is squeezed under it. The lower lid moves by
    ``low`` of the opening (down > 0): the visible eye and the lid skin below it (``skin_low``
    deep, whose bottom stays) stretch or squeeze linearly, so that map is monotone too.
    Along it (s) gaze slides the iris by ``g`` inside the opening, fading towards the lids.
    ``squeezed``: the upper lid's travel and lash line are scaled per column by ``share``
    (w, 2; lid_stretch), so a widening lid rises as far in the output as requested.
    ``slant``: the oblique sad eye, a travel linear along the eye added to ``travel``: down by
    ``slant`` of the opening at the outer corner, up as much at the inner one (``inner``: the
    inner corner's s, signed), never past CLOSE_MAX or WIDEN_MAX. Each s keeps its monotone map.
    """
    mid, half = (lo + hi) / 2, max((hi - lo) / 2, 1.0)
    for y in range(q.shape[0]):
        for x in range(q.shape[1]):
            rx, ry = q[y, x, 0] - cx, q[y, x, 1] - cy
            s = rx * ux + ry * uy
            t = rx * vx + ry * vy
            tu = interp(s, s_up, t_up)
            tr = travel * share[x, 0] if squeezed else travel
            if slant != 0.0:
                # -1 at the outer corner, 1 at the inner one.
                tr = _clamp(tr - slant * _clamp(s / inner, -1.0, 1.0), min(tr, -0.35), max(tr, 0.97))
            tl = interp(s, s_low, t_low)
            # Above the lid skin, or below the lower lid (and its skin when it moves), no lid
            # or gaze term reaches the pixel: its source stays as it is (rewriting it would
            # give back the same float32 coordinates), so skip the arithmetic.
            if t <= tu - skin or t >= max(tl + (skin_low if low != 0.0 else 0.0), tu) + 1e-3:
                continue
            h = max(tl - tu, 0.0)
            t_new = t
            if lid:
                tu2 = tu + tr * h
                top = tu - skin
                lash = min(LASH * h, 0.35 * skin)
                if squeezed:
                    lash *= share[x, 1]
                rise = (t - top) / max(tu2 - lash - top, 1e-3)
                fall = (tl - t) / max(tl - tu2, 1e-3)
                trap = max(min(min(rise, fall), 1.0), 0.0)
                t_new = t - (tr * h) * trap
                if low != 0.0:
                    sh = low * h
                    tl2 = tl + sh
                    bot = tl + skin_low
                    rise = (t - tu) / max(tl2 - tu, 1e-3)
                    fall = (bot - t) / max(bot - tl2, 1e-3)
                    t_new -= sh * max(min(min(rise, fall), 1.0), 0.0)
            s_new = s
            if gaze:
                tau = (t_new - tu) / max(h, 1e-3)
                if 0.0 < tau < 1.0:
                    slide = max(min(min((s - lo) / (c + g - r - lo), (hi - s) / (hi - c - g - r)), 1.0), 0.0)
                    ramp = _clamp(min(tau, 1.0 - tau) / 0.5, 0.0, 1.0)
                    corner = _clamp(1.0 - ((s - mid) / half) ** 2, 0.0, 1.0)
                    ramp = ramp * ramp * (3.0 - 2.0 * ramp) * corner * corner
                    s_new = s - g * ramp * slide
                    across = _clamp(1.0 - ((s - c - g) / (2.5 * r)) ** 2, 0.0, 1.0)
                    t_new = t_new - gy_px * ramp * across * across
            q[y, x, 0] = cx + s_new * ux + t_new * vx
            q[y, x, 1] = cy + s_new * uy + t_new * vy


# ---------------------------------------------------------------- mouth

@njit(float64(float64, float64), **_JIT)
def lip_profile(s: float, s_corner: float) -> float:
    """1 mid-mouth, 0 at and beyond the inner lip corners, flat at the ends."""
    x = _clamp(1.0 - (s / s_corner) ** 2, 0.0, 1.0)
    return x * math.sqrt(x)


@njit(float64(float64, float64), **_JIT)
def _ends(s: float, s_corner: float) -> float:
    """Only the slit between the inner lip corners opens: beyond them the coarse grid may
    leave sub-pixel slivers between the two sides, which must not be painted."""
    return _clamp(20.0 * lip_profile(s, s_corner), 0.0, 1.0)


@njit(void(F4_3, F4_3, float64, float64, float64, float64, float64, float64, float64, float64, F8_1, F8_1, F8_1, F8_1,
           F8_1, F8_1, float64, float64, F4_2, F4_2, F4_2, boolean[:, :], F4_2, F4_3), **_JIT)
def choose_sides(q_up: np.ndarray, q_low: np.ndarray, cx: float, cy: float, ux: float, uy: float,
                 vx: float, vy: float, half: float, s_corner: float, s_li: np.ndarray, t_li: np.ndarray,
                 s_ub: np.ndarray, t_ub: np.ndarray, s_lift: np.ndarray, t_lift: np.ndarray,
                 line_w: float, fill_w: float, alpha: np.ndarray, depth: np.ndarray, s_out: np.ndarray,
                 seam: np.ndarray, blend: np.ndarray, other: np.ndarray) -> None:
    """Per pixel of the mouth band: whichever side maps back onto its own half of the source
    wins (written into ``q_up``); pixels neither claims are the opening, with its alpha,
    depth below the upper lip and mouth coordinate s. The lower side owns the source below
    the lower inner lip (t_li); the upper side owns the source above t_ub (the lower inner
    lip too, so the photo's own interior moves with the upper lip, or the upper inner lip
    when that interior is closed away and an opening is painted instead).

    ``line_w`` > 0 (the photo's open mouth closed away): where the closed lips meet, the map
    jumps from one lip edge to the other, and a per-pixel choice draws that line as a hard
    staircase. Pixels within ``line_w`` output px of the lower lip's edge get ``blend``, the
    weight of the other side's colour (its map, kept inside that side's own lip, in ``other``):
    the two lips' colours are mixed by how much of the pixel each covers, an antialiased seam.
    Where the lips part by less than ``fill_w`` px (the slivers two nearly closed sides leave)
    the gap takes the nearer lip's edge rather than the painted interior, which drew them as
    black strokes; the interior's alpha grows back as the gap widens to ``fill_w``. ``blend``
    is left as it is everywhere else (it comes zeroed).

    ``s_lift``, ``t_lift`` (``line_w`` > 0): the upper lip's edge raised over the photo's dark
    mouth corners (mouth.corner_edge; the same curve as s_ub, t_ub where there is none). Between
    the two edges (``lift`` px) the photo shows its own dark corner of the mouth, not lip: where
    the lower lip does not claim the pixel, the upper lip's last 2 * lift px are drawn from the
    2 * lift px above that band instead (squeezed to half, so the lip's texture runs on with no
    seam), and the slivers' fill reads the lip at the raised edge, so no black spike runs on
    from the painted opening's ends."""
    for y in range(q_up.shape[0]):
        for x in range(q_up.shape[1]):
            ux_up, uy_up = q_up[y, x, 0], q_up[y, x, 1]
            rx, ry = ux_up - cx, uy_up - cy
            s_u = (rx * ux + ry * uy) / half
            t_u = rx * vx + ry * vy
            rel_up = t_u - interp(s_u, s_ub, t_ub)  # <= 0: the upper side's own
            lx, ly = q_low[y, x, 0] - cx, q_low[y, x, 1] - cy
            s_l = (lx * ux + ly * uy) / half
            rel_low = lx * vx + ly * vy - interp(s_l, s_li, t_li)  # >= 0: the lower side's own
            if rel_low >= 0.0:
                q_up[y, x, 0], q_up[y, x, 1] = q_low[y, x, 0], q_low[y, x, 1]
            a = _clamp(min(-rel_low, rel_up) + 0.5, 0.0, 1.0)
            # How far below the raised edge (>= rel_up; equal where the corners are not dark).
            rel_lift = t_u - interp(s_u, s_lift, t_lift) if line_w > 0.0 else rel_up
            lift = rel_lift - rel_up
            if lift > 0.0 and rel_low < 0.0 and -2.0 * lift <= rel_up <= 0.0:
                # The photo's dark corner under the raised edge: the upper lip's last 2 * lift px
                # are drawn from the lip above it, squeezed to half (continuous at both ends).
                k = lift + 0.5 * rel_up
                q_up[y, x, 0] -= k * vx
                q_up[y, x, 1] -= k * vy
            if line_w > 0.0:
                # Only pixels near the lower lip's edge or in a gap: the rest of the band is as is.
                near = abs(rel_low) < 2.0 * line_w
                if (a > 0.0 or near) and rel_up - rel_low < fill_w:
                    # rel_up - rel_low: how far apart the two lip edges land (< 0: they overlap, and
                    # the lower lip's edge is the seam).
                    thin = min(1.0 - (rel_up - rel_low) / fill_w, 1.0)
                    if rel_low < 0.0 and rel_up > 0.0:
                        # A sliver: filled from the nearer lip, half a pixel inside its edge.
                        if rel_up <= -rel_low or rel_lift > rel_up:  # (the lower edge is dark there too)
                            q_up[y, x, 0] -= (rel_lift + 0.5) * vx
                            q_up[y, x, 1] -= (rel_lift + 0.5) * vy
                        else:
                            q_up[y, x, 0] = q_low[y, x, 0] + (0.5 - rel_low) * vx
                            q_up[y, x, 1] = q_low[y, x, 1] + (0.5 - rel_low) * vy
                    elif near:
                        # The lower lip's edge in output px: the lower side's map runs at ``rate``
                        # source px per output row across it (at most 2 counted).
                        ya, yb = max(y - 1, 0), min(y + 1, q_low.shape[0] - 1)
                        rate = ((q_low[yb, x, 0] - q_low[ya, x, 0]) * vx
                                + (q_low[yb, x, 1] - q_low[ya, x, 1]) * vy) / max(yb - ya, 1)
                        rho = rel_low / min(max(rate, 0.25), 2.0)
                        w = _clamp(0.5 - abs(rho) / (2.0 * line_w), 0.0, 0.5) * thin * _ends(s_u, s_corner)
                        if w > 0.0:
                            blend[y, x] = w
                            if rel_low >= 0.0:  # the lower lip won: mix in the upper lip
                                k = max(rel_up + 0.5, 0.0)
                                other[y, x, 0], other[y, x, 1] = ux_up - k * vx, uy_up - k * vy
                            else:  # the upper lip won: mix in the lower lip
                                k = max(0.5 - rel_low, 0.0)
                                other[y, x, 0], other[y, x, 1] = q_low[y, x, 0] + k * vx, q_low[y, x, 1] + k * vy
                    a = a * (1.0 - thin)
            # Most of the band is lip (a == 0): skip the profile there (0 * ends is 0).
            alpha[y, x] = a * _ends(s_u, s_corner) if a != 0.0 else 0.0
            depth[y, x] = max(rel_up, 0.0)
            s_out[y, x] = s_u
            seam[y, x] = rel_low < 0.0 and rel_up > 0.0


@njit(types.UniTuple(float64, 3)(F4_3, F8_1, float64, float64, float64, float64), **_JIT)
def _teeth_rgb(tex: np.ndarray, tex_h: np.ndarray, s_range: float, s: float, q: float,
               band: float) -> tuple[float, float, float]:
    """The teeth texture (mouth.TeethTexture) at mouth coordinate s, ``q`` of the way from the
    lip (0) to the teeth's edge (1) of a painted band ``band`` px tall: a band shorter than the
    texture's teeth shows their lower part at its own scale (the lip covers the rest), a taller
    one stretches them."""
    n, rows = tex.shape[1], tex.shape[0]
    cx = _clamp((0.5 * s / s_range + 0.5) * (n - 1), 0.0, n - 1.0)
    i0 = int(cx)
    i1 = min(i0 + 1, n - 1)
    fx = cx - i0
    h = max(tex_h[i0] * (1.0 - fx) + tex_h[i1] * fx, 1.0)
    above = (1.0 - q) * band * min(1.0, h / max(band, 1e-3))  # px above the edge
    cy = _clamp((1.0 - above / h) * (rows - 1), 0.0, rows - 1.0)
    j0 = int(cy)
    j1 = min(j0 + 1, rows - 1)
    fy = cy - j0
    w00, w01, w10, w11 = (1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy
    r = tex[j0, i0, 0] * w00 + tex[j0, i1, 0] * w01 + tex[j1, i0, 0] * w10 + tex[j1, i1, 0] * w11
    g = tex[j0, i0, 1] * w00 + tex[j0, i1, 1] * w01 + tex[j1, i0, 1] * w10 + tex[j1, i1, 1] * w11
    b = tex[j0, i0, 2] * w00 + tex[j0, i1, 2] * w01 + tex[j1, i0, 2] * w10 + tex[j1, i1, 2] * w11
    return r, g, b


@njit(void(uint8[:, :, :], F4_2, F4_2, F4_2, float64, float64, float64, float64, float64, float64,
           float64, F8_1, F8_1, F8_1, F8_1, F4_3, F8_1, float64), **_JIT)
def paint(out: np.ndarray, alpha: np.ndarray, depth: np.ndarray, s_map: np.ndarray, gap: float,
          d: float, half: float, s_corner: float, brightness: float, teeth: float, lower: float,
          s_ui: np.ndarray, t_ui: np.ndarray, s_li: np.ndarray, t_li: np.ndarray,
          tex: np.ndarray, tex_h: np.ndarray, tex_s: float) -> None:
    """Draw the cavity, tongue and upper teeth into ``out`` (h, w, 3 uint8) where alpha > 0.

    ``gap`` is the opening at mid-mouth in px. Teeth hang from the upper lip only where the
    photo shows no interior of its own (its real teeth then move with the upper lip); ``teeth``
    (0..1) scales their height and opacity (0: a dark oval, canvas.TEETH_HIDE); ``lower``
    (0..1) the lower teeth's, a band over the lower lip (fear's stretched lips, canvas.LOWER_TEETH).
    The teeth are drawn from ``tex`` (rows, cols, 3), ``tex_h`` and ``tex_s`` (_teeth_rgb): the
    photo's own teeth, or painted enamel (mouth.TeethTexture).
    """
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            a = alpha[y, x]
            if a <= 0.0:
                continue
            dep, s = depth[y, x], s_map[y, x]
            lat = lip_profile(s, s_corner)
            own = interp(s, s_li, t_li) - interp(s, s_ui, t_ui)  # the photo's interior height
            g = max(gap * lat, 1.0)
            frac = _clamp(dep / g, 0.0, 1.0)
            # Cavity: darkest in the middle and towards the corners.
            edge = abs(2.0 * frac - 1.0)
            shade = (0.5 + 0.5 * edge * math.sqrt(edge)) * (0.55 + 0.45 * lat)
            r, gr, b = CAVITY[0] * shade, CAVITY[1] * shade, CAVITY[2] * shade
            # The tongue shows at the bottom of a wide opening.
            tongue = (_clamp((frac - 0.55) / 0.35, 0.0, 1.0) * _clamp(gap * lat / (0.12 * d), 0.0, 1.0)
                      * _clamp(1.0 - (s / (0.75 * s_corner)) ** 2, 0.0, 1.0))
            if tongue > 0.0:
                tongue = tongue * tongue * (3.0 - 2.0 * tongue)
                k = (0.7 + 0.3 * lat) * tongue
                r = r * (1.0 - tongue) + TONGUE[0] * k
                gr = gr * (1.0 - tongue) + TONGUE[1] * k
                b = b * (1.0 - tongue) + TONGUE[2] * k
            # Upper teeth: a band under the upper lip, narrower than the mouth, faint gaps.
            tooth_h = min(0.4 * g, TEETH_MAX * d) * teeth
            tooth_w = _clamp(1.0 - (s / (0.8 * s_corner)) ** 2, 0.0, 1.0)
            no_own = _clamp(1.0 - own / (0.04 * d), 0.0, 1.0)
            ta = (_clamp((tooth_h - dep) / 1.5 + 0.5, 0.0, 1.0) * math.sqrt(tooth_w) * no_own
                  * min(teeth, 1.0))
            if ta > 0.0:
                tr, tg, tb = _teeth_rgb(tex, tex_h, tex_s, s, _clamp(dep / max(tooth_h, 1e-3), 0.0, 1.0), tooth_h)
                k = (0.6 + 0.4 * tooth_w) * (1.0 - 0.2 * (dep / max(tooth_h, 1.0))) * ta
                r = r * (1.0 - ta) + tr * k
                gr = gr * (1.0 - ta) + tg * k
                b = b * (1.0 - ta) + tb * k
            if lower > 0.0:
                # Lower teeth: a lower, narrower band resting on the lower lip, a shade darker.
                low_h = min(0.3 * g, 0.06 * d) * lower
                low_w = _clamp(1.0 - (s / (0.65 * s_corner)) ** 2, 0.0, 1.0)
                la = (_clamp((low_h - (g - dep)) / 1.5 + 0.5, 0.0, 1.0) * math.sqrt(low_w) * no_own
                      * min(lower, 1.0))
                if la > 0.0:
                    # The same teeth upside down and narrower (lower teeth are), a shade darker.
                    tr, tg, tb = _teeth_rgb(tex, tex_h, tex_s, 1.25 * s,
                                            _clamp((g - dep) / max(low_h, 1e-3), 0.0, 1.0), low_h)
                    k = 0.8 * la
                    r = r * (1.0 - la) + tr * k
                    gr = gr * (1.0 - la) + tg * k
                    b = b * (1.0 - la) + tb * k
            out[y, x, 0] = np.uint8(_clamp(out[y, x, 0] * (1.0 - a) + r * brightness * a, 0.0, 255.0))
            out[y, x, 1] = np.uint8(_clamp(out[y, x, 1] * (1.0 - a) + gr * brightness * a, 0.0, 255.0))
            out[y, x, 2] = np.uint8(_clamp(out[y, x, 2] * (1.0 - a) + b * brightness * a, 0.0, 255.0))


@njit(void(uint8[:, :, :], uint8[:, :, :], F4_2, F4_3), **_JIT)
def blend_seam(out: np.ndarray, source: np.ndarray, blend: np.ndarray, other: np.ndarray) -> None:
    """Mix into ``out`` (h, w, 3 uint8) the ``source`` (H, W, >=3 uint8) sampled bilinearly at
    ``other`` with weight ``blend`` (choose_sides' antialiased seam of closed lips)."""
    hh, ww = source.shape[0], source.shape[1]
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            k = blend[y, x]
            if k <= 0.0:
                continue
            sx = min(max(other[y, x, 0], 0.0), ww - 1.0)
            sy = min(max(other[y, x, 1], 0.0), hh - 1.0)
            x0, y0 = int(sx), int(sy)
            x1, y1 = min(x0 + 1, ww - 1), min(y0 + 1, hh - 1)
            fx, fy = sx - x0, sy - y0
            for ch in range(3):
                c = ((source[y0, x0, ch] * (1.0 - fx) + source[y0, x1, ch] * fx) * (1.0 - fy)
                     + (source[y1, x0, ch] * (1.0 - fx) + source[y1, x1, ch] * fx) * fy)
                out[y, x, ch] = np.uint8(_clamp(out[y, x, ch] * (1.0 - k) + c * k + 0.5, 0.0, 255.0))
