"""The `liveportrait-avatar` command (also `python -m streamer`): serve, render, bench, download-weights."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from engine.api import EngineError, EngineUnavailableError
from engine.motion import EMOTIONS, Motion, validate_unit

from streamer.access.cli import (access_config_from_args, add_access_args, allowed_hosts_from,
                                 warn_public_bind)
from streamer.config import ServerConfig, SessionLimits
from streamer.errors import ApiError
from streamer.runtime.engine_factory import DEVICE_CHOICES, ENGINE_CHOICES, EngineRequest, build_engine
from streamer.runtime.engine_process import ProcessEngine, wants_engine_process

log = logging.getLogger("streamer")


def _engine_args(p: argparse.ArgumentParser, default_engine: str = "auto") -> None:
    p.add_argument("--engine", choices=ENGINE_CHOICES, default=default_engine,
                   help="auto: liveportrait when CUDA and its weights are there, else mesh")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--weights-dir", type=Path, default=None,
                   help="folder with the LivePortrait checkpoints (default: the Hugging Face cache)")
    p.add_argument("--no-download", action="store_true",
                   help="never download LivePortrait weights; use only local ones")


def _unit(name: str):  # type: ignore[no-untyped-def]
    def parse(value: str) -> float:
        try:
            return validate_unit(name, value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's, as pip recorded it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("liveportrait-avatar")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveportrait-avatar",
                                     description="Render one portrait photo with emotions; stream it live.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP/WebSocket/WebRTC server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    _engine_args(serve)
    serve.add_argument("--output-dir", type=Path, default=ServerConfig().output_dir)
    serve.add_argument("--output-ttl", type=float, default=ServerConfig().output_ttl_s,
                       help="seconds before a rendered output expires (default 3600)")
    serve.add_argument("--max-upload-mb", type=float, default=ServerConfig().max_upload_mb)
    defaults = ServerConfig()
    serve.add_argument("--body-timeout", type=float, default=defaults.body_timeout_s, metavar="S",
                       help="seconds a request body may take to arrive; past it 408 and the "
                            "connection closes (default 60)")
    serve.add_argument("--max-request-mpx", type=float, default=defaults.max_request_pixels / 1_048_576,
                       metavar="MPX", help="work one REST request may ask for, in output megapixels "
                       "x frames (a crop frame is 0.25); past it 413 request_too_costly (default 32)")
    serve.add_argument("--max-source-pixels", type=int, default=defaults.max_source_pixels,
                       metavar="N", help="larger photos are scaled down to this many pixels while "
                       "decoding (default 2359296 = 1536x1536)")
    serve.add_argument("--allowed-host", action="append", default=[], dest="allowed_hosts",
                       metavar="NAME", help="a Host name the server answers to besides loopback "
                       "names and IP addresses, e.g. avatar.example.com (repeatable; also env "
                       "LPA_ALLOWED_HOSTS, comma-separated; '*' turns the DNS-rebinding check off)")
    serve.add_argument("--engine-process", choices=("auto", "on", "off"), default="auto",
                       help="run the engine in a child process (auto: for the mesh engine on CPU)")
    serve.add_argument("--engine-queue", type=int, default=ServerConfig().engine_queue,
                       help="engine calls that may wait; past it clients get 503 + Retry-After")
    serve.add_argument("--ice-server", action="append", default=[], dest="ice_servers",
                       help="STUN/TURN URL offered to WebRTC clients (repeatable)")
    limits = SessionLimits()
    serve.add_argument("--max-sessions", type=int, default=limits.max_sessions,
                       help="live avatar sessions at once; past it POST /sessions answers 429")
    serve.add_argument("--session-idle-timeout", type=float, default=limits.idle_timeout_s,
                       help="seconds a session without a WebSocket lives (default 120)")
    serve.add_argument("--session-max-age", type=float, default=limits.max_age_s,
                       help="seconds after which every session ends (default 3600)")
    serve.add_argument("--ws-heartbeat", type=float, default=limits.ws_heartbeat_s,
                       help="seconds between WebSocket pings; a client that misses a pong for half "
                            "of it is disconnected, and the idle timeout starts (default 20)")
    serve.add_argument("--viewer-connect-timeout", type=float,
                       default=limits.viewer_connect_timeout_s,
                       help="seconds a WebRTC viewer may take to connect before it is dropped "
                            "(default 30)")
    serve.add_argument("--max-ws", type=int, default=limits.max_sockets,
                       help="session WebSockets on the whole server (default 256)")
    serve.add_argument("--max-ws-per-session", type=int, default=limits.max_sockets_per_session,
                       help="WebSockets on one session (default 16)")
    serve.add_argument("--max-ws-per-key", type=int, default=limits.max_sockets_per_key,
                       help="WebSockets on all sessions of one API key (default 64)")
    serve.add_argument("--max-subscriptions-per-session", type=int,
                       default=limits.max_subscriptions_per_session,
                       help="subscribe_frames sockets on one session (default 16)")
    serve.add_argument("--max-subscriptions-per-key", type=int,
                       default=limits.max_subscriptions_per_key,
                       help="subscribe_frames sockets on all sessions of one API key (default 64)")
    serve.add_argument("--max-session-load", type=float, default=limits.max_load,
                       help="refuse new sessions (503 server_busy) when the measured render + "
                            "encode load with one more would pass this share of the frame "
                            "budget, and slow every session down together under overload "
                            "(default 0.85; 0 = neither, only --max-sessions)")
    add_access_args(serve)
    serve.add_argument("--shutdown-grace", type=float, default=10.0,
                       help="on SIGTERM/SIGINT, seconds in-flight requests may take to finish "
                            "(sessions close at once with 1001)")

    render = sub.add_parser("render", help="render one photo with one emotion to a file")
    render.add_argument("image", type=Path)
    render.add_argument("--emotion", required=True, choices=EMOTIONS)
    render.add_argument("--intensity", type=_unit("intensity"), default=0.7)
    render.add_argument("--mode", choices=("crop", "full"), default="crop",
                        help="crop: 512x512 around the face; full: the whole photo")
    render.add_argument("-o", "--output", type=Path, default=None,
                        help="output file (.png, .jpg or .webp); default IMAGE_EMOTION.png")
    _engine_args(render, default_engine="mesh")

    bench = sub.add_parser("bench", help="time prepare and per-frame render on the sample portraits")
    bench.add_argument("--engine", choices=("mesh",), default="mesh")
    bench.add_argument("--frames", type=int, default=200)
    bench.add_argument("--json", action="store_true", help="print one JSON object")

    dl = sub.add_parser("download-weights", help="fetch the LivePortrait checkpoints into the HF cache")
    dl.add_argument("--cache-dir", type=Path, default=None)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from streamer.access.control import RedactingAccessLogger
    from streamer.app import create_app

    if args.port < 0 or args.port > 65535:
        raise SystemExit("error: --port must be between 0 and 65535")
    if args.max_upload_mb <= 0 or args.output_ttl <= 0 or args.engine_queue < 1:
        raise SystemExit("error: --max-upload-mb, --output-ttl and --engine-queue must be positive")
    config = ServerConfig(host=args.host, port=args.port, engine=args.engine, device=args.device,
                          weights_dir=args.weights_dir, output_dir=args.output_dir,
                          output_ttl_s=args.output_ttl, max_upload_mb=args.max_upload_mb,
                          engine_queue=args.engine_queue, ice_servers=list(args.ice_servers),
                          sessions=SessionLimits(
                              max_sessions=args.max_sessions,
                              idle_timeout_s=args.session_idle_timeout,
                              max_age_s=args.session_max_age,
                              ws_heartbeat_s=args.ws_heartbeat,
                              viewer_connect_timeout_s=args.viewer_connect_timeout,
                              max_sockets=args.max_ws,
                              max_sockets_per_session=args.max_ws_per_session,
                              max_sockets_per_key=args.max_ws_per_key,
                              max_subscriptions_per_session=args.max_subscriptions_per_session,
                              max_subscriptions_per_key=args.max_subscriptions_per_key,
                              max_load=args.max_session_load))
    if args.max_session_load < 0:
        raise SystemExit("error: --max-session-load must be 0 or more")
    if args.max_sessions < 1 or args.session_idle_timeout <= 0 or args.session_max_age <= 0:
        raise SystemExit("error: --max-sessions, --session-idle-timeout and --session-max-age "
                         "must be positive")
    if min(args.ws_heartbeat, args.viewer_connect_timeout) <= 0 or min(
            args.max_ws, args.max_ws_per_session, args.max_ws_per_key,
            args.max_subscriptions_per_session, args.max_subscriptions_per_key) < 1:
        raise SystemExit("error: --ws-heartbeat, --viewer-connect-timeout and the --max-ws*/"
                         "--max-subscriptions* caps must be positive")
    if args.body_timeout <= 0 or args.max_request_mpx <= 0 or args.max_source_pixels < 1024:
        raise SystemExit("error: --body-timeout and --max-request-mpx must be positive, "
                         "--max-source-pixels at least 1024")
    config.body_timeout_s = args.body_timeout
    config.max_request_pixels = int(args.max_request_mpx * 1_048_576)
    config.max_source_pixels = args.max_source_pixels
    config.allowed_hosts = allowed_hosts_from(args.allowed_hosts)
    config.access = access_config_from_args(args)
    from streamer.http.outputs import OutputDirError, secure_output_dir

    try:  # before the slow engine start: a refused folder is a one-line error at once
        secure_output_dir(args.output_dir)
    except OutputDirError as exc:
        raise SystemExit(f"error: {exc}") from None
    warn_public_bind(args.host, config.access)  # before the slow engine start, so it is seen
    config.engine_process = args.engine_process
    req = EngineRequest(args.engine, args.device, args.weights_dir, not args.no_download)
    if wants_engine_process(args.engine_process, req):
        engine = ProcessEngine(req)  # the child builds the engine; warm-up goes through it
    else:
        engine = build_engine(req)
    _warm_up(engine)
    app = create_app(config, engine)
    info = engine.info
    print(f"liveportrait-avatar: engine {info.name} on {info.device}; "
          f"serving on http://{args.host}:{args.port}", flush=True)
    if args.shutdown_grace < 0:
        raise SystemExit("error: --shutdown-grace must not be negative")
    # run_app turns SIGTERM into a graceful exit: stop listening, close sessions (on_shutdown),
    # let in-flight requests finish for up to the grace period, then stop the engine.
    web.run_app(app, host=args.host, port=args.port, print=None,
                shutdown_timeout=args.shutdown_grace,
                access_log_class=RedactingAccessLogger)  # no ?token= values in logs
    return 0


def _warm_up(engine) -> None:  # type: ignore[no-untyped-def]
    """One prepare+render before listening, so the first client does not pay for lazy model
    start-up (mediapipe's graph, CUDA kernels): seconds otherwise."""
    import io
    import time

    import numpy as np
    from PIL import Image

    from streamer.samples import sample_portrait_bytes

    t0 = time.perf_counter()
    try:
        image = np.asarray(Image.open(io.BytesIO(sample_portrait_bytes("grace_hopper"))).convert("RGB"))
        source = engine.prepare(image)
        engine.render([(source, Motion.emotion("happy", 0.5))])
        engine.release(source)
    except Exception as exc:  # noqa: BLE001 - warm-up is an optimisation; serving matters more
        log.warning("engine warm-up skipped: %s", exc)
        return
    log.info("engine warmed up in %.0f ms", (time.perf_counter() - t0) * 1000)


def _read_image(path: Path):  # type: ignore[no-untyped-def]
    from streamer.http.portraits import decode_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}")
    try:
        return decode_image(data, ServerConfig().max_image_pixels)
    except ApiError as exc:
        raise SystemExit(f"error: {path}: {exc.message}")


def cmd_render(args: argparse.Namespace) -> int:
    from streamer.imaging import encode_image, format_named

    out = args.output or args.image.with_name(f"{args.image.stem}_{args.emotion}.png")
    fmt = format_named(out.suffix.lstrip(".") or "png")
    if fmt is None:
        raise SystemExit("error: the output file must end in .png, .jpg or .webp")
    image = _read_image(args.image)
    engine = build_engine(EngineRequest(args.engine, args.device, args.weights_dir, not args.no_download))
    try:
        source = engine.prepare(image)
    except EngineError as exc:
        if exc.code == "no_face":
            raise SystemExit(f"error: no face found in {args.image}")
        raise SystemExit(f"error: {exc}")
    [frame] = engine.render([(source, Motion.emotion(args.emotion, args.intensity))], mode=args.mode)
    out.write_bytes(encode_image(frame, fmt))
    print(f"{out} ({frame.shape[1]}x{frame.shape[0]}, {args.emotion} {args.intensity:g}, engine {engine.name})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import io

    import numpy as np
    from PIL import Image

    from engine.benchmark import run_mesh_bench

    from streamer.samples import available_samples, sample_portrait_bytes

    if args.frames < 1:
        raise SystemExit("error: --frames must be at least 1")
    names = available_samples()
    if not names:
        raise SystemExit("error: no sample portraits available (needs matplotlib or scikit-image)")
    images = [np.asarray(Image.open(io.BytesIO(sample_portrait_bytes(n))).convert("RGB")) for n in names]
    engine = build_engine(EngineRequest(engine="mesh", device="cpu"))
    result = dict(run_mesh_bench(engine, images, args.frames))
    result.setdefault("samples", names)
    result.setdefault("frames", args.frames)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def cmd_download_weights(args: argparse.Namespace) -> int:
    from engine.liveportrait.weights import download_weights

    try:
        path = download_weights(args.cache_dir) if args.cache_dir else download_weights()
    except EngineUnavailableError:
        raise
    except Exception as exc:  # network, auth, disk: say what failed, without a traceback
        raise EngineUnavailableError(
            f"downloading the LivePortrait weights failed ({type(exc).__name__}: {exc}); check the "
            "network, or copy the checkpoints into a folder and pass --weights-dir DIR") from exc
    print(f"LivePortrait weights ready in {path}")
    return 0


COMMANDS = {"serve": cmd_serve, "render": cmd_render, "bench": cmd_bench,
            "download-weights": cmd_download_weights}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return COMMANDS[args.command](args)
    except EngineUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
