"""Mesh engine: visemes become mouth shapes, measured on re-detected landmarks (units of the
inter-ocular distance d; detector noise on these renders is at most 0.02, see test_mesh_engine)."""
from __future__ import annotations

import pytest

from engine.facs import activation
from engine.motion import Motion
from engine.speech.visemes import MouthPose
from test_mesh_engine import delta, engine, neutral, photo  # noqa: F401 (fixtures)


def talk(viseme: str, w: float = 1.0, **kw) -> Motion:
    return Motion(mouth=MouthPose.of(**{viseme: w}), **kw)


def test_mouth_opening_follows_the_open_weight(engine, photo, neutral):
    apart = [delta(engine, photo, neutral, talk("open", w))["lips_apart"] for w in (0.3, 0.6, 1.0)]
    assert apart[0] > 0.04 and apart[1] > apart[0] + 0.03 and apart[2] > apart[1] + 0.03, apart


def test_round_narrows_and_spread_widens(engine, photo, neutral):
    assert delta(engine, photo, neutral, talk("round"))["mouth_width"] < -0.04
    d = delta(engine, photo, neutral, talk("spread"))
    assert d["mouth_width"] > 0.04
    assert d["lips_apart"] < 0.1


def test_closed_and_teeth_lip_keep_the_mouth_nearly_shut(engine, photo, neutral):
    assert abs(delta(engine, photo, neutral, talk("closed"))["lips_apart"]) < 0.02
    tl = delta(engine, photo, neutral, talk("teeth_lip"))["lips_apart"]
    assert 0.0 <= tl < 0.08


def test_closed_shuts_a_surprised_mouth(engine, photo, neutral):
    open_ = delta(engine, photo, neutral, Motion(emotions={"surprised": 1.0}))["lips_apart"]
    shut = delta(engine, photo, neutral, talk("closed", emotions={"surprised": 1.0}))["lips_apart"]
    assert open_ > 0.15 and shut < 0.03


def test_a_happy_face_talks_happily(engine, photo, neutral):
    happy = delta(engine, photo, neutral, talk("open", emotions={"happy": 1.0}))
    plain = delta(engine, photo, neutral, talk("open"))
    assert happy["corners_y"] < plain["corners_y"] - 0.03  # corners up while talking
    assert happy["lips_apart"] > 0.15


def test_no_speech_renders_as_before():
    m = Motion(emotions={"happy": 0.7})
    assert activation(m) == activation(Motion(emotions={"happy": 0.7}, mouth=None))
    assert activation(m).action_units != activation(talk("open", emotions={"happy": 0.7})).action_units


@pytest.mark.parametrize("viseme", ["closed", "open", "round", "spread", "teeth_lip"])
def test_zero_weight_is_the_emotion_alone(viseme):
    m = Motion(emotions={"sad": 1.0})
    assert activation(m).action_units == activation(talk(viseme, 0.0, emotions={"sad": 1.0})).action_units
