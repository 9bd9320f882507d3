"""The speech timeline on a fake clock: order of events, no drift when the buffer runs dry,
the bound, interrupt; the loudness analyser; emotions kept while the mouth talks; file decoding."""
from __future__ import annotations

import io

import av
import numpy as np
import pytest

from avatar_testkit.speech import espeak
from engine.motion import Motion
from streamer.sessions.speech import SpeechError, SpeechPlayer
from streamer.sessions.speech_mouth import HOP, RATE
from streamer.sessions.speech_lipsync import LipSync
from streamer.sessions.speech_mouth import EnvelopeAnalyser, mouth_opening
from streamer.video.audio import AudioError, decode_audio


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _tone(seconds: float, rate: int = RATE, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def _player(**kw) -> tuple[SpeechPlayer, Clock, list[dict]]:
    clock = Clock()
    got: list[dict] = []
    return SpeechPlayer(on_event=got.append, clock=clock, **kw), clock, got


def _plain(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "pts_ms"} for e in events]


def _run(p: SpeechPlayer, clock: Clock, seconds: float, step: float = 0.02) -> None:
    end = clock.t + seconds
    while clock.t < end:
        clock.t += step
        p.advance()


def test_events_follow_the_timeline_and_durations_are_exact():
    p, clock, got = _player()
    u = p.begin("a", 16_000)
    p.feed(u, _tone(0.5, 16_000))
    p.end(u)
    assert got == []  # committed a lead ahead of now: nothing plays yet
    _run(p, clock, 0.3)
    assert _plain(got) == [{"type": "speech_started", "id": "a"}]
    _run(p, clock, 0.5)
    assert _plain(got)[-1] == {"type": "speech_ended", "id": "a", "duration_ms": 500,
                               "interrupted": False}
    # pts_ms: the media clock of frames; the utterance spans exactly its audio there
    assert got[-1]["pts_ms"] - got[0]["pts_ms"] == 500
    assert got[0]["pts_ms"] == u.start_pos / 48


def test_dry_buffer_rests_the_mouth_and_resumes_without_drift():
    p, clock, got = _player()
    u = p.begin("a", RATE)
    p.feed(u, _tone(0.2))
    _run(p, clock, 0.6)  # the 0.2 s played; the buffer ran dry mid-utterance
    assert p.pose_at(clock.t) is None  # resting
    first_end = p.commit_pos
    p.feed(u, _tone(0.2))
    p.end(u)
    # the rest starts a lead after now, never before it (no audio in the past, none skipped)
    assert p.commit_pos - 0.2 * RATE >= p.position(clock.t)
    assert p.commit_pos > first_end
    # every committed speech sample is exactly what was sent, in order
    _run(p, clock, 0.6)
    assert got[-1]["duration_ms"] == 400 and not got[-1]["interrupted"]
    played = p.read(p.position(clock.t) - int(1.1 * RATE), int(1.1 * RATE))
    nonzero = np.flatnonzero(played)
    speech = played[nonzero[0]:nonzero[-1] + 1]
    assert len(speech) > 0.4 * RATE  # a silent gap sits inside
    assert np.count_nonzero(speech == 0) > 0.05 * RATE


def test_audio_and_pose_share_one_position():
    """The pose of a position belongs to the samples at that position (the sync invariant)."""
    p, clock, _ = _player()
    u = p.begin("a", RATE)
    quiet, loud = np.zeros(int(0.3 * RATE), np.int16), _tone(0.3, amp=0.5)
    p.feed(u, np.concatenate([quiet, loud, quiet]))
    p.end(u)
    _run(p, clock, 0.7)
    assert u.end_pos is not None and u.end_pos - u.start_pos == int(0.9 * RATE)
    start = u.start_pos
    loud_pos = start + int(0.45 * RATE)
    quiet_pos = start + int(0.15 * RATE)
    t_loud = p.t0 + loud_pos / RATE
    t_quiet = p.t0 + quiet_pos / RATE
    assert np.abs(p.read(loud_pos, HOP)).mean() > 1000
    assert p.pose_at(t_loud).total() > 0.3
    assert p.pose_at(t_quiet).total() < 0.05


def test_bound_hits_once_and_memory_stays_bounded():
    p, clock, _ = _player(max_queued_s=5.0)
    u = p.begin("big", 16_000)
    chunk = _tone(1.0, 16_000)
    errors = 0
    for _ in range(600):  # ten minutes at once
        try:
            p.feed(u, chunk)
        except SpeechError as exc:
            assert exc.code == "speech_buffer_full"
            errors += 1
    assert errors == 1
    assert p.queued_seconds() <= 5.0


def test_interrupt_cuts_at_now_and_reports_every_utterance():
    p, clock, got = _player()
    a, b = p.begin("a", RATE), p.begin("b", RATE)
    p.feed(a, _tone(2.0))
    p.end(a)
    p.feed(b, _tone(1.0))
    p.end(b)
    _run(p, clock, 0.7)
    assert _plain(got) == [{"type": "speech_started", "id": "a"}]
    now_pos = p.position(clock.t)
    assert p.interrupt() == 2
    assert [e["type"] for e in got[1:]] == ["speech_ended", "speech_ended"]
    assert got[1]["id"] == "a" and got[1]["interrupted"] and 400 <= got[1]["duration_ms"] <= 700
    assert _plain(got)[2] == {"type": "speech_ended", "id": "b", "duration_ms": 0,
                              "interrupted": True}
    assert p.commit_pos <= now_pos + HOP  # nothing left to play after now
    assert not p.read(now_pos + HOP, 2 * HOP).any()
    assert p.pose_at(clock.t + 0.02) is None
    # the session goes on: a new utterance plays
    c = p.begin("c", RATE)
    p.feed(c, _tone(0.1))
    p.end(c)
    _run(p, clock, 0.5)
    assert got[-1]["id"] == "c" and not got[-1]["interrupted"]


def test_wrong_rate_is_refused():
    p, _, _ = _player()
    with pytest.raises(SpeechError):
        p.begin("x", 44_100)


def test_envelope_opens_with_speech_and_closes_in_silence():
    pcm = espeak("open wide, say ah", RATE).astype(np.float32) / 32768
    pcm = np.concatenate([np.zeros(RATE // 5, np.float32), pcm])  # it starts in silence
    a = EnvelopeAnalyser()
    poses = a.push(pcm) + a.flush()
    assert len(poses) == -(-len(pcm) // HOP)
    opening = np.array([mouth_opening(q) for q in poses])
    loud = np.sqrt(np.mean(pcm[:len(pcm) // HOP * HOP].reshape(-1, HOP) ** 2, axis=1))
    assert opening.max() > 0.8 and opening[:3].max() < 0.2
    assert np.corrcoef(opening[:len(loud)], loud)[0, 1] > 0.6


def test_emotions_stay_while_talking():
    p, clock, _ = _player()
    u = p.begin("a", RATE)
    p.feed(u, espeak("Ah, what a wonderful day.", RATE))
    p.end(u)
    happy = Motion.emotion("happy", 0.8)
    lips = LipSync()
    talking = []
    for _ in range(150):
        _run(p, clock, 0.02)
        m = lips.apply(happy, p, clock.t)
        assert m.emotions == happy.emotions and m.controls == happy.controls
        if m.mouth is not None:
            talking.append(m.mouth.total())
    assert talking and max(talking) > 0.5  # the happy face talks
    assert lips.apply(happy, p, clock.t + 5.0) == happy  # silent: untouched


def test_client_timings_replace_the_analysis():
    """A TTS service's timings win: a round mouth over silent audio where they say so."""
    from engine.speech.timings import parse_timings
    p, clock, _ = _player()
    timings = parse_timings([{"start_ms": 0, "end_ms": 400, "viseme": "round"},
                             {"start_ms": 400, "end_ms": 800, "phoneme": "AA"}])
    u = p.begin("t", 16_000, timings)
    p.feed(u, np.zeros(16_000, np.int16))  # 1 s of silence
    p.end(u)
    _run(p, clock, 1.5)
    at = lambda ms: p.pose_at(p.t0 + (u.start_pos / RATE) + ms / 1000)  # noqa: E731
    assert at(250).weight("round") > 0.5
    assert at(650).weight("open") > 0.5
    assert at(980).total() < 0.1


def _encode(pcm: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate if codec != "libopus" else 48_000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize("container,codec", [("wav", "pcm_s16le"), ("ogg", "libopus"),
                                             ("mp4", "aac"), ("mp3", "libmp3lame")])
def test_decode_common_formats(container, codec):
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder to make the test file")
    pcm = espeak("one two three", 24_000)
    data = _encode(pcm, 24_000, container, codec)
    out = decode_audio(data, 60.0)
    assert abs(len(out) / RATE - len(pcm) / 24_000) < 0.1
    assert np.abs(out).max() > 3000


def test_decode_refuses_garbage_and_long_files():
    with pytest.raises(AudioError) as bad:
        decode_audio(b"\x00garbage" * 100, 60.0)
    assert bad.value.code == "invalid_audio"
    with pytest.raises(AudioError) as long:
        decode_audio(_encode(_tone(3.0, 16_000), 16_000, "wav", "pcm_s16le"), 1.0)
    assert long.value.code == "audio_too_long"


def test_one_big_chunk_moves_the_mouth_like_small_ones():
    """Seconds of audio in one message must not freeze the mouth (the analyser is fed in
    small steps)."""
    pcm = espeak("Hello, my name is Grace. Open, close, pop, moon, feet.", 16_000)
    poses = []
    for chunks in ([pcm], np.array_split(pcm, len(pcm) // 1600)):
        p, clock, _ = _player()
        u = p.begin("a", 16_000)
        for ch in chunks:
            p.feed(u, ch)
        p.end(u)
        _run(p, clock, 0.5)
        start = u.start_pos
        seq = []
        while True:
            _run(p, clock, 0.01)
            q = p.pose_at(clock.t)
            if u.end_pos is not None and p.position(clock.t) > u.end_pos:
                break
            if p.position(clock.t) >= start:
                seq.append(q.weights if q is not None else (0.0,) * 5)
        poses.append(np.array(seq))
    big, small = poses
    n = min(len(big), len(small))
    assert big[:n].std(axis=0).sum() > 0.5 * small[:n].std(axis=0).sum()
    assert np.abs(big[:n] - small[:n]).mean() < 0.05
