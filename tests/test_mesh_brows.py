"""Surprise's brows rise level (canvas.ARCH_SLANT): the inner lift (AU1) is cut against the
photo's own brow slant, except under glasses' rims and whenever AU4 joins in (fear, sadness)."""
from __future__ import annotations

import pytest

from engine.facs import activation
from engine.mesh.action_units import SMOOTH_AUS
from engine.mesh.canvas import ARCH_SLANT, coefficients
from engine.mesh.expression import PhotoExpression
from engine.motion import Motion

AU1 = SMOOTH_AUS.index("1")
AU2 = SMOOTH_AUS.index("2")
PER_AU = (0.19, -0.10)  # slant change per unit AU1, AU2 (typical of the test portraits)


def _gains(emotion: str, photo: PhotoExpression | None) -> tuple[float, float, float]:
    act = activation(Motion.emotion(emotion, 1.0, baseline="neutral"))
    k = coefficients(act, photo)
    return float(k.smooth[AU1]), float(k.smooth[AU2]), float(act.action_units.get(1, 0.0))


@pytest.mark.parametrize("slant", [-0.06, 0.0, 0.03])
def test_surprise_inner_lift_is_cut_to_the_arch(slant: float) -> None:
    photo = PhotoExpression(brow_slant=slant, slant_per_au=PER_AU)
    g1, g2, requested = _gains("surprised", photo)
    assert g2 > 0 and 0.0 <= g1 < requested
    final = slant + g1 * PER_AU[0] + g2 * PER_AU[1]
    if g1 > 0:
        assert final == pytest.approx(ARCH_SLANT, abs=1e-5)
    else:  # brows slanting up inwards this much in the photo get no inner lift at all, and
        # are not pulled down below the photo's own either (surprise lowers no brow)
        assert final >= ARCH_SLANT


def test_brows_keep_their_lift_under_rims_in_fear_and_without_a_photo() -> None:
    _, _, requested = _gains("surprised", None)
    assert _gains("surprised", None)[0] == pytest.approx(requested)
    rims = PhotoExpression(brow_slant=0.0, slant_per_au=PER_AU, rims=True)
    assert _gains("surprised", rims)[0] == pytest.approx(requested)
    plain = PhotoExpression(brow_slant=0.0, slant_per_au=PER_AU)
    g1, _, req_fear = _gains("fearful", plain)
    assert req_fear > 0 and g1 == pytest.approx(req_fear)
    assert _gains("sad", plain)[0] == pytest.approx(_gains("sad", None)[0])
