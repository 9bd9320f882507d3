"""A small Python client for sessions: the WebSocket protocol plus an aiortc receiver.

Used by the tests and bench/sessions_bench.py, and usable from any asyncio program:

    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, "http://127.0.0.1:8001", open("me.jpg", "rb").read())
        await c.connect()
        await c.start_video()                      # WebRTC; or c.send({"type": "subscribe_frames"})
        frame = await c.next_video_frame()          # (arrival time, HxWx3 RGB array)
        await c.send({"type": "set_emotion", "emotion": "happy", "intensity": 1})
        await c.close()
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


def portrait_form(image: bytes, **fields: Any) -> aiohttp.FormData:
    """The multipart body of /render, /render/batch and POST /sessions: the portrait plus fields
    (a list value repeats the field, as /render/batch accepts for `emotions`)."""
    form = aiohttp.FormData()
    form.add_field("source_image", image, filename="portrait.jpg", content_type="image/jpeg")
    for name, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            form.add_field(name, str(v))
    return form


@dataclass
class SessionClient:
    http: aiohttp.ClientSession
    info: dict  # the POST /sessions answer
    ws: aiohttp.ClientWebSocketResponse | None = None
    events: list[dict] = field(default_factory=list)
    binary: "asyncio.Queue[tuple[float, bytes]]" = field(default_factory=lambda: asyncio.Queue(1000))
    video: "asyncio.Queue[tuple[float, np.ndarray]]" = field(default_factory=lambda: asyncio.Queue(2000))
    pc: RTCPeerConnection | None = None
    close_code: int | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @staticmethod
    async def create(http: aiohttp.ClientSession, base_url: str, image: bytes,
                     **options: Any) -> "SessionClient":
        async with http.post(base_url + "/sessions", data=portrait_form(image, **options)) as r:
            body = await r.json()
            if r.status != 201:
                raise RuntimeError(f"POST /sessions -> {r.status}: {body}")
        return SessionClient(http, body)

    @property
    def session_id(self) -> str:
        return self.info["session_id"]

    async def connect(self) -> dict:
        self.ws = await self.http.ws_connect(self.info["ws_url"], max_msg_size=0)
        self._tasks.append(asyncio.get_running_loop().create_task(self._read()))
        return await self.wait_for("hello")

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(msg.data))
            elif msg.type == aiohttp.WSMsgType.BINARY:
                if self.binary.full():
                    self.binary.get_nowait()
                self.binary.put_nowait((time.monotonic(), msg.data))
            self._changed.set()
        self.close_code = self.ws.close_code
        self._changed.set()

    async def send(self, message: dict | str | bytes) -> None:
        assert self.ws is not None
        if isinstance(message, dict):
            await self.ws.send_str(json.dumps(message))
        elif isinstance(message, str):
            await self.ws.send_str(message)
        else:
            await self.ws.send_bytes(message)

    async def wait_for(self, type_: str, timeout: float = 5.0, after: int = 0, **match: Any) -> dict:
        """The first event of this type (and matching fields) at index >= after."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events[after:]:
                if ev.get("type") == type_ and all(ev.get(k) == v for k, v in match.items()):
                    return ev
            left = deadline - time.monotonic()
            if left <= 0 or self.close_code is not None:
                raise TimeoutError(f"no {type_!r} event (got {[e.get('type') for e in self.events]},"
                                   f" close code {self.close_code})")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=left)
            except asyncio.TimeoutError:
                pass

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        deadline = time.monotonic() + timeout
        while self.close_code is None and time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
        return self.close_code

    async def start_video(self, timeout: float = 10.0) -> None:
        """Negotiate one WebRTC viewer; decoded frames land in ``self.video``."""
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        got_track: asyncio.Future = asyncio.get_running_loop().create_future()

        @self.pc.on("track")
        def _on_track(track: Any) -> None:
            if not got_track.done():
                got_track.set_result(track)

        await self.negotiate(timeout)
        track = await asyncio.wait_for(got_track, timeout)
        self._tasks.append(asyncio.get_running_loop().create_task(self._pull(track)))

    async def negotiate(self, timeout: float = 10.0) -> None:
        """Offer ``self.pc`` (its transceivers already added) over the WebSocket and apply the
        server's answer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        n = len(self.events)
        await self.send({"type": "offer", "sdp": self.pc.localDescription.sdp})
        answer = await self.wait_for("answer", timeout=timeout, after=n)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def _pull(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                arr = frame.to_ndarray(format="rgb24")
                if self.video.full():
                    self.video.get_nowait()
                self.video.put_nowait((time.monotonic(), arr))
        except MediaStreamError:
            return

    async def next_video_frame(self, timeout: float = 5.0) -> tuple[float, np.ndarray]:
        return await asyncio.wait_for(self.video.get(), timeout)

    def drain_video(self) -> int:
        n = 0
        while not self.video.empty():
            self.video.get_nowait()
            n += 1
        return n

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


