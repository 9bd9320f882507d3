"""POST /render/video against the real server and mesh engine; clips decoded with PyAV and the
mouth measured by re-detecting landmarks on the decoded frames."""
from __future__ import annotations

import asyncio
import io
import json
import time

import aiohttp
import av
import numpy as np
import pytest

from avatar_testkit.pyclient import portrait_form as form
from engine.landmarks import detect_landmarks
from speech_audio import espeak, needs_espeak, wav_bytes
from streamer.http import video as video_mod

FPS = 25


@pytest.fixture(scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def video_form(image: bytes, audio: bytes | None = None, audio_name: str = "speech.wav", **fields) -> aiohttp.FormData:
    f = form(image, **fields)
    if audio is not None:
        f.add_field("audio", audio, filename=audio_name, content_type="application/octet-stream")
    return f


def decode_clip(data: bytes) -> tuple[list[np.ndarray], float, dict]:
    """(rgb frames, video duration s, {stream kind: codec name}); audio duration in the dict."""
    with av.open(io.BytesIO(data)) as box:
        codecs = {s.type: s.codec_context.name for s in box.streams}
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    with av.open(io.BytesIO(data)) as box:
        samples, rate = 0, 48000
        if box.streams.audio:
            for f in box.decode(audio=0):
                samples += f.samples
                rate = f.sample_rate
        codecs["audio_s"] = samples / rate
    return frames, len(frames) / FPS, codecs


def mouth_opening(frame: np.ndarray) -> float:
    """Inner-lip gap at mid-mouth over the inter-ocular distance."""
    p = detect_landmarks(frame).points[:, :2].astype(np.float64)
    d = float(np.linalg.norm(p[468] - p[473]))
    return float(np.linalg.norm(p[14] - p[13])) / d


def _envelope(x: np.ndarray, rate: int) -> np.ndarray:
    """Mean absolute amplitude over 10 ms, one value per ms."""
    x = np.abs(x.astype(np.float64))
    win = rate // 100
    e = np.convolve(x, np.ones(win) / win, "same")[:: rate // 1000]
    return e - e.mean()


def audio_lag_ms(clip: bytes, pcm: np.ndarray, rate: int) -> int:
    """How far the clip's decoded sound lags the uploaded audio, in ms (positive: later)."""
    with av.open(io.BytesIO(clip)) as box:
        out = np.concatenate([f.to_ndarray().reshape(-1) for f in box.decode(audio=0)])
        out_rate = box.streams.audio[0].codec_context.sample_rate
    ref_16k = np.interp(np.arange(0, len(pcm), rate / 16000), np.arange(len(pcm)), pcm)
    out_16k = np.interp(np.arange(0, len(out), out_rate / 16000), np.arange(len(out)), out)
    a, b = _envelope(ref_16k, 16000), _envelope(out_16k, 16000)
    n = min(len(a), len(b))
    lags = list(range(-100, 101))
    score = [float(np.dot(a[max(0, -lag):n - max(0, lag)], b[max(0, lag):n - max(0, -lag)])) for lag in lags]
    return lags[int(np.argmax(score))]


def speech_clip() -> tuple[np.ndarray, int, float, float]:
    """0.8 s silence, speech, 1.2 s silence at 22.05 kHz: (pcm, rate, speech start s, end s)."""
    speech, rate = espeak("hello mama, how are you today")
    nz = np.nonzero(np.abs(speech) > 300)[0]
    speech = speech[nz[0]:nz[-1] + 1]
    pad_a, pad_b = np.zeros(int(0.8 * rate), np.int16), np.zeros(int(1.2 * rate), np.int16)
    pcm = np.concatenate([pad_a, speech, pad_b])
    return pcm, rate, 0.8, 0.8 + len(speech) / rate


@needs_espeak
async def test_clip_with_speech_is_synced_and_the_mouth_follows(server, http, grace_hopper_jpeg):
    pcm, rate, s0, s1 = speech_clip()
    async with http.post(server.base_url + "/render/video",
                         data=video_form(grace_hopper_jpeg, wav_bytes(pcm, rate), emotion="happy",
                                         intensity="0.5")) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    duration = len(pcm) / rate
    assert body["format"] == "mp4" and body["audio"] is True and body["lip_source"] == "audio"
    assert body["frames"] == round(duration * FPS)
    assert abs(body["duration_ms"] - duration * 1000) < 1000 / FPS
    async with http.get(server.base_url + "/output/" + body["filename"]) as r:
        assert r.status == 200 and r.content_type == "video/mp4"
        data = await r.read()
    frames, video_s, codecs = decode_clip(data)
    assert codecs["video"] == "h264" and codecs["audio"] == "aac"
    assert len(frames) == body["frames"]
    assert abs(video_s - duration) <= 1 / FPS
    assert abs(codecs["audio_s"] - duration) <= 1 / FPS + 0.03  # AAC pads to whole 21 ms frames
    # The sound starts where the picture starts: envelope cross-correlation, 1 ms steps.
    assert abs(audio_lag_ms(data, pcm, rate)) <= 10
    opening = np.array([mouth_opening(f) for f in frames])
    t = np.arange(len(frames)) / FPS
    during = opening[(t > s0 + 0.1) & (t < s1 - 0.1)]
    # Silence: after the ease-in, and after the last syllable has released.
    rest = opening[((t > 0.65) & (t < s0 - 0.1)) | (t > s1 + 0.4)]
    assert during.max() > rest.max() + 0.08, (during.round(3), rest.round(3))
    assert during.std() > 2 * rest.std() + 0.01, (during.round(3), rest.round(3))  # it moves
    assert rest.max() - rest.min() < 0.04, rest.round(3)  # and rests


async def test_silent_clip_webm_bytes_ease_in_with_blinks(server, http, grace_hopper_jpeg):
    async with http.post(server.base_url + "/render/video",
                         data=video_form(grace_hopper_jpeg, emotion="surprised", intensity="1",
                                         duration_s="2", output_format="webm"),
                         headers={"Accept": "video/webm"}) as r:
        assert r.status == 200, await r.text()
        assert r.content_type == "video/webm"
        assert r.headers["X-Frames"] == "50"
        data = await r.read()
    frames, video_s, codecs = decode_clip(data)
    assert codecs["video"] == "vp8" and "audio" not in codecs
    assert len(frames) == 50
    first, last = mouth_opening(frames[0]), mouth_opening(frames[-1])
    assert last > first + 0.1  # eased from neutral into surprise's open mouth


async def test_timings_drive_the_mouth(server, http, grace_hopper_jpeg):
    timings = [{"start_ms": 400, "end_ms": 800, "viseme": "open"}]
    async with http.post(server.base_url + "/render/video",
                         data=video_form(grace_hopper_jpeg, duration_s="1.2", timings=json.dumps(timings)),
                         headers={"Accept": "video/mp4"}) as r:
        assert r.status == 200, await r.text()
        data = await r.read()
    frames, _, _ = decode_clip(data)
    o = [mouth_opening(frames[k]) for k in (5, 15, 28)]  # 0.2 s, 0.6 s, 1.12 s
    assert o[1] > o[0] + 0.1 and o[1] > o[2] + 0.1, o


def _tone_wav(seconds: float, rate: int = 8000) -> bytes:
    return wav_bytes(np.zeros(int(seconds * rate), np.int16), rate)


@pytest.mark.parametrize("fields,audio,status,code", [
    ({"fps": "0"}, None, 400, "invalid_fps"),
    ({"fps": "abc"}, None, 400, "invalid_fps"),
    ({"output_format": "avi"}, None, 400, "invalid_output_format"),
    ({"duration_s": "10000"}, None, 400, "invalid_duration_s"),
    ({"duration_s": "1"}, b"RIFF", 400, "invalid_duration_s"),
    ({}, b"this is not audio at all" * 100, 400, "invalid_audio"),
    ({}, b"", 400, "invalid_audio"),
    ({"emotion_timeline": "[{\"t_s\": 0, \"emotion\": \"smug\"}]"}, None, 400, "invalid_emotion_timeline"),
    ({"emotion_timeline": "nope"}, None, 400, "invalid_emotion_timeline"),
    ({"timings": "[{\"start_ms\": 0}]"}, None, 400, "invalid_timings"),
    ({"emotion": "smug"}, None, 400, "invalid_emotion"),
])
async def test_bad_input_gets_json_errors(server, http, grace_hopper_jpeg, fields, audio, status, code):
    async with http.post(server.base_url + "/render/video",
                         data=video_form(grace_hopper_jpeg, audio, **fields)) as r:
        assert r.status == status, await r.text()
        body = await r.json()
    assert body["error"]["code"] == code and body["error"]["message"]


async def test_limits_on_audio_length_and_size(server, http, grace_hopper_jpeg, monkeypatch):
    async with http.post(server.base_url + "/render/video",
                         data=video_form(grace_hopper_jpeg, _tone_wav(video_mod.MAX_DURATION_S + 5))) as r:
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "audio_too_long"
    monkeypatch.setattr(video_mod, "MAX_AUDIO_BYTES", 10_000)
    async with http.post(server.base_url + "/render/video",
                         data=video_form(grace_hopper_jpeg, _tone_wav(2.0))) as r:
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "audio_too_large"
    # The server keeps serving.
    async with http.post(server.base_url + "/render/video",
                         data=video_form(grace_hopper_jpeg, duration_s="0.2")) as r:
        assert r.status == 200


async def _batch_counts(http: aiohttp.ClientSession, base_url: str) -> dict[str, float]:
    """Engine render calls so far, all and those of at most 8 frames (GET /metrics)."""
    async with http.get(base_url + "/metrics") as r:
        text = await r.text()
    out = {}
    for line in text.splitlines():
        if line.startswith('liveportrait_engine_batch_size_bucket{le="8.0"}'):
            out["le8"] = float(line.split()[-1])
        elif line.startswith("liveportrait_engine_batch_size_count"):
            out["count"] = float(line.split()[-1])
    return out


async def test_a_long_render_does_not_starve_a_live_session(server, http, grace_hopper_jpeg):
    from avatar_testkit.pyclient import SessionClient

    c = await SessionClient.create(http, server.base_url, grace_hopper_jpeg, fps="10", size="256",
                                   idle_motion="false")
    try:
        await c.connect()
        await c.send({"type": "subscribe_frames", "format": "jpeg", "quality": 60})
        await asyncio.wait_for(c.binary.get(), 10)  # the session is streaming
        before = await _batch_counts(http, server.base_url)
        t0 = time.monotonic()
        async with http.post(server.base_url + "/render/video",
                             data=video_form(grace_hopper_jpeg, duration_s="8", emotion="happy"),
                             headers={"Accept": "video/mp4"}) as r:
            assert r.status == 200, await r.text()
            await r.read()
        t1 = time.monotonic()
        stamps = [t0]
        while not c.binary.empty():
            t, _ = c.binary.get_nowait()
            if t0 <= t <= t1:
                stamps.append(t)
        stamps.append(t1)
        after = await _batch_counts(http, server.base_url)
        # The clip's 200 frames went to the engine in calls of at most 8 frames (so a session's
        # frame waits for one chunk at most), and the session's frames kept coming meanwhile.
        calls = after["count"] - before["count"]
        assert calls >= 200 // video_mod.CHUNK_FRAMES, (before, after)
        assert after["le8"] - before["le8"] == calls, (before, after)
        assert len(stamps) - 2 >= 3, (len(stamps), t1 - t0)
    finally:
        await http.delete(server.base_url + "/sessions/" + c.session_id)
