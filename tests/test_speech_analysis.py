"""Audio -> visemes on espeak-ng speech, the timing path, and the streaming contract."""
from __future__ import annotations

import numpy as np
import pytest

from engine.speech.analysis import VisemeAnalyser, analyse
from engine.speech.timings import parse_timings, poses_from_timings
from engine.speech.visemes import VISEMES, MouthPose
from speech_audio import espeak, needs_espeak

FPS = 25.0


def dominant(p: MouthPose, floor: float = 0.3) -> str | None:
    i = int(np.argmax(p.weights))
    return VISEMES[i] if p.weights[i] >= floor else None


def share(poses: list[MouthPose], viseme: str) -> float:
    spoken = [p for p in poses if dominant(p) is not None]
    return sum(dominant(p) == viseme for p in spoken) / max(1, len(spoken))


@needs_espeak
@pytest.mark.parametrize("text,viseme", [("ooh", "round"), ("eee", "spread"), ("aah", "open")])
def test_vowels_give_their_viseme(text, viseme):
    pcm, rate = espeak(text)
    poses = analyse(pcm, rate, FPS)
    assert share(poses, viseme) >= 0.6, [dominant(p) for p in poses]


@needs_espeak
def test_mama_papa_closes_the_lips_between_vowels():
    pcm, rate = espeak("mama papa")
    seq = [dominant(p) for p in analyse(pcm, rate, FPS)]
    # At least three separate runs of closed lips (m, m, p, p), each between open vowels.
    runs, prev = 0, None
    for d in seq:
        if d == "closed" and prev != "closed":
            runs += 1
        prev = d
    assert runs >= 3, seq
    assert seq.count("open") >= 5, seq


@needs_espeak
def test_fee_vow_puts_the_lip_on_the_teeth():
    pcm, rate = espeak("fee vow")
    seq = [dominant(p) for p in analyse(pcm, rate, FPS)]
    assert "teeth_lip" in seq[:4], seq  # the f
    assert "spread" in seq and "open" in seq, seq


def test_silence_gives_nothing():
    rng = np.random.default_rng(1)
    quiet = (rng.standard_normal(48000) * 3).astype(np.int16)  # -80 dBFS noise, 1 s
    for pcm in (np.zeros(16000, np.int16), quiet):
        poses = analyse(pcm, 16000 if len(pcm) == 16000 else 48000, FPS)
        assert len(poses) == 25
        assert all(p.total() == 0.0 for p in poses)


@needs_espeak
def test_streaming_in_odd_chunks_keeps_frame_count_and_lookahead():
    pcm, rate = espeak("mama papa")
    offline = analyse(pcm, rate, FPS)
    an = VisemeAnalyser(rate, FPS, lookahead_ms=80)
    got: list[MouthPose] = []
    fed = 0
    sizes = [1, 77, 441, 1000, 3] * 1000
    for n in sizes:
        if fed >= len(pcm):
            break
        an.feed(pcm[fed:fed + n])
        fed += n
        while an.poses_ready():
            got.append(an.next_pose())
        # Look-ahead bound: every frame up to (fed audio - 100 ms) is out.
        assert an.frames_emitted >= int((fed / rate - 0.1) * FPS) - 1
    an.finish()
    got += an.drain()
    assert len(got) == len(offline) == round(len(pcm) / rate * FPS)
    seq = [dominant(p) for p in got]
    assert seq.count("closed") >= 2 and seq.count("open") >= 5, seq


def test_lookahead_is_bounded():
    with pytest.raises(ValueError):
        VisemeAnalyser(16000, 25, lookahead_ms=150)


def test_timings_override_with_phonemes_and_visemes():
    timings = [
        {"start_ms": 0, "end_ms": 200, "phoneme": "M"},
        {"start_ms": 200, "end_ms": 400, "phoneme": "ɑː"},
        {"start_ms": 400, "end_ms": 600, "viseme": "round"},
        {"start_ms": 600, "end_ms": 800, "viseme": "FF"},
        {"start_ms": 800, "end_ms": 1000, "phoneme": "IY1", "weight": 0.8},
    ]
    poses = poses_from_timings(timings, FPS, 1.2)
    assert len(poses) == 30
    mid = {k: dominant(poses[int(k * FPS / 1000) + 2]) for k in (100, 300, 500, 700, 900)}
    assert mid == {100: "closed", 300: "open", 500: "round", 700: "teeth_lip", 900: "spread"}
    assert poses[-1].total() < 0.05  # silence after the last timing
    # Smooth: no frame jumps from a full viseme to another full viseme.
    steps = [max(abs(a - b) for a, b in zip(p.weights, q.weights)) for p, q in zip(poses, poses[1:])]
    assert max(steps) < 0.95


@pytest.mark.parametrize("bad", [
    {"x": 1}, [{"start_ms": 0, "end_ms": 10}], [{"start_ms": 10, "end_ms": 0, "viseme": "open"}],
    [{"start_ms": 0, "end_ms": 10, "viseme": "smirk"}], [{"start_ms": "a", "end_ms": 1, "viseme": "open"}],
    [{"start_ms": 0, "end_ms": 10, "viseme": "open", "weight": 2}],
])
def test_bad_timings_say_why(bad):
    with pytest.raises(ValueError):
        parse_timings(bad)


@needs_espeak
def test_reset_starts_a_new_utterance_with_the_same_results():
    pcm, rate = espeak("mama papa")
    an = VisemeAnalyser(rate, FPS)
    first: list[MouthPose] = []
    an.feed(pcm[: len(pcm) // 2])
    first += an.drain()
    an.reset()  # interrupted half way: the next utterance starts afresh
    runs = []
    for _ in range(2):
        an.feed(pcm)
        an.finish()
        runs.append([dominant(p) for p in an.drain()])
        an.reset()
    # pocketsphinx's cepstral mean normalisation carries over between utterances, so the two
    # runs may differ in a frame or two; the shape of the utterance is the same.
    assert len(runs[0]) == len(runs[1]) == round(len(pcm) / rate * FPS)
    assert sum(a == b for a, b in zip(*runs)) >= 0.8 * len(runs[0]), runs
    assert all(r.count("closed") >= 2 for r in runs), runs


@needs_espeak
def test_memory_stays_bounded_on_a_long_stream():
    pcm, rate = espeak("hello mama, how are you today")
    an = VisemeAnalyser(rate, FPS)
    sizes = []
    for _ in range(12):  # about 25 s of speech, fed in 100 ms chunks, drained as it goes
        for i in range(0, len(pcm), rate // 10):
            an.feed(pcm[i:i + rate // 10])
            an.drain()
        sizes.append((len(an._features), len(an._phones.labels), an._phones.hops_in_utt))
    assert max(s[0] for s in sizes) <= 40 and max(s[1] for s in sizes) <= 40, sizes
    assert all(s[2] <= 3000 for s in sizes), sizes
