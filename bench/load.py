"""REST load: N concurrent clients (or an open-loop request rate) against /render for a fixed time.

    python bench/load.py --clients 1 2 4 8 64 --seconds 10            # closed loop, JSON + PNG
    python bench/load.py --rates 10 20 30 40 --seconds 10 --accept jpeg  # open loop: find capacity
    python bench/load.py --url http://127.0.0.1:8001 --clients 4      # an already running server

Without --url it starts its own server as a subprocess (mesh engine, loopback, a free port, a
temporary output dir) and stops it at the end. Traffic goes to 127.0.0.1 only; every run stops
by itself after --seconds per step. Reported per step: throughput of 200s, p50/p95/p99 latency of
admitted (200) requests, counts by status, and "bad": anything that is neither a 200 nor a
429/503 carrying Retry-After (connection errors included). Exit code 1 when a step had bad answers.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys

from avatar_testkit.load import LoadResult, closed_loop, open_loop, spawn_server


def _print_table(results: list[LoadResult]) -> None:
    print("| step | ok | req/s | refused (429/503) | bad | p50 ms | p95 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        s = r.summary()
        print(f"| {s['step']} | {s['ok']} | {s['rps']} | {s['refused']} | {s['bad']} | "
              f"{s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} |")


async def _main(args: argparse.Namespace) -> int:
    from streamer.samples import sample_portrait_bytes

    image = sample_portrait_bytes("grace_hopper")
    extra = ["--engine-queue", str(args.engine_queue)] if args.engine_queue else []
    if args.engine_process:
        extra += ["--engine-process", args.engine_process]
    async with contextlib.AsyncExitStack() as stack:
        if args.url:
            url = args.url.rstrip("/")
            if not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
                raise SystemExit("error: --url must be a loopback address")
        else:
            url, _ = await stack.enter_async_context(spawn_server(extra))
        await closed_loop(url, image, 1, args.warmup, args.accept)  # caches the portrait
        results = []
        for c in args.clients or []:
            results.append(await closed_loop(url, image, c, args.seconds, args.accept))
            print(json.dumps(results[-1].summary()), flush=True)
        for rate in args.rates or []:
            results.append(await open_loop(url, image, rate, args.seconds, args.accept))
            print(json.dumps(results[-1].summary()), flush=True)
    _print_table(results)
    for r in results:
        if r.bad:
            print(f"{r.label}: unexpected answers, e.g. {r.bad}", file=sys.stderr)
    return 1 if any(r.bad_count for r in results) else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running server (loopback only); default: start one")
    p.add_argument("--clients", type=int, nargs="*", help="closed-loop client counts, one step each")
    p.add_argument("--rates", type=float, nargs="*", help="open-loop request rates (req/s), one step each")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each step")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--accept", choices=("json", "jpeg"), default="json",
                   help="json: JSON answer + PNG file written; jpeg: Accept: image/jpeg, image in the body")
    p.add_argument("--engine-queue", type=int, default=0, help="passed to serve (0: its default)")
    p.add_argument("--engine-process", choices=("auto", "on", "off"), default=None)
    args = p.parse_args()
    if not args.clients and not args.rates:
        args.clients = [1, 2, 4, 64]
    if args.seconds <= 0 or args.seconds > 600:
        raise SystemExit("error: --seconds must be in (0, 600]")
    if any(c < 1 or c > 512 for c in args.clients or []) or any(r <= 0 or r > 2000 for r in args.rates or []):
        raise SystemExit("error: --clients must be 1..512 and --rates in (0, 2000]")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
