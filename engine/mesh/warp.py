"""The dense warp: forward fields on a coarse grid -> backward map -> full-resolution remap.

Fields are summed on a coarse grid (one node every STEP pixels), inverted there by a
fixed-point iteration (cheap: a few thousand nodes), and upsampled bilinearly with
cv2.resize, whose pixel-centre convention puts node i at x = (i + 0.5) * STEP - 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

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


def invert(grid: Grid, forward: np.ndarray, block: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Backward displacement B with B(p) + F(p + B(p)) = 0, on the grid nodes (gy, gx, 2).

    Newton's method on every node at once, with F and its Jacobian sampled bilinearly on
    the grid. It converges wherever the forward map folds nothing (det(I + dF) > 0), even
    where F is steep, which plain fixed-point iteration does not.

    ``block`` = (i0, j0, i1, j1) limits the solve to those nodes (the rest get -F).
    """
    if not forward.any():
        return np.zeros_like(forward)
    i0, j0, i1, j1 = block if block is not None else (0, 0, grid.gx, grid.gy)
    if i1 <= i0 or j1 <= j0:
        return -forward
    # Jacobian of F per pixel: (dFx/dx, dFx/dy, dFy/dx, dFy/dy).
    jac = np.dstack([np.gradient(forward[..., 0], axis=1), np.gradient(forward[..., 0], axis=0),
                     np.gradient(forward[..., 1], axis=1), np.gradient(forward[..., 1], axis=0)])
    jac = (jac / STEP).astype(np.float32)
    both = np.ascontiguousarray(np.dstack([forward, jac]))
    full = -forward
    back = full[j0:j1, i0:i1]
    nodes = grid.node_maps[j0:j1, i0:i1]
    last = np.inf
    for _ in range(INVERT_ITERATIONS):
        at = nodes + back / STEP
        s = cv2.remap(both, at, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        rx, ry = back[..., 0] + s[..., 0], back[..., 1] + s[..., 1]
        a, b, c, d = 1 + s[..., 2], s[..., 3], s[..., 4], 1 + s[..., 5]
        det = np.maximum(a * d - b * c, 0.1)
        # Steps are capped at one grid cell: where F bends sharply between nodes, a full
        # Newton step can overshoot and oscillate.
        step = np.dstack([(d * rx - b * ry) / det, (a * ry - c * rx) / det])
        back = back - np.clip(step, -STEP, STEP)
        resid = max(float(np.abs(rx).max()), float(np.abs(ry).max()))
        # Done when close enough, or when Newton has settled at the grid's own accuracy
        # (bilinear F and Jacobian disagree slightly, so the residual plateaus at a few
        # tenths of a pixel where F bends sharply).
        if resid < INVERT_TOLERANCE or (resid < 2.0 and resid > 0.7 * last):
            break
        last = resid
    full[j0:j1, i0:i1] = back
    return full.astype(np.float32, copy=False)


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
