"""Live speech end to end: the real server, a WebSocket client sending espeak-ng speech, and a
real aiortc peer receiving the session's video and Opus audio.

Timing is measured in media time: every received frame is placed on the sender's clock via
RTCP sender reports (avatar_testkit.media_clock), as a browser does for lip sync, so a slow
decode on this machine cannot change the result. Mouth opening is FaceMesh's inner-lip gap
measured on the received frames (avatar_testkit.speech.mouth_opening).
"""
from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from avatar_testkit.media_clock import AVReceiver
from avatar_testkit.pyclient import SessionClient
from avatar_testkit.wait import wait_until
from avatar_testkit.speech import (ENVELOPE_HOP_S, best_lag, collapse_silence, espeak, locate,
                                   mouth_opening,
                                   resample,
                                   rms_envelope, timeline_envelope)
from streamer.sessions import registry_of

OPTIONS = {"idle_motion": "false", "size": "256", "fps": "25"}
SENTENCE = ("Hello, I am your avatar. Today we talk about the weather, "
            "papa, mama, and a bowl of soup.")
CHUNK_BYTES = 3200  # 100 ms at 16 kHz


async def _speak(c: SessionClient, uid: str, pcm: np.ndarray, rate: int) -> None:
    await c.send({"type": "speak", "id": uid, "format": "pcm_s16le", "sample_rate": rate,
                  "channels": 1})
    data = pcm.astype("<i2").tobytes()
    for i in range(0, len(data), CHUNK_BYTES):  # all at once: faster than real time
        await c.send(data[i:i + CHUNK_BYTES])
    await c.send({"type": "speak_end", "id": uid})


async def _session(http: aiohttp.ClientSession, server, image: bytes
                   ) -> tuple[SessionClient, AVReceiver]:
    c = await SessionClient.create(http, server.base_url, image, **OPTIONS)
    await c.connect()
    rx = AVReceiver()
    await rx.negotiate(c)
    await rx.wait_until(lambda: len(rx.tracks["video"].frames) >= 10
                        and len(rx.tracks["audio"].frames) >= 10)
    return c, rx


def _analyse(rx: AVReceiver, t_from: float, t_to: float) -> dict:
    """Audio envelope and mouth opening on one 10 ms media-time grid."""
    at, chunks = rx.audio_timeline()
    vt, frames = rx.video_frames()
    grid = np.arange(t_from, t_to, ENVELOPE_HOP_S)
    env = timeline_envelope(at, chunks, grid)
    sel = [i for i, t in enumerate(vt) if t_from - 0.1 <= t <= t_to + 0.1]
    opening = np.array([mouth_opening(frames[i]) for i in sel])
    ok = np.isfinite(opening)
    mouth = np.interp(grid, vt[sel][ok], opening[ok])
    return {"grid": grid, "env": env, "mouth": mouth, "vt": vt[sel][ok], "open": opening[ok]}


async def test_speech_plays_on_the_audio_track_and_the_lips_follow_in_sync(server, astronaut_jpeg):
    pcm = espeak(SENTENCE, 16_000)
    async with aiohttp.ClientSession() as http:
        c, rx = await _session(http, server, astronaut_jpeg)
        try:
            await _speak(c, "u1", pcm, 16_000)
            started = await c.wait_for("speech_started", timeout=30, id="u1")
            ended = await c.wait_for("speech_ended", timeout=60 + len(pcm) / 16_000, id="u1")
            # a loaded machine may analyse slower than real time: the stream then rests and
            # resumes (gaps), never drifts
            gaps_ms = ended["pts_ms"] - started["pts_ms"] - ended["duration_ms"]
            assert not ended["interrupted"]
            assert abs(ended["duration_ms"] - len(pcm) / 16) <= 20
            await rx.wait_reports(2)  # every frame so far can be placed in media time
        finally:
            await rx.close()
            await c.close()
    # The audio track carries the speech: the received samples, laid out by RTP timestamp,
    # match the envelope of what was sent (silences collapsed: gaps from a dry buffer are
    # allowed, see above).
    placed, p0 = rx.audio_placed()
    sent_env = rms_envelope(resample(pcm, 16_000, 48_000).astype(np.float32) / 32768, 48_000)
    recv_env = rms_envelope(placed, 48_000)
    floor = 0.01 * sent_env.max()
    # (both ways: the collapse also copes with bins that sit right at the floor)
    corr_audio = max(locate(sent_env, recv_env)[1],
                     locate(collapse_silence(sent_env, floor), collapse_silence(recv_env, floor))[1])
    assert corr_audio > 0.9, f"the received audio does not carry the speech (r={corr_audio:.2f})"
    audible = np.flatnonzero(recv_env >= floor)
    first, last = int(audible[0]), int(audible[-1])
    assert first >= 30, "the audio was not silent before the speech"
    sent_audible = np.flatnonzero(sent_env >= floor)
    sent_span_ms = (sent_audible[-1] - sent_audible[0]) * ENVELOPE_HOP_S * 1000
    recv_span_ms = (last - first) * ENVELOPE_HOP_S * 1000
    assert abs(recv_span_ms - sent_span_ms - gaps_ms) < 60, "the stream drifted"
    # where the speech sits in media time (the sender's clock, via RTCP sender reports)
    tr = rx.tracks["audio"]
    t0 = tr.media_time(p0 + first * 480)
    t1 = tr.media_time(p0 + (last + 1) * 480)

    w = _analyse(rx, t0 - 0.3, t1 + 0.3)
    # The amplitude envelope: RMS smoothed over 90 ms (a syllable-rate contour, not the
    # pitch ripple; the jaw cannot follow faster either).
    env = np.convolve(w["env"], np.ones(9) / 9, mode="same")
    max_lag = int(0.3 / ENVELOPE_HOP_S)
    lag, corr = best_lag(env, w["mouth"], max_lag)
    lag_ms = lag * ENVELOPE_HOP_S * 1000  # > 0: the mouth moves after the sound (audio ahead)
    print(f"audio corr {corr_audio:.2f}; mouth~envelope r={corr:.2f} at {lag_ms:+.0f} ms "
          f"(+: audio ahead); {len(w['open'])} frames measured; gaps {gaps_ms:.0f} ms")
    rest = float(np.median(w["open"][w["vt"] < t0]))
    assert np.percentile(w["open"], 90) > rest + 0.02, f"the mouth never opened (rest {rest:.3f})"
    assert corr >= 0.6, f"mouth opening follows the audio envelope with r={corr:.2f} only"
    assert -125 <= lag_ms <= 45, f"audio-to-lips offset {lag_ms:+.0f} ms is outside BT.1359"


async def test_interrupt_silences_audio_and_rests_the_mouth(server, astronaut_jpeg):
    pcm = espeak(SENTENCE + " " + SENTENCE, 16_000)
    async with aiohttp.ClientSession() as http:
        c, rx = await _session(http, server, astronaut_jpeg)
        try:
            await _speak(c, "long", pcm, 16_000)
            await c.wait_for("speech_started", timeout=30, id="long")
            # let about 1.5 s of speech arrive at the receiver (its own media time)
            n0 = len(rx.tracks["audio"].frames)
            await rx.wait_until(lambda: len(rx.tracks["audio"].frames) >= n0 + 75, timeout=60)
            await c.send({"type": "interrupt"})
            ended = await c.wait_for("speech_ended", timeout=30, id="long")
            assert ended["interrupted"] and ended["duration_ms"] < len(pcm) / 16 - 1000
            n1 = len(rx.tracks["audio"].frames)
            # 2 s more: a face at rest is re-sent only as the encoder's 0.25 s heartbeat
            # (unchanged frames are not encoded again), so the rest needs a longer look.
            await rx.wait_until(lambda: len(rx.tracks["audio"].frames) >= n1 + 100, timeout=60)
            await rx.wait_reports(2)
        finally:
            await rx.close()
            await c.close()
    # The sound stops at the cut: far less speech arrives than was sent, and after its last
    # audible moment the capture runs on (over a second) in silence.
    placed, p0 = rx.audio_placed()
    sent = rms_envelope(resample(pcm, 16_000, 48_000).astype(np.float32) / 32768, 48_000)
    recv = rms_envelope(placed, 48_000)
    floor = 0.01 * sent.max()
    audible = np.flatnonzero(recv >= floor)
    assert audible.size > 50, "no speech arrived before the interrupt"
    assert audible.size < np.count_nonzero(sent >= floor) - 100, "the speech was never cut"
    last = int(audible[-1])
    assert len(recv) - last > 150, "the capture must run on past the cut"
    tr = rx.tracks["audio"]
    t_cut = tr.media_time(p0 + (last + 1) * 480)  # the sound's last moment
    k = int(audible[0])
    t_speech = tr.media_time(p0 + k * 480)
    a = _analyse(rx, t_speech - 1.0, t_cut + 1.8)
    rest = float(np.median(a["open"][a["vt"] < t_speech - 0.1][-10:]))
    talking = float(np.percentile(a["open"][(a["vt"] > t_speech) & (a["vt"] < t_cut)], 90))
    assert talking > rest, "the mouth never moved before the interrupt"
    threshold = rest + 0.25 * (talking - rest)
    after = a["vt"] >= t_cut
    assert after.sum() >= 5
    # the first frame from which the mouth stays at rest
    open_after = np.flatnonzero(after & (a["open"] > threshold))
    t_rest = t_cut if open_after.size == 0 else a["vt"][open_after[-1] + 1]
    print(f"mouth rests {1000 * (t_rest - t_cut):.0f} ms after the audio stops (media time)")
    assert t_rest - t_cut <= 0.150, \
        f"the mouth rested {1000 * (t_rest - t_cut):.0f} ms after the sound stopped"


async def test_bad_speech_input_gets_errors_and_the_session_goes_on(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **OPTIONS)
        await c.connect()
        n = len(c.events)
        await c.send({"type": "speak", "id": "x", "format": "pcm_s16le", "sample_rate": 44100,
                      "channels": 1})
        assert (await c.wait_for("error", after=n))["code"] == "invalid_value"
        n = len(c.events)
        await c.send({"type": "speak", "id": "t", "format": "pcm_s16le", "sample_rate": 16000,
                      "channels": 1, "timings": [{"start_ms": 5, "end_ms": 1}]})
        assert (await c.wait_for("error", after=n))["code"] == "invalid_value"
        n = len(c.events)
        await c.send(b"\x00\x01" * 100)  # binary with no speak header
        assert (await c.wait_for("error", after=n))["code"] == "binary_not_supported"
        n = len(c.events)
        await c.send({"type": "speak", "id": "odd", "format": "pcm_s16le", "sample_rate": 16000,
                      "channels": 1})
        await c.send(b"\x00" * 301)
        err = await c.wait_for("error", after=n)
        assert err["code"] == "invalid_audio" and err["id"] == "odd"
        await c.send({"type": "speak_end", "id": "odd"})
        await c.wait_for("speech_ended", id="odd", timeout=30)

        # ten minutes of audio at once: the bound, not memory; one error for the utterance
        n = len(c.events)
        await c.send({"type": "speak", "id": "big", "format": "pcm_s16le", "sample_rate": 16000,
                      "channels": 1})
        chunk = (np.sin(np.arange(16000 * 20) / 5) * 8000).astype("<i2").tobytes()  # 20 s
        for _ in range(30):
            await c.send(chunk)
        await c.send({"type": "speak_end", "id": "big"})
        await c.send({"type": "ping", "t": 1, "id": "p"})
        await c.wait_for("pong", id="p", timeout=30)
        errors = [e for e in c.events[n:] if e["type"] == "error"]
        assert [e["code"] for e in errors] == ["speech_buffer_full"]
        s = registry_of(server.state).get(c.session_id)
        assert s.speech.queued_seconds() <= s.speech.max_queued_s
        await c.send({"type": "interrupt"})
        ended = await c.wait_for("speech_ended", id="big", timeout=30)
        assert ended["interrupted"]

        # a garbage file over REST: 400 and an error event; a real one plays
        n = len(c.events)
        url = f"{server.base_url}/sessions/{c.session_id}/speech"
        form = aiohttp.FormData()
        form.add_field("audio", b"not audio at all" * 50, filename="x.mp3")
        async with http.post(url, data=form) as r:
            body = await r.json()
            assert r.status == 400 and body["error"]["code"] == "invalid_audio"
        assert (await c.wait_for("error", after=n))["request_type"] == "speech"
        wav = _wav(espeak("Thank you.", 24_000), 24_000)
        form = aiohttp.FormData()
        form.add_field("audio", wav, filename="thanks.wav", content_type="audio/wav")
        form.add_field("id", "thanks")
        async with http.post(url, data=form) as r:
            body = await r.json()
            assert r.status == 202, body
            assert body["id"] == "thanks" and body["duration_ms"] > 300
        await c.wait_for("speech_started", id="thanks", timeout=30)
        ended = await c.wait_for("speech_ended", id="thanks", timeout=30)
        assert not ended["interrupted"] and abs(ended["duration_ms"] - body["duration_ms"]) <= 20
        # the session goes on
        await c.send({"type": "set_emotion", "emotion": "happy", "id": "h"})
        assert (await c.wait_for("state", id="h"))["target"]["emotions"]["happy"] == 1.0
        assert c.close_code is None
        await c.close()
        async with http.delete(f"{server.base_url}/sessions/{c.session_id}") as r:
            assert r.status == 200


async def test_websocket_frames_carry_presentation_times_on_the_speech_clock(server,
                                                                          astronaut_jpeg):
    """A client without WebRTC plays its own audio: frame timestamps and speech_started.pts_ms
    share one clock, and the frames whose time falls inside the speech show an open mouth."""
    import io
    import struct

    from PIL import Image
    pcm = espeak("Papa, open a bottle of apple juice.", 24_000)
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **OPTIONS)
        await c.connect()
        await c.send({"type": "subscribe_frames", "format": "jpeg", "quality": 90,
                      "timestamps": True})
        await c.binary.get()
        await _speak(c, "ws", pcm, 24_000)
        start = await c.wait_for("speech_started", id="ws", timeout=30)
        # emotions keep applying while it talks: a happy face that talks
        await c.send({"type": "set_emotion", "emotion": "happy", "transition_ms": 0, "id": "h"})
        await c.wait_for("state", id="h")
        s = registry_of(server.state).get(c.session_id)
        both = await wait_until(lambda: s.last_motion is not None and s.last_motion.mouth
                                is not None and s.last_motion.emotions["happy"] == 1.0,
                                timeout=30)
        assert both
        end = await c.wait_for("speech_ended", id="ws", timeout=60)
        await asyncio.sleep(0.5)  # a few silent frames after it
        frames = []
        while not c.binary.empty():
            _, data = c.binary.get_nowait()
            (pts,) = struct.unpack("<d", data[:8])
            frames.append((pts, np.asarray(Image.open(io.BytesIO(data[8:])).convert("RGB"))))
        await c.close()
        async with http.delete(f"{server.base_url}/sessions/{c.session_id}") as r:
            assert r.status == 200
    assert abs(end["pts_ms"] - start["pts_ms"] - len(pcm) / 24) <= 20
    pts = np.array([p for p, _ in frames])
    assert np.all(np.diff(pts) > 0), "frame timestamps must increase"
    inside = [mouth_opening(f) for p, f in frames if start["pts_ms"] + 100 < p < end["pts_ms"] - 100]
    outside = [mouth_opening(f) for p, f in frames if p > end["pts_ms"] + 150]
    assert len(inside) >= 10 and outside
    assert np.nanmax(inside) > 2 * np.nanmedian(outside) + 0.02, (inside, outside)


async def test_audio_slower_than_real_time_rests_and_resumes(server, astronaut_jpeg):
    """Half real-time input: the buffer runs dry again and again; the utterance pauses and
    resumes (its span on the media clock grows) but every sample plays exactly once."""
    pcm = espeak("One, two, three, four.", 16_000)
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **OPTIONS)
        await c.connect()
        await c.send({"type": "speak", "id": "slow", "format": "pcm_s16le", "sample_rate": 16000,
                      "channels": 1})
        data = pcm.astype("<i2").tobytes()
        step = 3200  # 100 ms of audio ...
        for i in range(0, len(data), step):
            await c.send(data[i:i + step])
            await asyncio.sleep(0.2)  # ... every 200 ms
        await c.send({"type": "speak_end", "id": "slow"})
        started = await c.wait_for("speech_started", id="slow", timeout=30)
        ended = await c.wait_for("speech_ended", id="slow", timeout=60)
        await c.close()
        async with http.delete(f"{server.base_url}/sessions/{c.session_id}") as r:
            assert r.status == 200
    assert not ended["interrupted"]
    assert abs(ended["duration_ms"] - len(pcm) / 16) <= 20  # all of it played, once
    span = ended["pts_ms"] - started["pts_ms"]
    assert span > ended["duration_ms"] + 300, "the dry buffer never paused the utterance"


def _wav(pcm: np.ndarray, rate: int) -> bytes:
    import io
    import wave
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(divide="ignore", invalid="ignore"):
        yield
