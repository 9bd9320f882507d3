"""DNS rebinding: only requests addressed to a name this server is known by get through.

A page on evil.example can make its name resolve to 127.0.0.1 and then call this server as
its own origin: `Origin` and `Host` both say evil.example, so the same-origin check passes.
`Host` is what gives it away. A request is served only when its Host is
- a loopback name (localhost, *.localhost: browsers never send those to a DNS server),
- an IP address literal (no DNS is involved, so nothing can be rebound; this covers the
  bound address and a server on 0.0.0.0 reached by its IP),
- the name the server was bound to (--host), or one listed with --allowed-host
  (LPA_ALLOWED_HOSTS), e.g. the public name a reverse proxy forwards.
Anything else gets 421 `host_not_allowed`, WebSocket upgrades included, before any handler.
A request with no Host header at all (HTTP/1.0 tools) is not a browser's and is served.
`--allowed-host '*'` turns the check off.
"""
from __future__ import annotations

import ipaddress
from typing import Awaitable, Callable, Iterable

from aiohttp import web

from streamer.errors import json_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HOSTS_ENV = "LPA_ALLOWED_HOSTS"  # comma-separated, joined with any --allowed-host
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def host_name(host_header: str) -> str:
    """The name part of a Host value: no port, no brackets, no trailing dot, lower case."""
    h = host_header.strip().lower()
    if h.startswith("["):  # [::1]:8001
        return h[1:].split("]", 1)[0]
    if h.count(":") == 1:
        h = h.rsplit(":", 1)[0]
    return h.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    def __init__(self, bound_host: str, allowed: Iterable[str]) -> None:
        names = [host_name(a) for a in allowed if a.strip()]
        self.any = "*" in names
        self.names = frozenset(n for n in names if n != "*") | {host_name(bound_host)}

    def allows(self, host_header: str | None) -> bool:
        if host_header is None or self.any:
            return True
        name = host_name(host_header)
        if not name:
            return False
        return (name in LOOPBACK_NAMES or name.endswith(".localhost") or _is_ip(name)
                or name in self.names)


def host_middleware(policy: HostPolicy) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not policy.allows(request.headers.get("Host")):
            return json_error(421, "host_not_allowed",
                              "this server does not answer to that Host name; its operator can "
                              "allow it with --allowed-host (see docs/security.md)")
        return await handler(request)

    return check_host
