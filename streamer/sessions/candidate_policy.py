"""Checks on what a client's WebRTC signalling may contain, applied before aiortc/aioice.

Candidates (trickled, or inside an offer) decide where the server sends packets.
A remote candidate makes aioice send STUN checks to its address, so a hostile client could
point the server at addresses it should never talk to. Accepted: unicast IP literals
(loopback, private or public) and browsers' mDNS names (``<uuid>.local``), ports 1..65535,
UDP or TCP. Refused: unspecified (0.0.0.0, ::), broadcast, multicast, link-local, reserved
ranges, other host names (no DNS lookups on a client's behalf), zone ids, bad ports.
"""
from __future__ import annotations

import ipaddress
import re

_MDNS_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.local$")
_PROTOCOLS = ("udp", "tcp")
_TYPES = ("host", "srflx", "prflx", "relay")


def _address_problem(host: str) -> str | None:
    if "%" in host:
        return "addresses with a zone id are not accepted"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if len(host) <= 253 and _MDNS_NAME.match(host):
            return None
        return f"address {host[:64]!r} is neither an IP address nor an mDNS .local name"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return f"address {ip} is unspecified"
    if ip.is_loopback:
        return None  # ::1 sits inside a "reserved" block, but loopback is always fine
    if ip.is_multicast:
        return f"address {ip} is multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return f"address {ip} is broadcast"
    if ip.is_link_local:
        return f"address {ip} is link-local"
    if ip.is_reserved:
        return f"address {ip} is reserved"
    return None


def candidate_problem(host: str, port: int, protocol: str, kind: str) -> str | None:
    """Why this remote candidate is refused, or None when it may be added."""
    if protocol.lower() not in _PROTOCOLS:
        return f"protocol {protocol[:16]!r} is not udp or tcp"
    if kind not in _TYPES:
        return f"candidate type {kind[:16]!r} is not one of {', '.join(_TYPES)}"
    if not 1 <= port <= 65535:
        return f"port {port} is outside 1..65535"
    return _address_problem(host)


def offer_candidates_problem(sdp: str) -> str | None:
    """The first refused ``a=candidate:`` line of an offer (aiortc adds them all as remote
    candidates), or None. Lines aiortc cannot parse are left to aiortc's own error."""
    from aiortc.sdp import candidate_from_sdp

    for line in sdp.splitlines():
        if not line.startswith("a=candidate:"):
            continue
        try:
            c = candidate_from_sdp(line[len("a=candidate:"):])
        except Exception:  # noqa: BLE001 - aiortc reports unparsable lines itself
            continue
        problem = candidate_problem(c.ip, c.port, c.protocol, c.type)
        if problem is not None:
            return f"offer candidate refused: {problem}"
    return None


_DIRECTIONS = ("a=sendrecv", "a=recvonly", "a=sendonly", "a=inactive")


def offer_problem(sdp: str) -> str | None:
    """Why a client's offer is refused before aiortc applies it, or None.

    aiortc answers an offer with no DTLS fingerprint and then fails inside its connect task
    (an unretrieved AssertionError), and it answers a send-only video offer with a viewer that
    can never receive; both are refused here, as are odd candidates inside the offer."""
    lines = sdp.splitlines()
    if not any(ln.startswith("a=fingerprint:") for ln in lines):
        return "the offer has no DTLS fingerprint (a=fingerprint)"
    session_dir = "a=sendrecv"
    sections: list[list[str]] = []
    for ln in lines:
        if ln.startswith("m="):
            sections.append([ln])
        elif sections:
            sections[-1].append(ln)
        elif ln in _DIRECTIONS:
            session_dir = ln
    receivable = False
    for sec in sections:
        if not sec[0].startswith("m=video "):
            continue
        direction = next((ln for ln in sec if ln in _DIRECTIONS), session_dir)
        receivable = receivable or direction in ("a=recvonly", "a=sendrecv")
    if not receivable:
        return "the offer needs a video m-line the client can receive (recvonly or sendrecv)"
    return offer_candidates_problem(sdp)
