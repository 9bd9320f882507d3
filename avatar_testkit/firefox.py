"""Headless Firefox ESR for the browser tests, driven over Marionette (the `marionette-driver`
PyPI package talks to Firefox's built-in Marionette server: no geckodriver).

    async with open_firefox() as ff:          # a fresh profile, headless, its own port
        await ff.navigate(url)
        n = await ff.js("return avatarDemo.framesShown")

The Marionette client is synchronous (blocking sockets): every call runs in a worker thread,
so the event loop (and a server running on it) keeps serving while Firefox works.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from .browsers import FIREFOX

# The profile's user.js (see ../shared/notes/webrtc.md): loopback ICE, host candidates without
# mDNS names, no permission prompt, autoplay allowed; then the first-run noise switched off.
PREFS: dict[str, Any] = {
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
}
START_TIMEOUT_S = 90.0  # a cold start on a busy 2-core machine takes several seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user_js(prefs: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(f'user_pref("{k}", {value(v)});\n' for k, v in prefs.items())


@dataclass
class Firefox:
    """One headless Firefox with one Marionette session (one tab)."""

    client: Any  # marionette_driver.marionette.Marionette
    proc: subprocess.Popen
    profile: Path

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def navigate(self, url: str) -> None:
        await self.call(self.client.navigate, url)

    async def js(self, script: str, *args: Any) -> Any:
        """Run `script` (a function body: `return ...`) in the page itself (no sandbox, so the
        page's own globals such as window.avatarDemo are visible); arguments[i] are `args`."""
        return await self.call(self.client.execute_script, script, script_args=list(args),
                               sandbox=None, new_sandbox=False)

    async def js_async(self, script: str, *args: Any, timeout_s: float = 60.0) -> Any:
        """An async script: it ends by calling `arguments[arguments.length - 1](value)`."""
        self.client.timeout.script = timeout_s
        return await self.call(self.client.execute_async_script, script, script_args=list(args),
                               sandbox=None, new_sandbox=False, script_timeout=int(timeout_s * 1000))

    async def wait_js(self, condition: str, *args: Any, timeout: float = 30.0,
                      interval: float = 0.1) -> Any:
        """Poll `condition` (an expression, args as arguments[i]) until it is truthy."""
        from .wait import wait_until

        return await wait_until(lambda: self.js(f"return ({condition});", *args), timeout=timeout,
                                interval=interval, message=f"Firefox: never true: {condition}")

    async def screenshot_png(self) -> bytes:
        return await self.call(self.client.screenshot, format="binary")


def _start(path: str, extra_prefs: dict[str, Any] | None) -> Firefox:
    from marionette_driver.marionette import Marionette

    profile = Path(tempfile.mkdtemp(prefix="lpa-firefox-"))
    port = _free_port()
    (profile / "user.js").write_text(_user_js({**PREFS, **(extra_prefs or {}), "marionette.port": port}))
    env = {**os.environ, "MOZ_HEADLESS": "1", "MOZ_CRASHREPORTER_DISABLE": "1"}
    proc = subprocess.Popen([path, "--headless", "--marionette", "--no-remote", "--profile", str(profile)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # Marionette listens once the browser is up
            if proc.poll() is not None:
                raise RuntimeError(f"{path} exited with {proc.returncode} before Marionette listened")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Firefox's Marionette did not listen on {port} in {START_TIMEOUT_S:g} s")
            time.sleep(0.2)
        client = Marionette(host="127.0.0.1", port=port)
        client.start_session()
        return Firefox(client, proc, profile)
    except BaseException:
        _kill(proc)
        shutil.rmtree(profile, ignore_errors=True)
        raise


def _kill(proc: subprocess.Popen) -> None:
    """Firefox and its content processes: the process group it was started in (its own)."""
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # stragglers of the group
        os.killpg(proc.pid, signal.SIGKILL)


def _stop(ff: Firefox) -> None:
    with contextlib.suppress(Exception):
        ff.client.delete_session()
    _kill(ff.proc)
    shutil.rmtree(ff.profile, ignore_errors=True)


@contextlib.asynccontextmanager
async def open_firefox(extra_prefs: dict[str, Any] | None = None) -> AsyncIterator[Firefox]:
    ff = await asyncio.to_thread(_start, FIREFOX.path, extra_prefs)
    try:
        yield ff
    finally:
        await asyncio.to_thread(_stop, ff)
