"""Emotions as FACS action-unit prototypes, defined once for every engine.

An emotion at intensity i activates each of its action units at
``i * expression_scale * base``. Several emotions blend by adding their activations.
Low-level controls add to the same action units. Each engine then maps action units
onto its own controls (landmark displacements for mesh, keypoint deltas for liveportrait).

The seed's table (mouth, eyes, eyebrows, expression scale) is reproduced exactly by the
read-out functions below, applied to the base prototypes (see ``seed_columns``):

* mouth    = max(AU25, AU26)                         (lip separation)
* eyes     = clip(1 - 0.125*AU6 - 0.25*AU7 - 0.4*AU9 - AU43, 0, 1)   (AU5 widening is above 1)
* eyebrows = 0.5*AU1 + 0.5*AU2 - AU4 - 0.3*AU9 + 0.25*AU6
* scale    = the prototype's expression_scale

Recognisability vs the seed: the seed's numbers alone move a face too little to read as the
emotion (an independent classifier labelled sad, angry and disgusted "neutral"). So each
prototype also has ``extra`` action units, activated like ``base`` (intensity x scale x value)
but never read out: only AUs the read-outs do not use (READOUT_AUS) may appear there. They
add the EMFACS components the seed leaves out (the chin raiser AU17 in sadness and disgust,
the upper lip raiser AU10 in disgust, anger and fear, anger's jaw drop as AU27) and
the cues an expression classifier trained on FER2013 keys on: corners pulled down (AU15) so
that an open mouth in fear and surprise does not read as a laugh, and the jaw stretched
into an oval (AU27) in surprise (the mesh engine narrows it, without upper teeth). A base AU
outside the read-outs (AU5, AU10, AU12, AU15, AU16, AU20, AU23) may also change, and read-out
AUs may trade against each other as long as the columns stay the same (sadness: AU1 and AU4
both 1.0 instead of 0.8 and 0.9, the same eyebrows value, so the inner brows still rise
against the mesh's stronger AU4; fear: AU1 1.25, AU2 0.85, AU4 0.45 instead of 1.0, 0.6, 0.2,
brows drawn together as they rise).
Engines may also render an AU more strongly per unit (the mesh engine's gains).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .motion import EMOTIONS, Motion
from .speech.action_units import speech_action_units

# Action units used anywhere in the product, with their FACS names.
ACTION_UNITS: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    12: "lip corner puller",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    20: "lip stretcher",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    27: "mouth stretch",
    43: "eyes closed",
}


@dataclass(frozen=True)
class EmotionPrototype:
    base: Mapping[int, float]
    expression_scale: float = 1.0
    # Action units that only come in at high intensity: AU -> intensity where they start.
    late_onset: Mapping[int, float] = field(default_factory=dict)
    # Activated like base, never read out (the seed's columns): only AUs outside READOUT_AUS.
    extra: Mapping[int, float] = field(default_factory=dict)


# The action units the seed's read-outs use (seed_columns): ``extra`` must avoid them.
READOUT_AUS: frozenset[int] = frozenset({1, 2, 4, 6, 7, 9, 25, 26, 43})


PROTOTYPES: dict[str, EmotionPrototype] = {
    "neutral": EmotionPrototype({}, 1.0),
    # Duchenne smile; the lips part (AU25) only above intensity 0.5.
    "happy": EmotionPrototype({6: 0.8, 12: 1.0, 25: 0.6}, 1.3, late_onset={25: 0.5}),
    # EMFACS sadness: AU1+4 (oblique brows), AU15 (corners down), AU17 (chin raised). The
    # seed's AU1 0.8 / AU4 0.9 traded for 1.0 / 1.0 (same eyebrows read-out, -0.5).
    "sad": EmotionPrototype({1: 1.0, 4: 1.0, 15: 0.8, 43: 0.3}, 1.0, extra={15: 0.4, 17: 0.8}),
    # Surprise: brows up, eyes wide, jaw dropped into an oval (AU27 stretches it down, AU23
    # narrows it, AU15 keeps the corners from curling up into a laugh).
    "surprised": EmotionPrototype({1: 0.8, 2: 0.8, 5: 0.8, 25: 0.8, 26: 0.8}, 1.5,
                                  extra={15: 0.4, 23: 0.8, 27: 0.6}),
    # EMFACS fear: AU1+2+4 (the inner brows raised higher than the outer and drawn together:
    # seed AU2 0.6 / AU4 0.2 traded for 0.85 / 0.45, same eyebrows read-out), AU5, AU20 (the
    # lips stretched sideways), AU25+26 (a moderate jaw), and the open grimace of fear: the
    # upper lip raised (AU10, the upper teeth show) and the corners and lower lip pulled down
    # (AU15, AU16), so the opening arches instead of smiling (the mesh engine also bares the
    # lower teeth and stretches the jaw into a tall opening for AU20 this strong, canvas.STRETCH_*,
    # and holds the outer brows down where AU1 meets AU4, canvas.TAIL_HOLD: fear then reads
    # fearful on grace_hopper and smile_teeth). The expression judge still reads it as surprise on
    # the wide-eyed portraits and as sadness on the other smiling ones (bench/fidelity.md). AU15 1.2 without AU20 made grace_hopper's fear a hit, but FaceMesh
    # then finds the mouth narrower, not stretched (tests/test_mesh_engine.py).
    "fearful": EmotionPrototype({1: 1.25, 2: 0.85, 4: 0.45, 5: 1.0, 20: 1.0, 25: 0.4, 26: 0.4}, 1.2,
                                extra={10: 1.2, 15: 0.95, 16: 1.0, 20: 0.25}),
    # EMFACS anger, its open-mouthed variant (4+5+7+10+23+25/26): AU4 (brows lowered and
    # drawn together; the mesh engine renders it stronger, BROW_DRAW_GAIN), AU5+7 (the glare),
    # AU10 (the upper lip raised off the teeth), AU23, the jaw down (AU27 0.5 carries the
    # AU26 the seed's mouth column leaves at 0.3; AU16 0.3 lowers the lower lip off the
    # teeth) and AU15 0.6 (the corners turned down, so the bared teeth never read as a smile).
    # The closed, pressed mouth (AU17+24 and AU15 0.4) read disgusted on both smiling photos
    # (0.88 on smile_teeth) and neutral on the oldest portrait to the expression judge.
    # AU17 0.4 (EMFACS anger's chin raiser, 4+5+7+17+23) firms the lower lip under the open
    # mouth: grace_hopper's anger reads angry 0.38 (neutral 0.28 / angry 0.26 without; glasses
    # 0.62 -> 0.73). A narrow peak: at 0.3 and 0.5 she reads neutral again (0.33 / 0.36).
    "angry": EmotionPrototype({4: 0.7, 5: 0.8, 7: 0.8, 23: 1.0, 25: 0.3}, 1.2,
                              extra={10: 1.0, 15: 0.6, 16: 0.3, 17: 0.4, 27: 0.5}),
    # EMFACS disgust: AU9 (nose wrinkled), AU10 (upper lip raised), AU15/16, AU17, AU24.
    # AU10 1.35 and AU15+16 deepened (the upper lip high, the lower lip and corners down: the
    # squared mouth of disgust), AU20 0.5 widens it; the pressor AU24 is gone (it made a pout).
    # AU17 0.8 (EMFACS 9+17, 10+17: the chin pushes the lower lip back up, a smaller opening
    # than anger's): with 0.3 disgust read angry on grace_hopper and glasses (0.40, 0.34; 0.23
    # and 0.30 now) and 0.42 on smile_outdoor (0.64 now). The mesh engine also raises one side of
    # the upper lip more (its sneer, canvas.SNEER per unit AU9).
    "disgusted": EmotionPrototype({9: 1.0, 10: 1.0, 15: 0.8, 16: 0.6, 25: 0.2}, 1.1,
                                  extra={10: 0.35, 15: 0.5, 17: 0.8, 20: 0.5}),
}

# The seed's published table, kept here so a test can prove the read-outs reproduce it.
SEED_TABLE: dict[str, tuple[float, float, float, float]] = {
    # emotion: (mouth, eyes, eyebrows, expression_scale)
    "neutral": (0.0, 1.0, 0.0, 1.0),
    "happy": (0.6, 0.9, 0.2, 1.3),
    "sad": (0.0, 0.7, -0.5, 1.0),
    "surprised": (0.8, 1.0, 0.8, 1.5),
    "angry": (0.3, 0.8, -0.7, 1.2),
    "disgusted": (0.2, 0.6, -0.3, 1.1),
    "fearful": (0.4, 1.0, 0.6, 1.2),
}


def seed_columns(emotion: str) -> tuple[float, float, float, float]:
    """Read the seed's four columns back out of a prototype's base action units."""
    p = PROTOTYPES[emotion]
    au = lambda k: float(p.base.get(k, 0.0))  # noqa: E731
    mouth = max(au(25), au(26))
    eyes = min(1.0, max(0.0, 1 - 0.125 * au(6) - 0.25 * au(7) - 0.4 * au(9) - au(43)))
    brows = 0.5 * au(1) + 0.5 * au(2) - au(4) - 0.3 * au(9) + 0.25 * au(6)
    return (round(mouth, 6), round(eyes, 6), round(brows, 6), p.expression_scale)


def emotion_action_units(emotion: str, intensity: float) -> dict[int, float]:
    """Activations of one emotion at one intensity (0..1): base plus extra."""
    p = PROTOTYPES[emotion]
    out: dict[int, float] = {}
    for part in (p.base, p.extra):
        for au, value in part.items():
            onset = p.late_onset.get(au)
            gain = intensity if onset is None else max(0.0, (intensity - onset) / (1.0 - onset))
            if gain > 0:
                out[au] = out.get(au, 0.0) + gain * p.expression_scale * value
    return out


@dataclass(frozen=True)
class FaceActivation:
    """What an engine renders: action units plus the non-AU degrees of freedom.

    ``action_units`` values are >= 0 and normally <= 1.5 (the largest expression scale).
    ``eye_close_left/right`` are 0 open .. 1 closed and ``eye_widen`` 0..1 (both eyes),
    after combining AU5/AU43, the eyes_open/eye_* controls and idle blinks.
    """

    action_units: Mapping[int, float]
    eye_close_left: float
    eye_close_right: float
    eye_widen: float
    gaze_x: float
    gaze_y: float
    yaw: float
    pitch: float
    roll: float
    breath: float


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def activation(motion: Motion) -> FaceActivation:
    """Combine emotions, controls and idle motion into one FaceActivation."""
    aus: dict[int, float] = {}
    for name in EMOTIONS:
        w = float(motion.emotions.get(name, 0.0))
        if w > 0:
            for au, v in emotion_action_units(name, w).items():
                aus[au] = aus.get(au, 0.0) + v
    c = motion.controls.clamped()
    if c.smile > 0:
        aus[12] = aus.get(12, 0.0) + c.smile
        aus[6] = aus.get(6, 0.0) + 0.5 * c.smile
    elif c.smile < 0:
        aus[15] = aus.get(15, 0.0) - c.smile
    if c.mouth_open > 0:
        aus[25] = aus.get(25, 0.0) + c.mouth_open
        aus[26] = aus.get(26, 0.0) + c.mouth_open
    if c.brows > 0:
        aus[1] = aus.get(1, 0.0) + c.brows
        aus[2] = aus.get(2, 0.0) + c.brows
    elif c.brows < 0:
        aus[4] = aus.get(4, 0.0) - c.brows
    if motion.mouth is not None:
        aus = speech_action_units(aus, motion.mouth)
    aus = {k: _clip(v, 0.0, 1.5) for k, v in aus.items() if v > 1e-6}

    # Eye closure: AU43 and squints close, AU5 widens; controls and blinks on top.
    # AU7 narrows by 0.4 of the opening per unit (anger's tightened lids read at 1.0).
    squint = 0.15 * aus.get(6, 0.0) + 0.4 * aus.get(7, 0.0) + 0.25 * aus.get(9, 0.0)
    base_close = aus.get(43, 0.0) + squint - min(0.0, c.eyes_open)
    widen = _clip(aus.get(5, 0.0) + max(0.0, c.eyes_open), 0.0, 1.0)
    blink = _clip(motion.idle.blink, 0.0, 1.0)
    close_l = _clip(base_close - c.eye_left, 0.0, 1.0)
    close_r = _clip(base_close - c.eye_right, 0.0, 1.0)
    close_l = close_l + (1 - close_l) * blink
    close_r = close_r + (1 - close_r) * blink
    return FaceActivation(
        action_units=aus,
        eye_close_left=close_l,
        eye_close_right=close_r,
        eye_widen=widen * (1 - max(close_l, close_r)),
        gaze_x=c.gaze_x,
        gaze_y=c.gaze_y,
        yaw=_clip(c.yaw + motion.idle.yaw, -25.0, 25.0),
        pitch=_clip(c.pitch + motion.idle.pitch, -25.0, 25.0),
        roll=_clip(c.roll + motion.idle.roll, -25.0, 25.0),
        breath=_clip(motion.idle.breath, -1.0, 1.0),
    )
