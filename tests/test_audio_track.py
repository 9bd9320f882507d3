"""The viewer's audio track hands aiortc finished Opus packets: one canned packet for silence
(no encode, no executor hop), real encodes for speech; timestamps on the timeline's clock.
Real SpeechPlayer (on a stepped clock, analysis inline) and a real libopus decoder."""
from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np

from streamer.sessions.audio_track import FRAME_SAMPLES, SessionAudioTrack, silent_packet
from streamer.sessions.speech import SpeechPlayer
from streamer.sessions.speech_mouth import RATE


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _tone(seconds: float, hz: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def _decode(packets: list[av.Packet]) -> list[np.ndarray]:
    dec = av.CodecContext.create("libopus", "r")
    dec.format, dec.layout, dec.sample_rate = "s16", "stereo", RATE
    out = []
    for p in packets:
        q = av.Packet(bytes(p))
        q.pts, q.time_base = p.pts, fractions.Fraction(1, RATE)
        out.append(np.concatenate([f.to_ndarray().reshape(-1) for f in dec.decode(q)]))
    return out


def _pull(track: SessionAudioTrack, clock: Clock, n: int) -> list[av.Packet]:
    async def run() -> list[av.Packet]:
        got = []
        for _ in range(n):
            clock.t += FRAME_SAMPLES / RATE
            got.append(await track.recv())
        return got
    return asyncio.run(run())


def test_silence_is_canned_and_speech_is_encoded_on_the_timeline_clock():
    clock = Clock()
    player = SpeechPlayer(clock=clock)
    u = player.begin("a", RATE)  # fed before any loop runs: analysed inline
    player.feed(u, _tone(0.4))
    player.end(u)
    track = SessionAudioTrack(player)
    packets = _pull(track, clock, 60)  # 1.2 s: silence, 0.4 s of tone, silence

    assert [p.pts for p in packets] == [i * FRAME_SAMPLES for i in range(60)]
    assert all(p.time_base == fractions.Fraction(1, RATE) for p in packets)
    silent = [bytes(p) == silent_packet() for p in packets]
    assert silent[0] and silent[-1], "silence before and after the speech"
    assert track.encoded == silent.count(False) >= 18  # 0.4 s = 20 frames of sound
    assert track.frames_sent == 60

    pcm = _decode(packets)
    for i, (s, x) in enumerate(zip(silent, pcm)):
        if s and (i == 0 or silent[i - 1]):  # right after sound, the decoder's overlap tail
            assert not x.any(), "the canned packet decodes to digital silence"
    loud = np.concatenate([x for s, x in zip(silent, pcm) if not s]).astype(np.float64)
    assert np.sqrt(np.mean(loud ** 2)) > 0.1 * 32767  # the tone came through
    left = loud[0::2]
    spectrum = np.abs(np.fft.rfft(left))
    peak_hz = np.argmax(spectrum) * RATE / left.size
    assert abs(peak_hz - 440.0) < 10.0


def test_a_second_utterance_starts_on_a_fresh_encoder():
    clock = Clock()
    player = SpeechPlayer(clock=clock)
    for name in ("a", "b"):
        u = player.begin(name, RATE)
        player.feed(u, _tone(0.2))
        player.end(u)
        if name == "a":
            u_gap = player.begin("gap", RATE)  # 0.3 s of digital silence between them
            player.feed(u_gap, np.zeros(int(0.3 * RATE), np.int16))
            player.end(u_gap)
    track = SessionAudioTrack(player)
    packets = _pull(track, clock, 70)
    kinds = "".join("s" if bytes(p) == silent_packet() else "x" for p in packets)
    runs = [r for r in kinds.split("s") if r]
    assert len(runs) == 2, kinds  # two bursts of sound, silence (canned) between
    assert track.encoded == sum(len(r) for r in runs)
