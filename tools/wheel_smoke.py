#!/usr/bin/env python3
"""Wheel smoke check: the package as `pip install` gives it to a stranger, not as the checkout runs it.

    python3.11 tools/wheel_smoke.py [--torch torch==2.13.0] [--keep]

1. Copies the files git would ship (tracked plus untracked-but-not-ignored) into a temporary
   folder and builds the wheel there, so no build/ or egg-info left in the checkout can leak in.
2. Creates a fresh venv in that temporary folder (outside the checkout), installs torch first
   (pinned, so pip takes the local CPU build) and then the wheel, not editable.
3. From a working directory that holds no source, checks that `streamer` and `streamer_web`
   import from the venv, runs `liveportrait-avatar --version`, starts `liveportrait-avatar
   serve` on a free loopback port and runs this same file with `--check URL` under the venv's
   Python: the demo page, /samples, POST /render, a session over REST + WebSocket.
4. Stops the server with SIGTERM and expects a clean exit.

The orchestration part uses only the standard library; the `--check` part needs aiohttp and
Pillow, which the wheel's own dependencies bring.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# First start compiles the mesh kernels (numba) and imports mediapipe: tens of seconds on 2 cores.
START_TIMEOUT_S = 240.0
SAMPLES = ("grace_hopper", "astronaut")


def log(msg: str) -> None:
    print(f"[wheel-smoke {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(cmd, check=True, **kw)


# --------------------------------------------------------------------------- orchestration


def copy_source(dest: Path) -> None:
    """The files a fresh clone has (plus new, not-ignored ones), nothing the build left behind."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, check=True, capture_output=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit("wheel-smoke: needs a git checkout (it builds from the files git ships)")
    for name in names:
        src = ROOT / name
        if not src.is_file():  # deleted in the work tree but still in the index
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def check_wheel(wheel: Path, src: Path) -> None:
    """Every file of web/ is in the wheel as streamer_web/..., and so is the LICENSE."""
    names = set(zipfile.ZipFile(wheel).namelist())
    page = ["streamer_web/" + p.relative_to(src / "web").as_posix()
            for p in sorted((src / "web").rglob("*")) if p.is_file()]
    missing = [n for n in page if n not in names]
    if "streamer_web/index.html" not in page or missing:
        raise SystemExit(f"wheel-smoke: {wheel.name} lacks the demo page's {missing or 'index.html'}")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        raise SystemExit(f"wheel-smoke: {wheel.name} carries no LICENSE in its dist-info")
    stray = sorted(n for n in names if n.split("/")[0] in ("tests", "bench", "tools", "client-ts", "web"))
    if stray:
        raise SystemExit(f"wheel-smoke: {wheel.name} carries files it should not: {stray[:5]}")
    log(f"{wheel.name}: {len(names)} files, with the {len(page)} files of web/ and the LICENSE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"wheel-smoke: the server exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"wheel-smoke: no answer from {url}/health within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise SystemExit("wheel-smoke: the server did not stop on SIGTERM")
    return proc.returncode


def orchestrate(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="lpa-wheel-smoke-"))
    proc: subprocess.Popen | None = None
    server_log = tmp / "server.log"
    ok = False
    try:
        src, dist, venv, cwd = tmp / "src", tmp / "dist", tmp / "venv", tmp / "run"
        cwd.mkdir()
        copy_source(src)
        log(f"building the wheel from a copy of the checkout in {src}")
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(dist)])
        [wheel] = sorted(dist.glob("*.whl"))
        check_wheel(wheel, src)

        log(f"fresh venv in {venv}: {args.torch} first, then the wheel")
        run([sys.executable, "-m", "venv", str(venv)])
        py, exe = venv / "bin" / "python", venv / "bin" / "liveportrait-avatar"
        # --no-compile: no .pyc for the thousands of files in torch, jax, scipy (minutes on 2 cores);
        # Python compiles what it imports on first use.
        pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]
        run([*pip, args.torch])
        run([*pip, str(wheel)])
        log(f"installed ({time.monotonic() - t0:.0f} s so far)")

        # Nothing from the checkout on the path: cwd has no source, -I drops the script's folder.
        site = subprocess.run([str(py), "-I", "-c",
                               "import streamer, streamer_web, engine, json; "
                               "print(json.dumps([m.__file__ for m in (streamer, streamer_web, engine)]))"],
                              cwd=cwd, check=True, capture_output=True, text=True).stdout
        for f in json.loads(site):
            if not Path(f).resolve().is_relative_to(venv.resolve()):
                raise SystemExit(f"wheel-smoke: {f} is not inside the fresh venv")
        version = subprocess.run([str(exe), "--version"], cwd=cwd, check=True, capture_output=True,
                                 text=True).stdout.strip()
        log(f"--version: {version}")

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with server_log.open("w") as out:
            proc = subprocess.Popen([str(exe), "serve", "--engine", "mesh", "--host", "127.0.0.1",
                                     "--port", str(port), "--output-dir", str(tmp / "outputs")],
                                    cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        health = wait_healthy(url, proc, START_TIMEOUT_S)
        log(f"serving on {url}: {health}")
        check = tmp / "check.py"  # a copy, run in isolated mode: the checkout stays off sys.path
        shutil.copy2(Path(__file__), check)
        try:
            run([str(py), "-I", str(check), "--check", url, "--expect-version", version.split()[-1]],
                cwd=cwd, timeout=300)
        except subprocess.CalledProcessError:
            raise SystemExit("wheel-smoke: the checks against the installed server failed (above)") from None
        code = stop(proc)
        if code != 0:
            raise SystemExit(f"wheel-smoke: the server exited with {code} after SIGTERM")
        log(f"server stopped cleanly; wheel smoke passed in {time.monotonic() - t0:.0f} s")
        ok = True
        return 0
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"wheel-smoke: {' '.join(map(str, exc.args[1]))} failed "
                         f"(exit {exc.returncode})") from None
    finally:
        if proc is not None:
            stop(proc)
        if not ok and server_log.is_file():
            print("---- server log (tail) ----", file=sys.stderr)
            print("\n".join(server_log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
        if args.keep or not ok:
            log(f"kept {tmp}")
        else:
            log(f"removing {tmp}")
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- checks (venv side)


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"wheel-smoke check failed: {what}")


async def _checks(base: str, expect_version: str | None) -> None:
    import io

    import aiohttp
    from PIL import Image

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(base + "/health") as r:
            health = await r.json()
            _expect(r.status == 200 and health["status"] == "healthy", f"/health: {health}")
            if expect_version:
                _expect(health["version"] == expect_version,
                        f"/health version {health['version']} != --version {expect_version}")

        async with http.get(base + "/") as r:
            page = await r.text()
            _expect(r.status == 200 and r.content_type == "text/html", f"/: {r.status} {r.content_type}")
            _expect("<html" in page.lower() and "js/app.js" in page, "/ is not the demo page")
        for path, ctype in (("/js/app.js", "text/javascript"), ("/css/app.css", "text/css"),
                            ("/favicon.svg", "image/svg+xml")):
            async with http.get(base + path) as r:
                _expect(r.status == 200 and r.content_type == ctype and len(await r.read()) > 0,
                        f"{path}: {r.status} {r.content_type}")
        print("  / and its assets: ok", flush=True)

        async with http.get(base + "/samples") as r:
            listed = (await r.json())["samples"]
            _expect(r.status == 200 and sorted(listed) == sorted(SAMPLES), f"/samples lists {listed}")
        photos: dict[str, bytes] = {}
        for name in SAMPLES:
            async with http.get(f"{base}/samples/{name}") as r:
                data = await r.read()
                _expect(r.status == 200 and r.content_type == "image/jpeg" and data[:2] == b"\xff\xd8",
                        f"/samples/{name}: {r.status} {r.content_type}")
                photos[name] = data
        print(f"  /samples: {listed}, {', '.join(f'{n} {len(b)} B' for n, b in photos.items())}", flush=True)

        form = aiohttp.FormData()
        form.add_field("source_image", photos["astronaut"], filename="astronaut.jpg",
                       content_type="image/jpeg")
        form.add_field("emotion", "happy")
        form.add_field("intensity", "0.8")
        async with http.post(base + "/render", data=form, headers={"Accept": "image/png"}) as r:
            png = await r.read()
            _expect(r.status == 200 and r.content_type == "image/png", f"/render: {r.status} {png[:200]!r}")
        image = Image.open(io.BytesIO(png))
        _expect(image.format == "PNG" and image.size == (512, 512), f"/render gave {image.format} {image.size}")
        print(f"  POST /render: PNG {image.size[0]}x{image.size[1]}, {len(png)} B", flush=True)

        form = aiohttp.FormData()
        form.add_field("source_image", photos["grace_hopper"], filename="grace_hopper.jpg",
                       content_type="image/jpeg")
        form.add_field("fps", "10")
        async with http.post(base + "/sessions", data=form) as r:
            created = await r.json()
            _expect(r.status == 201 and "session_id" in created, f"POST /sessions: {r.status} {created}")
        sid = created["session_id"]
        async with http.ws_connect(created["ws_url"]) as ws:
            seen: list[str] = []

            async def next_json() -> dict:
                while True:
                    msg = await ws.receive(timeout=60)
                    _expect(msg.type == aiohttp.WSMsgType.TEXT, f"expected a text message, got {msg.type}")
                    event = json.loads(msg.data)
                    seen.append(event["type"])
                    if event["type"] != "stats":  # once a second, in any order
                        return event

            _expect((await next_json())["type"] == "hello", f"first message: {seen}")
            _expect((await next_json())["type"] == "ready", f"no ready after hello: {seen}")
            await ws.send_json({"type": "set_emotion", "emotion": "surprised", "intensity": 0.9, "id": 1})
            state = await next_json()
            _expect(state["type"] == "state" and state.get("id") == 1
                    and state["target"]["emotions"]["surprised"] == 0.9, f"state: {state}")
            await ws.send_json({"type": "subscribe_frames", "format": "jpeg", "fps": 5})
            while True:  # text events (stats) may come before the first frame
                msg = await ws.receive(timeout=60)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    break
                _expect(msg.type == aiohttp.WSMsgType.TEXT, f"socket ended before a frame: {msg.type}")
            frame = Image.open(io.BytesIO(msg.data))
            _expect(frame.format == "JPEG" and frame.size == (512, 512), f"frame {frame.format} {frame.size}")
            print(f"  session {sid}: hello, ready, state, JPEG frame {frame.size[0]}x{frame.size[1]}", flush=True)

            async with http.delete(f"{base}/sessions/{sid}") as r:
                body = await r.json()
                _expect(r.status == 200 and body == {"deleted": True, "session_id": sid}, f"DELETE: {body}")
            closed, code = None, None
            while code is None:  # frames and stats may still be in flight before the close
                msg = await ws.receive(timeout=30)
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "closed":
                    closed = json.loads(msg.data)
                elif msg.type == aiohttp.WSMsgType.CLOSE:
                    code = msg.data  # the server's close frame (ws.close_code may read 1006 if
                    # the server drops the connection before our reply to it is written)
                elif msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    raise SystemExit(f"wheel-smoke check failed: socket ended with {msg.type}, "
                                     f"close code {ws.close_code}, before a close frame")
            _expect(closed == {"type": "closed", "reason": "deleted"} and code == 4000,
                    f"after DELETE: event {closed}, close code {code}")
        async with http.get(f"{base}/sessions/{sid}") as r:
            _expect(r.status == 404, f"deleted session still answers {r.status}")
        print("  DELETE /sessions: closed event, close code 4000, then 404", flush=True)

        for path in ("/openapi.json", "/metrics"):
            async with http.get(base + path) as r:
                _expect(r.status == 200, f"{path}: {r.status}")
        print("  /openapi.json, /metrics: ok", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", default=os.environ.get("TORCH_SPEC", "torch==2.13.0"),
                        help="what pip installs before the wheel (default torch==2.13.0, the local CPU build)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (wheel, venv, log)")
    parser.add_argument("--check", metavar="URL", help=argparse.SUPPRESS)  # the venv side
    parser.add_argument("--expect-version", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.check:
        import asyncio

        asyncio.run(_checks(args.check.rstrip("/"), args.expect_version))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
