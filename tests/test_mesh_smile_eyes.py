"""Wide eyes on a smiling photo (engine/mesh/canvas.py: CHEEK_WIDE; expression.lower_lid_full, cheek).

A smiling photo's lower lids are pushed up by its smile's cheek (AU6). Surprise's and fear's AU5
undo all of it: the cheek comes down (AU6's field run backwards), the lower lid goes back to the
reference itself, and the upper lid rises WIDEN_MAX of the rest opening. Checked on the warp's
coefficients (the ablation: the same photo read without its cheek) and on the landmarks FaceMesh
re-detects (units of d; its noise on the eye opening is at most 0.007, tests/test_mesh_engine.py).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from engine.facs import activation  # noqa: E402
from engine.mesh.canvas import SMOOTH_AUS, coefficients  # noqa: E402
from engine.motion import Motion  # noqa: E402
from mesh_checks import prepared  # noqa: E402
from test_mesh_engine import face_metrics  # noqa: E402

SMILING = ("smile_teeth", "smile_outdoor")


@pytest.fixture(scope="module")
def sources(mesh_engine):
    return prepared(mesh_engine, (*SMILING, "astronaut", "glasses"))


def _without_cheek(expr):
    return dataclasses.replace(expr, cheek=0.0, lower_lid_full=expr.lower_lid)


def _same(a, b) -> bool:
    """Two frames' coefficients field by field (some are arrays)."""
    return all(np.array_equal(np.asarray(getattr(a, f.name)), np.asarray(getattr(b, f.name)))
               for f in dataclasses.fields(a))


def test_only_the_smiling_photos_carry_a_cheek(sources):
    for name in SMILING:
        e = sources[name].expression
        # Their lower lids sit 0.04 eye widths above the reference: about 0.16-0.18 of the opening.
        assert 0.6 < e.cheek <= 1.0 and e.lower_lid_full > e.lower_lid + 0.05
    assert sources["astronaut"].expression.cheek == 0.0  # no raised lower lid


@pytest.mark.parametrize("name", SMILING)
@pytest.mark.parametrize("emotion", ["surprised", "fearful"])
def test_wide_eyes_undo_the_smiles_cheek(sources, name, emotion):
    expr = sources[name].expression
    act = activation(Motion.emotion(emotion, 1.0))
    k, plain = coefficients(act, expr), coefficients(act, _without_cheek(expr))
    i6 = SMOOTH_AUS.index("6")
    assert k.smooth[i6] < plain.smooth[i6] - 0.5       # the cheek comes down
    assert all(a > b + 0.05 for a, b in zip(k.low, plain.low)) or max(k.low) == pytest.approx(0.55)
    assert all(a <= b for a, b in zip(k.lids, plain.lids))  # the upper lids rise at least as far


@pytest.mark.parametrize("emotion", ["neutral", "happy", "angry", "disgusted", "sad"])
def test_nothing_else_changes(sources, emotion):
    """Without AU5 beyond AU7 (anger's AU5 comes with AU7) the frame is as it was."""
    expr = sources["smile_teeth"].expression
    act = activation(Motion() if emotion == "neutral" else Motion.emotion(emotion, 1.0))
    assert _same(coefficients(act, expr), coefficients(act, _without_cheek(expr)))


def test_glasses_wearers_keep_their_eyes(sources):
    """The glasses portrait smiles too, but behind its lenses the same read angry: it keeps its rendering."""
    expr = sources["glasses"].expression
    assert expr.cheek > 0
    act = activation(Motion.emotion("surprised", 1.0))
    assert _same(coefficients(act, expr), coefficients(act, _without_cheek(expr)))


@pytest.mark.parametrize("emotion", ["surprised", "fearful"])
def test_facemesh_sees_the_eyes_open(mesh_engine, sources, emotion):
    """smile_teeth's eyes opened +0.020 d (surprise) and +0.015 d (fear) with the cheek kept."""
    src = sources["smile_teeth"]
    n = face_metrics(mesh_engine.render([(src, Motion())])[0])
    m = face_metrics(mesh_engine.render([(src, Motion.emotion(emotion, 1.0))])[0], n["d"])
    assert m["eye_open"] - n["eye_open"] > 0.025
