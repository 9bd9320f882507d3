"""Ask a viewer's browser to show each video frame as soon as it is decoded.

The RTP playout-delay header extension with min = max = 0 tells a libwebrtc receiver (Chromium,
measured) that the stream is interactive: it skips its smoothing render delay and hands each
frame to the compositor once decoded (bench/README.md, "Control-to-frame latency"). On a
loopback or LAN path there is no jitter to absorb, and a control should show at once.

aiortc neither negotiates this extension nor writes it, so for one video sender we (1) add it
to the transceiver's negotiated extensions when the offer carries it, with the offer's id,
and (2) give the sender a header-extension map that appends it to every packet. Offers
without it (aiortc, Firefox) are answered exactly as before.
"""
from __future__ import annotations

from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpTransceiver
from aiortc import rtp
from aiortc.rtcrtpparameters import RTCRtpParameters

PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
# 12-bit minimum then 12-bit maximum delay, in 10 ms units: both 0.
ZERO_DELAY = b"\x00\x00\x00"
_SENDER_MAP = "_RTCRtpSender__rtp_header_extensions_map"  # RTCRtpSender's private map


class _PlayoutDelayMap(rtp.HeaderExtensionsMap):
    """aiortc's map, plus the playout-delay extension on every packet once negotiated."""

    def __init__(self) -> None:
        super().__init__()
        self.playout_delay_id: int | None = None

    def configure(self, parameters: RTCRtpParameters) -> None:
        super().configure(parameters)
        self.playout_delay_id = next((x.id for x in parameters.headerExtensions
                                      if x.uri == PLAYOUT_DELAY_URI), None)

    def set(self, values: rtp.HeaderExtensions) -> tuple[int, bytes]:
        profile, value = super().set(values)
        if self.playout_delay_id is None:
            return profile, value
        pairs = rtp.unpack_header_extensions(profile, value) if value else []
        return rtp.pack_header_extensions(pairs + [(self.playout_delay_id, ZERO_DELAY)])


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


def request_zero_playout_delay(transceiver: RTCRtpTransceiver, offer_sdp: str) -> bool:
    """Call after setRemoteDescription(offer), before createAnswer. True when negotiated."""
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
    setattr(transceiver.sender, _SENDER_MAP, _PlayoutDelayMap())
    return True
