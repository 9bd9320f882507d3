"""`serve` flags for access control (keys, CORS, per-key limits) and the public-bind warning."""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import TextIO

from streamer.config import AccessConfig

KEYS_ENV = "LPA_API_KEYS"  # comma-separated API keys, joined with any --api-key
MIN_KEY_LENGTH = 16


def add_access_args(serve: argparse.ArgumentParser) -> None:
    g = serve.add_argument_group("access control (see docs/security.md)")
    g.add_argument("--api-key", action="append", default=[], dest="api_keys", metavar="KEY",
                   help="require 'Authorization: Bearer KEY' (repeatable; also env LPA_API_KEYS, "
                        "comma-separated). Prefer the env: argv is visible to other local users")
    g.add_argument("--metrics-auth", action="store_true",
                   help="with keys set, /metrics needs a key too (default: open)")
    g.add_argument("--cors-origin", action="append", default=[], dest="cors_origins",
                   metavar="ORIGIN", help="an origin allowed cross-origin access, e.g. "
                   "https://app.example.com (repeatable; default: none)")
    g.add_argument("--rate-limit", type=float, default=None, metavar="RPS",
                   help="render requests (/render, /render/batch, POST /sessions) per second per "
                        "key (anonymous callers share one bucket); default unlimited")
    g.add_argument("--rate-burst", type=int, default=AccessConfig().rate_burst, metavar="N",
                   help="requests a caller may make at once before --rate-limit applies")
    g.add_argument("--max-sessions-per-key", type=int, default=None, metavar="N",
                   help="live sessions one API key may hold")
    g.add_argument("--key-max-upload-mb", type=float, default=None, metavar="MB",
                   help="upload limit for keyed callers (default: --max-upload-mb)")
    g.add_argument("--key-max-image-pixels", type=int, default=None, metavar="N",
                   help="image pixel limit for keyed callers (default: the global limit)")


def keys_from(cli_keys: list[str], env: dict[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    keys = [k.strip() for k in cli_keys] + [k.strip() for k in env.get(KEYS_ENV, "").split(",")]
    out: list[str] = []
    for k in keys:
        if k and k not in out:
            out.append(k)
    return out


def allowed_hosts_from(cli_hosts: list[str], env: dict[str, str] | None = None) -> list[str]:
    """--allowed-host values joined with LPA_ALLOWED_HOSTS (streamer/access/hosts.py)."""
    from streamer.access.hosts import HOSTS_ENV

    env = os.environ if env is None else env
    out: list[str] = []
    for h in list(cli_hosts) + env.get(HOSTS_ENV, "").split(","):
        h = h.strip()
        if not h:
            continue
        if "/" in h or any(c.isspace() for c in h):
            raise SystemExit(f"error: --allowed-host takes a host name such as avatar.example.com, not {h!r}")
        if h not in out:
            out.append(h)
    return out


def access_config_from_args(args: argparse.Namespace) -> AccessConfig:
    """The AccessConfig, or SystemExit with a one-line reason (never echoing a key)."""
    keys = keys_from(args.api_keys)
    if any(len(k) < MIN_KEY_LENGTH for k in keys):
        raise SystemExit(f"error: API keys must be at least {MIN_KEY_LENGTH} characters "
                         "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if any(any(c.isspace() or c == "," for c in k) for k in keys):
        raise SystemExit("error: API keys may not contain spaces or commas")
    for name, value in (("--rate-limit", args.rate_limit), ("--key-max-upload-mb", args.key_max_upload_mb)):
        if value is not None and value <= 0:
            raise SystemExit(f"error: {name} must be positive")
    for name, ivalue in (("--rate-burst", args.rate_burst), ("--max-sessions-per-key", args.max_sessions_per_key),
                         ("--key-max-image-pixels", args.key_max_image_pixels)):
        if ivalue is not None and ivalue < 1:
            raise SystemExit(f"error: {name} must be at least 1")
    for origin in args.cors_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise SystemExit("error: --cors-origin takes an origin such as https://app.example.com")
    return AccessConfig(api_keys=keys, metrics_auth=args.metrics_auth,
                        cors_origins=list(args.cors_origins), rate_limit_rps=args.rate_limit,
                        rate_burst=args.rate_burst, max_sessions_per_key=args.max_sessions_per_key,
                        key_max_upload_mb=args.key_max_upload_mb,
                        key_max_image_pixels=args.key_max_image_pixels)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname may resolve to anything: treat it as public


def warn_public_bind(host: str, access: AccessConfig, out: TextIO | None = None) -> bool:
    """A loud warning on stderr when serving beyond this machine with no API keys."""
    if is_loopback(host) or access.api_keys:
        return False
    out = sys.stderr if out is None else out
    bar = "!" * 78
    out.write("\n".join([
        bar,
        f"!!  WARNING: serving on {host} WITHOUT API KEYS.",
        "!!  Anyone who can reach this address can upload photos, render, open sessions",
        "!!  and use this machine's CPU/GPU. Set keys with LPA_API_KEYS=... or --api-key,",
        "!!  or bind 127.0.0.1 (the default) behind a reverse proxy. See docs/security.md.",
        bar,
    ]) + "\n")
    out.flush()
    return True
