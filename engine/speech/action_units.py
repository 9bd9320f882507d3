"""Mouth poses -> facial action units, blended with the emotion's own mouth.

Both engines render action units (engine/facs.py), so speech enters there: each viseme is a
small AU recipe (FACS names in engine/facs.py). A talking face keeps its expression: the
emotion's non-mouth AUs (brows, cheeks, the smile's corners AU12, AU15, AU17) stay; its mouth
shape AUs give way in proportion to how much the visemes take (MouthPose.total()).
"""
from __future__ import annotations

from engine.speech.visemes import MouthPose

# Per unit of viseme weight.
VISEME_AUS: dict[str, dict[int, float]] = {
    # lips pressed together (AU24), corners in a little (AU23); no opening
    "closed": {24: 0.8, 23: 0.2},
    # jaw drop with the lips apart
    "open": {25: 1.0, 26: 0.85},
    # lip pucker/funneler (AU18/22 -> 18), corners drawn in (AU23), a small round opening
    "round": {18: 1.0, 23: 0.3, 25: 0.45, 26: 0.25},
    # lip stretcher (AU20), lips slightly apart showing the teeth
    "spread": {20: 1.0, 25: 0.45, 10: 0.1},
    # lower lip up against the upper teeth: upper lip raised (teeth show), chin/lower lip up
    "teeth_lip": {10: 0.55, 17: 0.7, 25: 0.15},
}
# The emotion's AUs that shape the mouth itself (they give way to speech).
MOUTH_SHAPE_AUS: frozenset[int] = frozenset({10, 16, 18, 20, 22, 23, 24, 25, 26, 27})


def speech_action_units(emotion_aus: dict[int, float], pose: MouthPose) -> dict[int, float]:
    """The emotion's AUs with the mouth pose applied (a new dict)."""
    total = min(1.0, max(0.0, pose.total()))
    out = {k: (v * (1.0 - total) if k in MOUTH_SHAPE_AUS else v) for k, v in emotion_aus.items()}
    for name, recipe in VISEME_AUS.items():
        w = pose.weight(name)
        if w <= 0.0:
            continue
        for au, gain in recipe.items():
            out[au] = out.get(au, 0.0) + w * gain
    return out
