"""API keys, session tokens and per-key limits: one middleware in front of every handler.

With no keys configured the server is open (the loopback default) and nothing here gets in
the way. With keys, every route needs `Authorization: Bearer KEY` except /health, the static
demo page and /openapi.json (nothing secret there; the page can do nothing without a key or
token), and /metrics unless `metrics_auth`. Which routes are open, metered or open to a
session token is the route table's business (streamer/routes.py). A session token, issued
by `POST /sessions` made with a key, opens only that session: its WebSocket and
GET/DELETE /sessions/{id}. A session belongs to the key that created it: other keys get 404
for it and do not see it in the list.

Keys and tokens are compared as SHA-256 digests with hmac.compare_digest, every key every
time, so neither the timing nor the length of a guess tells anything. They are never logged.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterator
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from streamer.access.rate_limit import BucketTable, retry_after_header
from streamer.app_state import AppState
from streamer.config import AccessConfig
from streamer.errors import ApiError
from streamer.routes import METERED, METRICS_PATH, OPEN_PATHS, TOKEN, route_template

log = logging.getLogger("streamer")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN_PROTOCOL_PREFIX = "lpa-token."
REALM = 'Bearer realm="liveportrait-avatar"'


@dataclass(frozen=True)
class Principal:
    kind: str  # "anonymous" (no keys configured, or an open route) | "key" | "session"
    caller: str  # a stable id safe to log: "anonymous", "key-1a2b3c4d", "session:<id>"
    session_id: str | None = None


ANONYMOUS = Principal("anonymous", "anonymous")
PRINCIPAL = web.RequestKey("lpa.principal", Principal)  # request[PRINCIPAL]: who is calling
WS_PROTOCOL = web.RequestKey("lpa.ws_protocol", str)  # the subprotocol to echo, if any


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def key_id(key: str) -> str:
    """A short, non-reversible name for a key (bucket names, limits, logs)."""
    return "key-" + hashlib.sha256(b"lpa-key-id:" + key.encode("utf-8", "surrogatepass")).hexdigest()[:8]


@dataclass
class SessionGrant:
    token_digest: bytes
    owner: str  # the key id that created the session


@dataclass
class AccessControl:
    config: AccessConfig
    upload_bytes: int  # the global limits, for anonymous callers
    image_pixels: int
    keys: list[tuple[bytes, str]] = field(default_factory=list)  # (digest, key id)
    grants: dict[str, SessionGrant] = field(default_factory=dict)  # by session id
    pending: dict[str, int] = field(default_factory=dict)  # POST /sessions in flight, by key id
    buckets: BucketTable | None = None

    def __post_init__(self) -> None:
        self.keys = [(_digest(k), key_id(k)) for k in self.config.api_keys]
        if self.config.rate_limit_rps:
            self.buckets = BucketTable(self.config.rate_limit_rps, max(1, self.config.rate_burst))

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def match_key(self, candidate: str) -> str | None:
        """The key id when `candidate` is a configured key. Compares against every key."""
        d = _digest(candidate)
        found = None
        for digest, kid in self.keys:
            if hmac.compare_digest(d, digest):
                found = kid
        return found

    def token_session(self, candidate: str) -> str | None:
        """The session a token belongs to (for a clear 403 instead of 401), or None."""
        d = _digest(candidate)
        found = None
        for sid, grant in self.grants.items():
            if hmac.compare_digest(d, grant.token_digest):
                found = sid
        return found

    def issue_token(self, session_id: str, owner: str, alive: Callable[[str], bool]) -> str:
        self.prune(alive)
        token = secrets.token_urlsafe(32)
        self.grants[session_id] = SessionGrant(_digest(token), owner)
        return token

    def prune(self, alive: Callable[[str], bool]) -> None:
        for sid in [s for s in self.grants if not alive(s)]:
            del self.grants[sid]

    def owns(self, owner: str, session_id: str) -> bool:
        """Sessions belong to the key that created them; other keys neither see nor touch them."""
        grant = self.grants.get(session_id)
        return grant is None or grant.owner == owner

    def visible(self, principal: "Principal", session_id: str) -> bool:
        if principal.kind == "key":
            return self.owns(principal.caller, session_id)
        if principal.kind == "session":
            return principal.session_id == session_id
        return True

    def sessions_of(self, owner: str, alive: Callable[[str], bool]) -> int:
        self.prune(alive)
        return sum(1 for g in self.grants.values() if g.owner == owner) + self.pending.get(owner, 0)

    def upload_limit(self, principal: Principal) -> int:
        if principal.kind == "key" and self.config.key_max_upload_mb is not None:
            return int(self.config.key_max_upload_mb * 1024 * 1024)
        return self.upload_bytes

    def pixel_limit(self, principal: Principal) -> int:
        if principal.kind == "key" and self.config.key_max_image_pixels is not None:
            return self.config.key_max_image_pixels
        return self.image_pixels


def principal_of(request: web.Request) -> Principal:
    return request.get(PRINCIPAL, ANONYMOUS)


def upload_limit(request: web.Request, state: AppState) -> int:
    return state.access.upload_limit(principal_of(request))


def pixel_limit(request: web.Request, state: AppState) -> int:
    return state.access.pixel_limit(principal_of(request))


# ---- reading credentials ----

def bearer_of(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    scheme, _, cred = value.partition(" ")
    if scheme.lower() != "bearer" or not cred.strip():
        return None
    return cred.strip()


def ws_token_of(request: web.Request) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo) from `?token=` or `Sec-WebSocket-Protocol: lpa-token.<t>`."""
    for item in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = item.strip()
        if proto.startswith(TOKEN_PROTOCOL_PREFIX) and len(proto) > len(TOKEN_PROTOCOL_PREFIX):
            return proto[len(TOKEN_PROTOCOL_PREFIX):], proto
    token = request.query.get("token")
    return (token or None), None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": REALM})


def _authenticate(request: web.Request, ac: AccessControl, route: str) -> Principal:
    if not ac.enabled or route in OPEN_PATHS:
        return ANONYMOUS
    if route == METRICS_PATH and not ac.config.metrics_auth:
        return ANONYMOUS
    bearer = bearer_of(request)
    if bearer is not None:
        kid = ac.match_key(bearer)
        if kid is not None:
            sid = request.match_info.get("session_id")
            if sid is not None and not ac.owns(kid, sid):
                # Another key's session: answer as if it did not exist (no id probing).
                raise ApiError(404, "not_found", "no such session")
            return Principal("key", kid)
    token, proto = bearer, None
    if route == "/sessions/{session_id}/ws":
        ws_token, proto = ws_token_of(request)
        token = ws_token or bearer
    if token is None:
        raise _unauthorized("this server needs an API key: send 'Authorization: Bearer <key>'")
    owner_session = ac.token_session(token)
    if owner_session is None:
        raise _unauthorized("the API key or session token is not valid")
    sid = request.match_info.get("session_id")
    if (request.method, route) not in TOKEN or sid != owner_session:
        raise ApiError(403, "forbidden", "a session token opens only its own session "
                       "(its WebSocket, GET and DELETE /sessions/{id}); use an API key for the rest")
    if proto is not None:
        request[WS_PROTOCOL] = proto
    return Principal("session", f"session:{sid}", sid)


def _alive(state: AppState) -> Callable[[str], bool]:
    return lambda sid: state.sessions.get(sid) is not None


def session_visible(request: web.Request, state: AppState, session_id: str) -> bool:
    """Whether the caller may see this session in GET /sessions."""
    return state.access.visible(principal_of(request), session_id)


def issue_session_token(request: web.Request, state: AppState, session_id: str) -> dict:
    """Fields to add to the POST /sessions answer: a token when a key created the session."""
    p = principal_of(request)
    if p.kind != "key":
        return {}
    return {"session_token": state.access.issue_token(session_id, p.caller, _alive(state))}


def _check_key_sessions(state: AppState, principal: Principal) -> int | None:
    ac = state.access
    limit = ac.config.max_sessions_per_key
    if limit is None or principal.kind != "key":
        return None
    if ac.sessions_of(principal.caller, _alive(state)) >= limit:
        raise ApiError(429, "too_many_sessions",
                       f"this API key already has {limit} live sessions; delete one first",
                       {"Retry-After": "5"})
    return limit


@contextlib.contextmanager
def key_session_slot(request: web.Request, state: AppState) -> Iterator[None]:
    """Counts a session being created against its key's quota (429 when full) until the
    session exists and has its grant. Enter it only once the upload has fully arrived."""
    principal = principal_of(request)
    if _check_key_sessions(state, principal) is None:
        yield
        return
    ac = state.access
    owner = principal.caller
    ac.pending[owner] = ac.pending.get(owner, 0) + 1
    try:
        yield
    finally:
        ac.pending[owner] -= 1
        if not ac.pending[owner]:
            del ac.pending[owner]


def access_middleware(state: AppState) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    ac = state.access

    @web.middleware
    async def access_control(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_template(request)
        principal = _authenticate(request, ac, route)
        request[PRINCIPAL] = principal
        if ac.buckets is not None and (request.method, route) in METERED:
            wait = ac.buckets.take(principal.caller)
            if wait > 0:
                raise ApiError(429, "rate_limited",
                               f"more than {ac.config.rate_limit_rps:g} render requests per second "
                               f"(burst {ac.config.rate_burst}); retry in {wait:.2f} s",
                               {"Retry-After": retry_after_header(wait)})
        if (request.method, route) == ("POST", "/sessions"):
            # An early 429 only: the quota is taken by the handler once the upload is in
            # (key_session_slot), so a stalled upload holds none of it.
            _check_key_sessions(state, principal)
        return await handler(request)

    return access_control


# ---- logs ----

_SECRET_PARAMS = frozenset({"token", "key", "api_key", "access_token"})


def redact_path(request: web.BaseRequest) -> str:
    """The path with secret query values replaced, for logs."""
    if not request.query_string:
        return request.path
    pairs = [(k, "REDACTED" if k.lower() in _SECRET_PARAMS else v)
             for k, v in parse_qsl(request.query_string, keep_blank_values=True)]
    return request.path + "?" + urlencode(pairs)


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line, minus `?token=` values (the Authorization header is never logged)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s HTTP/%d.%d" %d %s %.3fs "%s"', request.remote, request.method,
                         redact_path(request), request.version.major, request.version.minor,
                         response.status, response.body_length, time,
                         request.headers.get("User-Agent", "-"))
