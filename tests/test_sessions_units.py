"""Pure parts of sessions: message validation, easing toward targets, idle motion."""
from __future__ import annotations

import json
import random

import pytest

from engine.motion import CONTROL_RANGES, EMOTIONS
from streamer.sessions.idle import BLINK_S, IdleAnimator, blink_amount
from streamer.sessions.messages import (MAX_TEXT_BYTES, MessageError, SetTarget, SubscribeFrames,
                                        parse_message)
from streamer.sessions.motion_state import MotionState


def _parse(obj: object, fps: int = 25):
    return parse_message(json.dumps(obj) if not isinstance(obj, str) else obj, fps)


def test_set_emotion_defaults_and_id():
    m = _parse({"type": "set_emotion", "emotion": "happy", "id": 5})
    assert isinstance(m, SetTarget) and m.id == 5
    assert m.emotions == {e: (1.0 if e == "happy" else 0.0) for e in EMOTIONS}
    assert m.transition_ms == 250 and m.controls == {}
    neutral = _parse({"type": "set_emotion", "emotion": "neutral", "intensity": 0.3})
    assert not any(neutral.emotions.values())


def test_set_controls_only_names_given_controls():
    m = _parse({"type": "set_controls", "yaw": -20, "gaze_x": 0.5, "transition_ms": 0})
    assert m.emotions is None and m.controls == {"yaw": -20.0, "gaze_x": 0.5}
    for name, r in CONTROL_RANGES.items():
        with pytest.raises(MessageError) as e:
            _parse({"type": "set_controls", name: r.high + 0.01})
        assert e.value.code == "invalid_value" and name in e.value.message


@pytest.mark.parametrize("obj,code", [
    ({"type": "set_emotion", "emotion": "happy", "transition_ms": 10001}, "invalid_value"),
    ({"type": "set_emotion", "emotion": "happy", "intensity": True}, "invalid_value"),
    ({"type": "set_emotions", "weights": {"happy": -0.1}}, "invalid_value"),
    ({"type": "set_emotions"}, "invalid_message"),
    ({"type": "subscribe_frames", "quality": 50.5}, "invalid_value"),
    ({"type": "ping", "t": "soon"}, "invalid_value"),
    ({"type": 3}, "invalid_message"),
    ('"just a string"', "invalid_message"),
    ("{" * 100000, "invalid_json"),
])
def test_rejections(obj, code):
    with pytest.raises(MessageError) as e:
        _parse(obj)
    assert e.value.code == code


def test_size_limit_counts_utf8_bytes():
    text = json.dumps({"type": "ping", "pad": "é" * (MAX_TEXT_BYTES // 2)}, ensure_ascii=False)
    assert len(text) < MAX_TEXT_BYTES < len(text.encode())
    with pytest.raises(MessageError) as e:
        parse_message(text, 25)
    assert e.value.code == "message_too_large"


def test_subscribe_fps_bounded_by_session_fps():
    assert _parse({"type": "subscribe_frames"}, fps=10) == SubscribeFrames("jpeg", 80, 10.0)
    with pytest.raises(MessageError):
        _parse({"type": "subscribe_frames", "fps": 11}, fps=10)


def test_easing_reaches_target_and_restarts_from_current():
    ms = MotionState()
    ms.set_target(0.0, None, {"yaw": 10.0}, 1000)
    ms.advance(0.5)
    assert ms.current_controls["yaw"] == pytest.approx(5.0)  # smoothstep is symmetric
    ms.advance(0.25)
    assert 0 < ms.current_controls["yaw"] < 2.5  # eases in
    ms.advance(1.0)
    assert ms.current_controls["yaw"] == 10.0
    ms.set_target(1.0, {"happy": 1.0}, {}, 0)  # transition 0: immediately there
    assert ms.current_emotions["happy"] == 1.0 and ms.current_controls["yaw"] == 10.0
    ms.set_target(2.0, None, {"yaw": -10.0}, 400)
    ms.advance(2.1)
    mid = ms.current_controls["yaw"]
    ms.set_target(2.1, None, {"yaw": 0.0}, 400)  # a newer target wins, starting from `mid`
    ms.advance(2.1)
    assert ms.current_controls["yaw"] == pytest.approx(mid)
    ms.advance(3.0)
    assert ms.current_controls["yaw"] == 0.0
    assert ms.target_dict()["emotions"]["happy"] == 1.0


def test_blinks_every_2_to_6_seconds_with_sway_and_breath():
    anim = IdleAnimator(random.Random(1))
    starts, prev, yaws, breaths = [], 0.0, [], []
    t = 0.0
    while t < 120:
        st = anim.state(t)
        if st.blink > 0 and prev == 0:
            starts.append(t)
        prev = st.blink
        yaws.append(st.yaw)
        breaths.append(st.breath)
        t += 0.01
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(starts) >= 15
    assert all(2.0 <= g <= 6.0 + BLINK_S + 0.02 for g in gaps), gaps
    assert max(abs(y) for y in yaws) <= 2.2 and max(yaws) - min(yaws) > 1.0  # slight sway
    assert max(breaths) > 0.9 and min(breaths) < -0.9
    assert blink_amount(0.0) == 0 and blink_amount(0.09) == 1.0 and blink_amount(BLINK_S) == 0


def test_headroom_reads_while_encoder_threads_report():
    """Encodes report their CPU time from their own threads while /health reads the load on
    the event loop: reading must never trip over a window another thread is appending to
    (it did: "deque mutated during iteration", a 500 from /health)."""
    import sys
    import threading

    from streamer.sessions.headroom import Headroom

    room = Headroom(encode_parallelism=1)
    for _ in range(5000):  # a full window, so each read walks a long deque
        room.add_encode(1e-6)
    stop = threading.Event()

    def report() -> None:
        while not stop.is_set():
            room.add_encode(1e-6)
            room.add_slots(1, 0)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, as a busy server does
    writer = threading.Thread(target=report)
    writer.start()
    try:
        for _ in range(300):
            assert room.load() >= 0 and room.drop_share() >= 0
            room.admit(1, 0)
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(old)
