"""The dense warp: forward fields on a coarse grid -> backward map -> full-resolution remap.

Fields are summed on a coarse grid (one node every STEP pixels), inverted there by a
fixed-point iteration (cheap: a few thousand nodes), and upsampled bilinearly with
cv2.resize, whose pixel-centre convention puts node i at x = (i + 0.5) * STEP - 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .lut import clamp

STEP = 8
INVERT_ITERATIONS = 10  # most frames stop after 2-3; strong head motion needs more
# Bilinear sampling of F and its Jacobian disagree slightly, so Newton settles at about
# 0.1 px; stop there.
INVERT_TOLERANCE = 0.15


@dataclass(frozen=True)
class Grid:
    width: int  # canvas size in pixels (multiples of STEP)
    height: int
    nodes: np.ndarray  # (gy * gx, 2) float64 node positions in canvas pixels
    gx: int
    gy: int
    node_maps: np.ndarray  # (gy, gx, 2) float32: each node's own index coordinates
    node_pos: np.ndarray  # (gy, gx, 2) float32: each node's pixel position


def make_grid(width: int, height: int) -> Grid:
    gx, gy = width // STEP, height // STEP
    xs = (np.arange(gx) + 0.5) * STEP - 0.5
    ys = (np.arange(gy) + 0.5) * STEP - 0.5
    X, Y = np.meshgrid(xs, ys)
    nodes = np.stack([X.ravel(), Y.ravel()], axis=1)
    ix, iy = np.meshgrid(np.arange(gx, dtype=np.float32), np.arange(gy, dtype=np.float32))
    pos = nodes.reshape(gy, gx, 2).astype(np.float32)
    return Grid(width, height, nodes, gx, gy, np.dstack([ix, iy]), pos)


def identity_map(width: int, height: int) -> np.ndarray:
    x, y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack([x, y])


def _newton_table(f: np.ndarray) -> np.ndarray:
    """(h, w, 6) float32: F, then the entries of I + dF (central differences, one-sided at
    the edges, per pixel), sampled together by one remap per Newton step."""
    h, w = f.shape[:2]
    out = np.empty((h, w, 6), np.float32)
    out[..., :2] = f
    for c in range(2):
        g, dx, dy = f[..., c], out[..., 2 + 2 * c], out[..., 3 + 2 * c]
        if w > 1:
            dx[:, 1:-1] = (g[:, 2:] - g[:, :-2]) * (0.5 / STEP)
            dx[:, 0] = (g[:, 1] - g[:, 0]) * (1.0 / STEP)
            dx[:, -1] = (g[:, -1] - g[:, -2]) * (1.0 / STEP)
        else:
            dx[...] = 0.0
        if h > 1:
            dy[1:-1] = (g[2:] - g[:-2]) * (0.5 / STEP)
            dy[0] = (g[1] - g[0]) * (1.0 / STEP)
            dy[-1] = (g[-1] - g[-2]) * (1.0 / STEP)
        else:
            dy[...] = 0.0
    out[..., 2] += 1.0
    out[..., 5] += 1.0
    return out


def invert(grid: Grid, forward: np.ndarray, block: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Backward displacement B with B(p) + F(p + B(p)) = 0, on the grid nodes (gy, gx, 2).

    Newton's method on every node at once, with F and its Jacobian sampled bilinearly on
    the grid. It converges wherever the forward map folds nothing (det(I + dF) > 0), even
    where F is steep, which plain fixed-point iteration does not.

    ``block`` = (i0, j0, i1, j1) limits the solve to those nodes (the rest get -F).
    """
    full = np.negative(forward)
    i0, j0, i1, j1 = block if block is not None else (0, 0, grid.gx, grid.gy)
    if i1 <= i0 or j1 <= j0:
        return full
    back = full[j0:j1, i0:i1]
    # The samples land within max|F| of the block (steps are capped at one cell, and the
    # solution is -F at the sample point): the table is built over that window only.
    reach = int(np.ceil(float(np.abs(back).max()) / STEP)) + 2
    wi0, wj0 = max(0, i0 - reach), max(0, j0 - reach)
    wi1, wj1 = min(grid.gx, i1 + reach), min(grid.gy, j1 + reach)
    table = _newton_table(forward[wj0:wj1, wi0:wi1])
    nodes = grid.node_maps[j0:j1, i0:i1] - np.array([wi0, wj0], np.float32)
    last = np.inf
    for _ in range(INVERT_ITERATIONS):
        bx, by = back[..., 0], back[..., 1]  # views: updated in place
        s = cv2.remap(table, nodes + back * (1.0 / STEP), None, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
        rx, ry = bx + s[..., 0], by + s[..., 1]
        a, b, c, d = s[..., 2], s[..., 3], s[..., 4], s[..., 5]
        det = a * d - b * c
        np.maximum(det, 0.1, out=det)
        # Steps are capped at one grid cell: where F bends sharply between nodes, a full
        # Newton step can overshoot and oscillate.
        bx -= clamp((d * rx - b * ry) / det, -STEP, STEP)
        by -= clamp((a * ry - c * rx) / det, -STEP, STEP)
        err = np.maximum(np.abs(rx), np.abs(ry))
        resid = float(err.max())
        # Done when close enough, or when Newton has settled at the grid's own accuracy
        # (bilinear F and Jacobian disagree slightly, so the residual plateaus at a few
        # tenths of a pixel where F bends sharply).
        if resid < INVERT_TOLERANCE or (resid < 2.0 and resid > 0.7 * last):
            break
        last = resid
        # Nodes already within tolerance are done: the next steps solve only the box of
        # those that are not (usually a small part of the block after two steps).
        rows = np.flatnonzero((err >= INVERT_TOLERANCE).any(axis=1))
        cols = np.flatnonzero((err[rows[0]:rows[-1] + 1] >= INVERT_TOLERANCE).any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        back, nodes = back[r0:r1, c0:c1], nodes[r0:r1, c0:c1]
    return full


def upsample(grid: Grid, back: np.ndarray, x0: int = 0, y0: int = 0,
             x1: int | None = None, y1: int | None = None) -> np.ndarray:
    """Bilinear full-resolution source coordinates (p + B(p)) for the pixel box [x0,x1) x [y0,y1).

    Bilinear interpolation reproduces the identity exactly, so the node positions are added
    on the coarse grid and the resize yields absolute coordinates with no full-size add.
    The box is widened to whole grid cells and upsampled from only the nodes it needs.
    """
    x1 = grid.width if x1 is None else x1
    y1 = grid.height if y1 is None else y1
    i0, j0 = max(0, x0 // STEP - 1), max(0, y0 // STEP - 1)
    i1, j1 = min(grid.gx, -(-x1 // STEP) + 1), min(grid.gy, -(-y1 // STEP) + 1)
    block = back[j0:j1, i0:i1] + grid.node_pos[j0:j1, i0:i1]
    up = cv2.resize(block, ((i1 - i0) * STEP, (j1 - j0) * STEP), interpolation=cv2.INTER_LINEAR)
    ox, oy = i0 * STEP, j0 * STEP
    out = up[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    # Within half a cell of the canvas edge resize holds the edge node's value; there the
    # displacement is the edge node's, and the position is the pixel's own.
    e = STEP // 2
    if x0 < e:
        n = e - x0
        out[:, :n, 0] += np.arange(x0, e, dtype=np.float32) - (e - 0.5)
    if x1 > grid.width - e:
        n = x1 - (grid.width - e)
        out[:, -n:, 0] += np.arange(grid.width - e, x1, dtype=np.float32) - (grid.width - e - 0.5)
    if y0 < e:
        n = e - y0
        out[:n, :, 1] += (np.arange(y0, e, dtype=np.float32) - (e - 0.5))[:, None]
    if y1 > grid.height - e:
        n = y1 - (grid.height - e)
        out[-n:, :, 1] += (np.arange(grid.height - e, y1, dtype=np.float32) - (grid.height - e - 0.5))[:, None]
    return out
