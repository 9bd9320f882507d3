"""Ask a viewer's browser to show each video frame as soon as it is decoded.

The RTP playout-delay header extension with min = max = 0 tells a libwebrtc receiver (Chromium,
measured) that the stream is interactive: it skips its smoothing render delay and hands each
frame to the compositor once decoded (bench/README.md, "Control-to-frame latency"). On a
loopback or LAN path there is no jitter to absorb, and a control should show at once.

aiortc neither negotiates this extension nor writes it, so for one video sender we (1) add it
to the transceiver's negotiated extensions when the offer carries it, with the offer's id,
and (2) give the sender a header-extension map that appends it to every packet. Offers
without it (aiortc, Firefox) are answered exactly as before.

The price of max = 0: libwebrtc clamps the delay its audio/video synchronisation asks of the
video to the frame's maximum playout delay, so with max = 0 the video is never held back to the
audio and speech plays behind the lips by the audio jitter buffer. So while the session speaks
(and a short hold after, so the value does not flap between words) the packets carry min = 0,
max = SYNC_MAX_MS instead: the synchronisation may then raise the video's minimum delay to the
audio's, which also takes the stream off the low-latency render path (libwebrtc uses that path
only while the minimum is 0). Silent again, min = max = 0.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpTransceiver
from aiortc import rtp
from aiortc.rtcrtpparameters import RTCRtpParameters

PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
# 12-bit minimum then 12-bit maximum delay, in 10 ms units: both 0.
ZERO_DELAY = b"\x00\x00\x00"
SYNC_MAX_MS = 500  # the most the video may be held back to match the audio while speaking
SPEECH_HOLD_S = 0.5  # keep the synced value this long after speech, across pauses between words
_SENDER_MAP = "_RTCRtpSender__rtp_header_extensions_map"  # RTCRtpSender's private map


def encode_delay(min_ms: int, max_ms: int) -> bytes:
    """The extension's 3 bytes: 12-bit minimum then 12-bit maximum, in 10 ms units."""
    lo, hi = min(min_ms // 10, 0xFFF), min(max_ms // 10, 0xFFF)
    return bytes([lo >> 4, ((lo & 0xF) << 4) | (hi >> 8), hi & 0xFF])


def decode_delay(value: bytes) -> tuple[int, int]:
    """(min_ms, max_ms) of the extension's 3 bytes."""
    bits = int.from_bytes(value[:3], "big")
    return (bits >> 12) * 10, (bits & 0xFFF) * 10


SYNCED_DELAY = encode_delay(0, SYNC_MAX_MS)


@dataclass
class SpeechHold:
    """True while ``speaking()`` is, and for ``hold_s`` after it last was (checked per packet,
    so it is cheap: one call and a clock read)."""

    speaking: Callable[[], bool]
    hold_s: float = SPEECH_HOLD_S
    clock: Callable[[], float] = time.monotonic
    _last: float | None = field(default=None, init=False)

    def __call__(self) -> bool:
        now = self.clock()
        if self.speaking():
            self._last = now
            return True
        return self._last is not None and now - self._last <= self.hold_s


class _PlayoutDelayMap(rtp.HeaderExtensionsMap):
    """aiortc's map, plus the playout-delay extension on every packet once negotiated."""

    def __init__(self, synced: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self.playout_delay_id: int | None = None
        self._synced = synced  # when true, let the browser hold video back to the audio

    def configure(self, parameters: RTCRtpParameters) -> None:
        super().configure(parameters)
        self.playout_delay_id = next((x.id for x in parameters.headerExtensions
                                      if x.uri == PLAYOUT_DELAY_URI), None)

    def set(self, values: rtp.HeaderExtensions) -> tuple[int, bytes]:
        profile, value = super().set(values)
        if self.playout_delay_id is None:
            return profile, value
        pairs = rtp.unpack_header_extensions(profile, value) if value else []
        delay = SYNCED_DELAY if self._synced is not None and self._synced() else ZERO_DELAY
        return rtp.pack_header_extensions(pairs + [(self.playout_delay_id, delay)])


def offered_id(offer_sdp: str, mid: str | None) -> int | None:
    """The id the offer gives the playout-delay extension in the m-section ``mid``."""
    section_mid, ext_id = None, None
    for line in offer_sdp.splitlines():
        if line.startswith("m="):
            if section_mid == mid and ext_id is not None:
                return ext_id
            section_mid, ext_id = None, None
        elif line.startswith("a=mid:"):
            section_mid = line[len("a=mid:"):].strip()
        elif line.startswith("a=extmap:") and line.split()[1:2] == [PLAYOUT_DELAY_URI]:
            try:
                ext_id = int(line[len("a=extmap:"):].split()[0].split("/")[0])
            except ValueError:
                ext_id = None
    return ext_id if section_mid == mid else None


def request_zero_playout_delay(transceiver: RTCRtpTransceiver, offer_sdp: str,
                               synced: Callable[[], bool] | None = None) -> bool:
    """Call after setRemoteDescription(offer), before createAnswer. True when negotiated.
    ``synced``: called per packet; while it returns True the packets carry min = 0,
    max = SYNC_MAX_MS (lip sync) instead of zero delay."""
    ext_id = offered_id(offer_sdp, transceiver.mid)
    if ext_id is None or not 1 <= ext_id <= 14:  # one-byte header ids only (RFC 8285)
        return False
    # aiortc has no public API for this: its private names, checked, so that another aiortc
    # version answers as before instead of failing the offer.
    if not (isinstance(getattr(transceiver, "_headerExtensions", None), list)
            and hasattr(transceiver.sender, _SENDER_MAP)):
        return False
    exts = transceiver._headerExtensions  # noqa: SLF001
    if any(x.uri == PLAYOUT_DELAY_URI for x in exts):
        return True
    exts.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=PLAYOUT_DELAY_URI))
    # The sender configures its map from these parameters when the transport connects.
    setattr(transceiver.sender, _SENDER_MAP, _PlayoutDelayMap(synced))
    return True
