"""Issue 15 item 7: viewers that can never connect do not linger.

A real aiortc peer makes a real offer, stripped of its candidates, so the server's ICE agent
has nobody to check and can never succeed. With end-of-candidates (`candidate: null`) the
server's agent fails at once; without it, the connect deadline drops the viewer. Either way
the client hears `viewer_closed`, the viewer slot is free again, and the session stops
rendering for it.
"""
from __future__ import annotations

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection

from avatar_testkit.pyclient import SessionClient
from avatar_testkit.wait import wait_until
from streamer.config import SessionLimits

SMALL = {"size": "256", "idle_motion": "false"}


async def _doomed_offer(client: SessionClient, offer_id: int) -> RTCPeerConnection:
    """Send a real offer whose ICE can never succeed (no candidates); return the client's pc."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = "\r\n".join(ln for ln in pc.localDescription.sdp.split("\r\n")
                      if not ln.startswith("a=candidate:") and ln != "a=end-of-candidates")
    n = len(client.events)
    await client.send({"type": "offer", "sdp": sdp, "id": offer_id})
    await client.wait_for("answer", timeout=30, after=n, id=offer_id)
    return pc


async def test_end_of_candidates_fails_the_viewer_and_frees_its_slot(start_server, astronaut_jpeg):
    server = await start_server(sessions=SessionLimits(max_viewers_per_socket=1,
                                                       viewer_connect_timeout_s=600.0))
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        await c.connect()
        session = server.state.sessions.get(c.session_id)
        pc = await _doomed_offer(c, 1)
        try:
            assert len(session.viewers) == 1
            await c.send({"type": "candidate", "candidate": None})
            ev = await c.wait_for("viewer_closed", timeout=60)
            assert ev == {"type": "viewer_closed", "reason": "failed", "offer_id": 1}
            await wait_until(lambda: not session.viewers, timeout=30)
            # The slot is free: the next offer on the same socket is answered, not rate_limited.
            pc2 = await _doomed_offer(c, 2)
            await pc2.close()
        finally:
            await pc.close()
            await c.close()


async def test_a_viewer_that_never_connects_is_dropped_at_the_deadline(start_server, astronaut_jpeg):
    server = await start_server(sessions=SessionLimits(viewer_connect_timeout_s=1.0))
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        await c.connect()
        session = server.state.sessions.get(c.session_id)
        await wait_until(lambda: session.frames_rendered > 0, timeout=60)
        pc = await _doomed_offer(c, "v1")  # and no end-of-candidates: ICE just waits
        try:
            assert session.wants_frames()  # rendering for the viewer ...
            ev = await c.wait_for("viewer_closed", timeout=60)
            assert ev["reason"] == "connect_timeout" and ev["offer_id"] == "v1"
            await wait_until(lambda: not session.viewers, timeout=30)
            assert not session.wants_frames()  # ... and no longer
            reg = server.state.sessions
            async with http.get(f"{server.base_url}/sessions/{c.session_id}") as r:
                assert (await r.json())["viewers"] == 0
            assert reg.metrics.viewers._value.get() == 0
            assert c.close_code is None  # the socket itself lives on
        finally:
            await pc.close()
            await c.close()


async def test_a_viewer_that_connects_is_kept_past_the_deadline(start_server, astronaut_jpeg):
    server = await start_server(sessions=SessionLimits(viewer_connect_timeout_s=2.0))
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        await c.connect()
        session = server.state.sessions.get(c.session_id)
        await c.start_video(timeout=60)
        await c.next_video_frame(timeout=60)
        viewer = next(iter(session.viewers))
        await wait_until(lambda: viewer.connected, timeout=60)
        # Past the deadline (counted in frames received, which takes well over 2 s at 25 fps).
        for _ in range(75):
            await c.next_video_frame(timeout=60)
        assert viewer in session.viewers and viewer.close_reason is None
        assert not any(e["type"] == "viewer_closed" for e in c.events)
        await c.close()
