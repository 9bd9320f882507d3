"""The dense warp: forward fields on a coarse grid -> backward map -> full-resolution remap.

Fields are summed on a coarse grid (one node every STEP pixels), inverted there by
Newton's method (cheap: a few thousand nodes), and upsampled bilinearly as cv2.resize
does it (kernels.upsample, the same bits), whose pixel-centre convention puts node i at
x = (i + 0.5) * STEP - 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import kernels

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
    node_pos: np.ndarray  # (gy, gx, 2) float32: each node's pixel position


def make_grid(width: int, height: int) -> Grid:
    gx, gy = width // STEP, height // STEP
    xs = (np.arange(gx) + 0.5) * STEP - 0.5
    ys = (np.arange(gy) + 0.5) * STEP - 0.5
    X, Y = np.meshgrid(xs, ys)
    nodes = np.stack([X.ravel(), Y.ravel()], axis=1)
    pos = nodes.reshape(gy, gx, 2).astype(np.float32)
    return Grid(width, height, nodes, gx, gy, pos)


def invert(grid: Grid, forward: np.ndarray, block: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Backward displacement B with B(p) + F(p + B(p)) = 0, on the grid nodes (gy, gx, 2).

    Newton's method per node (kernels.invert), with F and its Jacobian sampled bilinearly
    on the grid. ``block`` = (i0, j0, i1, j1) limits the solve to those nodes (the rest get
    -F): the lower lip's side is only ever used around the mouth.
    """
    forward = np.ascontiguousarray(forward, dtype=np.float32)
    back = np.empty_like(forward)
    i0, j0, i1, j1 = block if block is not None else (0, 0, grid.gx, grid.gy)
    kernels.invert(forward, i0, j0, i1, j1, float(STEP), INVERT_ITERATIONS, INVERT_TOLERANCE, back)
    return back


def upsample(grid: Grid, back: np.ndarray, x0: int = 0, y0: int = 0,
             x1: int | None = None, y1: int | None = None, into: np.ndarray | None = None,
             at: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Bilinear full-resolution source coordinates (p + B(p)) for the pixel box [x0,x1) x [y0,y1),
    written into ``into`` at column, row ``at`` when given (and that part of it returned).

    Bilinear interpolation reproduces the identity exactly, so the node positions are added
    on the coarse grid and the resize yields absolute coordinates with no full-size add.
    The box is widened to whole grid cells and upsampled from only the nodes it needs.
    """
    x1 = grid.width if x1 is None else x1
    y1 = grid.height if y1 is None else y1
    h, w = y1 - y0, x1 - x0
    i0, j0 = max(0, x0 // STEP - 1), max(0, y0 // STEP - 1)
    i1, j1 = min(grid.gx, -(-x1 // STEP) + 1), min(grid.gy, -(-y1 // STEP) + 1)
    if i1 - i0 >= 2 and (into is None or into.flags.c_contiguous):
        # The same bits as the resize below, written for the box only (kernels.upsample).
        if into is None:
            into, at = np.empty((h, w, 2), np.float32), (0, 0)
        kernels.upsample(back, grid.node_pos, i0, j0, i1, j1, STEP, x0, y0, h, w, into, at[0], at[1])
        out = into[at[1]:at[1] + h, at[0]:at[0] + w]
    else:
        block = back[j0:j1, i0:i1] + grid.node_pos[j0:j1, i0:i1]
        up = cv2.resize(block, ((i1 - i0) * STEP, (j1 - j0) * STEP), interpolation=cv2.INTER_LINEAR)
        ox, oy = i0 * STEP, j0 * STEP
        out = up[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        if into is not None:
            into[at[1]:at[1] + h, at[0]:at[0] + w] = out
            out = into[at[1]:at[1] + h, at[0]:at[0] + w]
    # Within half a cell of the canvas edge resize holds the edge node's value; there the
    # displacement is the edge node's, and the position is the pixel's own.
    e = STEP // 2
    if x0 < e or y0 < e or x1 > grid.width - e or y1 > grid.height - e:
        kernels.edge_positions(out, x0, y0, x1, y1, grid.width, grid.height, e)
    return out


# cv2.remap takes maps under 32767 rows and columns: points go in rows of this many.
SAMPLE_ROW = 4096


def sample_at(img: np.ndarray, points: np.ndarray, border: int = cv2.BORDER_REPLICATE,
              value: float = 0.0) -> np.ndarray:
    """(N,) float64 bilinear samples of a one-channel image at points (N, 2) in pixels (any N:
    a full-resolution canvas has more grid nodes than remap takes in one column)."""
    n = len(points)
    rows = max(1, -(-n // SAMPLE_ROW))
    xy = np.zeros((rows * SAMPLE_ROW, 2), np.float32)
    xy[:n] = points
    xy = xy.reshape(rows, SAMPLE_ROW, 2)
    out = cv2.remap(img, np.ascontiguousarray(xy[..., 0]), np.ascontiguousarray(xy[..., 1]), cv2.INTER_LINEAR,
                    borderMode=border, borderValue=value)
    return out.ravel()[:n].astype(np.float64)
