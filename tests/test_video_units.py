"""streamer/video pieces without the server: audio decoding of every common format, the
emotion timeline, and chunked poses."""
from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from engine.speech.analysis import analyse
from streamer.video.audio import AudioError, decode_audio
from streamer.video.poses import PoseSource
from streamer.video.timeline import MotionTimeline, default_timeline, emotion_weights, parse_timeline

RATE = 44100


def tone(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * 330 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.int16)


def encode(pcm: np.ndarray, rate: int, container: str, codec: str, out_rate: int | None = None) -> bytes:
    """Audio file bytes made with PyAV's encoders (mp3, ogg/opus, m4a/aac, flac)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as box:
        stream = box.add_stream(codec, rate=out_rate or rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in stream.encode(frame):
            box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize("container,codec,out_rate", [
    ("mp3", "libmp3lame", None), ("ogg", "libopus", 48000), ("ipod", "aac", None), ("flac", "flac", None),
])
def test_common_formats_decode_to_48k_mono_of_the_right_length(container, codec, out_rate):
    pcm = tone(2.0)
    data = encode(pcm, RATE, container, codec, out_rate)
    got = decode_audio(data, 120.0)
    assert got.dtype == np.int16 and got.ndim == 1
    # Encoders pad (mp3/aac priming, opus pre-skip): within 60 ms of 2 s.
    assert abs(len(got) / 48000 - 2.0) < 0.06, len(got) / 48000
    assert np.abs(got).max() > 4000  # the sound survived


@pytest.mark.parametrize("data,why", [
    (b"", "empty"), (b"\x00" * 5000, "could not be decoded"), (b"RIFF....WAVEfmt ", "could not be decoded"),
])
def test_garbage_is_refused(data, why):
    with pytest.raises(AudioError, match=why):
        decode_audio(data, 120.0)


def test_too_long_is_refused_while_decoding():
    with pytest.raises(AudioError, match="longer"):
        decode_audio(encode(tone(3.0), RATE, "flac", "flac"), 2.0)


def test_timeline_eases_between_keyframes():
    tl = parse_timeline('[{"t_s": 0, "emotion": "neutral"}, {"t_s": 1, "emotion": "happy", "intensity": 0.8,'
                        ' "transition_s": 0.5}, {"t_s": 3, "emotion": "sad"}]')
    assert emotion_weights(tl, 0.5)["happy"] == 0.0
    assert 0.0 < emotion_weights(tl, 1.25)["happy"] < 0.8
    assert emotion_weights(tl, 2.0)["happy"] == pytest.approx(0.8)
    w = emotion_weights(tl, 3.2)
    assert 0 < w["sad"] < 0.7 and 0 < w["happy"] < 0.8  # cross-fade
    assert emotion_weights(tl, 5.0)["sad"] == pytest.approx(0.7) and emotion_weights(tl, 5.0)["happy"] == 0.0
    d = default_timeline("surprised", 1.0)
    assert emotion_weights(d, 0.0)["surprised"] == 0.0 and emotion_weights(d, 1.0)["surprised"] == 1.0


@pytest.mark.parametrize("text", [
    "[]", "{}", '[{"t_s": 0}]', '[{"t_s": -1, "emotion": "happy"}]', '[{"t_s": 0, "emotion": "happy", "intensity": 2}]',
    '[{"t_s": 2, "emotion": "happy"}, {"t_s": 1, "emotion": "sad"}]', '[{"t_s": true, "emotion": "happy"}]',
])
def test_bad_timelines_say_why(text):
    with pytest.raises(ValueError):
        parse_timeline(text)


def test_idle_blinks_happen_in_a_clip():
    tl = MotionTimeline(default_timeline("neutral", 0.0), 25.0)
    blinks = [tl.motion(k, None).idle.blink for k in range(25 * 12)]
    assert max(blinks) > 0.9 and sum(b > 0 for b in blinks) < 0.2 * len(blinks)


def test_chunked_poses_have_the_offline_count():
    pcm = tone(1.3, 48000)
    src = PoseSource(pcm, 48000, 25.0)
    got = []
    while len(got) < 40:
        got += src.take(8)
    offline = analyse(pcm, 48000, 25.0)
    assert len(offline) == round(1.3 * 25)
    assert sum(p is not None and p.total() > 0 for p in got[: len(offline)]) > 0.3 * len(offline)
    assert all(p.total() == 0 for p in got[len(offline):])  # past the end: a resting mouth
    assert PoseSource(None, 48000, 25.0).take(3) == [None, None, None]
