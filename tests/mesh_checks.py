"""Checks shared by the mesh engine's tests. The photo-keyed renderings (test_mesh_fear,
test_mesh_round_mouth, test_mesh_glasses_wearers) each reshape an
emotion's action units on one kind of photo, so each is tested the same ways: the photos it
applies to, its coefficients against the same frame with it switched off, and no fold-overs."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from avatar_testkit.portraits import portrait_rgb, require_portrait
from engine.mesh import MeshEngine
from engine.facs import activation
from engine.mesh import canvas as K
from engine.mesh.canvas import Coefficients, coefficients
from engine.mesh.expression import PhotoExpression
from engine.mesh.engine import MeshSource
from engine.motion import Motion
from test_mesh_engine import _full_map


def prepared(engine: MeshEngine, names: tuple[str, ...]) -> dict[str, MeshSource]:
    """The named test portraits, prepared (skipped, or failed under CI, where one is missing)."""
    out = {}
    for name in names:
        require_portrait(name)
        out[name] = engine.prepare(portrait_rgb(name))
    return out


def prepared_once(engine: MeshEngine, cache: dict[str, MeshSource], name: str) -> MeshSource:
    """``name`` prepared on first use and kept in ``cache`` (a module-scoped fixture's dict)."""
    if name not in cache:
        cache.update(prepared(engine, (name,)))
    return cache[name]


def folds_off_the_seam(src: MeshSource, motion: Motion) -> tuple[int, float]:
    """As tests/test_mesh_engine.py's fold-over check: the number of pixels where the crop's
    backward map turns over (Jacobian determinant <= 0) away from the lips' seam, and the
    smallest determinant there."""
    full, alpha = _full_map(src, motion)
    g = np.gradient
    det = g(full[..., 0], axis=1) * g(full[..., 1], axis=0) - g(full[..., 0], axis=0) * g(full[..., 1], axis=1)
    seam = cv2.dilate((alpha > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return int(((det <= 0) & ~seam).sum()), float(det[~seam].min())


def same_frame(k: Coefficients, plain: Coefficients, *, paint: bool = True, creases: bool = True) -> bool:
    """Whether two frames' coefficients warp alike: the fields, the lower lip's tear and the lids;
    with ``paint`` the painted teeth too, with ``creases`` the creases' weights."""
    same = (np.array_equal(k.smooth, plain.smooth) and np.array_equal(k.tear, plain.tear)
            and (k.lids, k.low) == (plain.lids, plain.low))
    if paint:
        same = same and (k.teeth, k.lower_teeth) == (plain.teeth, plain.lower_teeth)
    return same and (not creases or k.creases == plain.creases)


def keyed_pair(expr: PhotoExpression, switch_off: dict[str, object], emotion: str,
               t: float = 1.0) -> tuple[Coefficients, Coefficients]:
    """One frame's coefficients on a photo with a keyed rendering, and with it switched off
    (``switch_off``: canvas constants and the values that disable it)."""
    act = activation(Motion.emotion(emotion, t))
    with pytest.MonkeyPatch.context() as mp:
        for name, off in switch_off.items():
            mp.setattr(K, name, off)
        plain = coefficients(act, expr)
    return coefficients(act, expr), plain
