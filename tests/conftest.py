"""Shared fixtures: the real MeshEngine, the real server on a loopback port, sample photos.

    srv = await start_server(max_upload_mb=1)          # any ServerConfig field
    srv = await start_server(engine=my_engine)          # a different engine
    srv = await start_server(admission=True)            # keep the measured load limits on

The measured load limits (503 server_busy when the load leaves no headroom, and every
session slowed down together under overload; streamer/sessions/headroom.py) are off in test
servers unless ``admission=True``: on a loaded test machine they would refuse sessions or
lower rates that a test needs for something else.
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.base_url + "/health") as r: ...

Every server runs the real app (aiohttp AppRunner + TCPSite on 127.0.0.1, port 0) in the
one session-wide event loop, and is stopped at teardown of the fixture that started it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from aiohttp import web

from streamer.app_state import STATE_KEY, AppState
from streamer.config import ServerConfig, SessionLimits
from streamer.samples import sample_portrait_bytes


STOP_TIMEOUT_S = 20.0
BROWSER_MODULES = ("test_web_page.py", "test_web_firefox.py")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real browser (Chromium or Firefox ESR)")


# An outer wrapper: its code after the yield runs after pytest's own short summary, so the
# banner is the last block before the final counts line.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> Any:
    """Browser tests that skip (no browser here) must not pass unnoticed: say so, loudly, last."""
    result = yield
    _browser_banner(terminalreporter)
    return result


def _browser_banner(terminalreporter: Any) -> None:
    from avatar_testkit.browsers import banner, missing_browsers

    # Marked tests, and whole browser modules skipped at import (e.g. no marionette-driver).
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if "browser" in getattr(r, "keywords", {})
               or any(f in f"{getattr(r, 'nodeid', '')} {r.longrepr}" for f in BROWSER_MODULES)]
    if not skipped:
        return
    text = banner(missing_browsers())
    if not text:  # the browsers are here, the tests skipped for another reason (a package?)
        reasons = sorted({str(r.longrepr[-1]) if isinstance(r.longrepr, tuple) else str(r.longrepr)
                          for r in skipped})
        text = "\n".join(["!" * 78, f"!!! {len(skipped)} BROWSER TESTS WERE SKIPPED:",
                          *[f"!!!   {x}" for x in reasons], "!" * 78])
    terminalreporter.write_line("")
    for line in text.splitlines():
        terminalreporter.write_line(line, red=True, bold=True)


@dataclass
class ServerHandle:
    base_url: str  # "http://127.0.0.1:PORT"
    ws_base: str  # "ws://127.0.0.1:PORT"
    app: web.Application
    state: AppState
    runner: web.AppRunner
    _stopped: bool = field(default=False, repr=False)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            try:
                await asyncio.wait_for(self.runner.cleanup(), STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                # A stuck shutdown is a bug to see, not a hang of the whole run: dump the tasks.
                for task in asyncio.all_tasks():
                    task.print_stack(file=sys.stderr)
                raise AssertionError(f"server shutdown took over {STOP_TIMEOUT_S} s") from None


StartServer = Callable[..., Awaitable[ServerHandle]]


class _Starter:
    """Starts servers and remembers them, so that teardown stops every one."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.handles: list[ServerHandle] = []
        self._tmp: list[tempfile.TemporaryDirectory[str]] = []

    async def __call__(self, engine: Any = None, admission: bool = False,
                       **overrides: Any) -> ServerHandle:
        from streamer.app import create_app  # lazily: collection works while app.py evolves

        if not admission:
            overrides["sessions"] = dataclasses.replace(
                overrides.get("sessions") or SessionLimits(), max_load=0.0)

        if engine is None:
            engine = self._request.getfixturevalue("mesh_engine")
        if "output_dir" not in overrides:
            tmp = tempfile.TemporaryDirectory(prefix="lpa-out-")
            self._tmp.append(tmp)
            overrides["output_dir"] = Path(tmp.name)
        config = ServerConfig(host="127.0.0.1", port=0, **overrides)
        app = create_app(config, engine)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        handle = ServerHandle(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}",
                              app, app[STATE_KEY], runner)
        self.handles.append(handle)
        return handle

    async def stop_all(self) -> None:
        for h in reversed(self.handles):
            await h.stop()
        self.handles.clear()
        for tmp in self._tmp:
            tmp.cleanup()
        self._tmp.clear()


@pytest.fixture(scope="session")
def mesh_engine() -> Any:
    """One MeshEngine for the whole run (mediapipe start-up is the slow part)."""
    from engine.mesh import MeshEngine  # lazily: the mesh engine lands separately

    return MeshEngine()


@pytest.fixture(scope="session")
def prepared_portraits() -> dict[str, Any]:
    """Portraits prepared on mesh_engine, filled on first use (mesh_checks.prepared_once)."""
    return {}


@pytest_asyncio.fixture
async def start_server(request: pytest.FixtureRequest) -> AsyncIterator[StartServer]:
    starter = _Starter(request)
    try:
        yield starter
    finally:
        await starter.stop_all()


@pytest_asyncio.fixture(scope="module")
async def server(request: pytest.FixtureRequest) -> AsyncIterator[ServerHandle]:
    """One default server (mesh engine) per test module."""
    starter = _Starter(request)
    try:
        yield await starter()
    finally:
        await starter.stop_all()


@pytest.fixture(scope="session")
def grace_hopper_jpeg() -> bytes:
    return sample_portrait_bytes("grace_hopper")


@pytest.fixture(scope="session")
def astronaut_jpeg() -> bytes:
    return sample_portrait_bytes("astronaut")


@pytest.fixture(scope="session")
def cat_jpeg() -> bytes:
    """skimage.data.chelsea(): a cat, so no human face."""
    return sample_portrait_bytes("chelsea")
