"""Wait on state, not on sleep.

A test that sleeps a fixed time and then looks is a guess about how fast a machine is: too
short on a loaded box, wasted time on an idle one. These poll a condition and return as soon
as it holds; the deadline is generous because it only matters when something is broken.
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, TypeVar, Union

T = TypeVar("T")

# Long enough for a shared 2-core machine under load; reached only when the state never comes.
DEFAULT_TIMEOUT_S = 30.0


class WaitTimeout(AssertionError):
    """The condition never held: an AssertionError, so pytest reports it as a test failure."""


async def wait_until(predicate: Callable[[], Union[T, Awaitable[T]]], timeout: float = DEFAULT_TIMEOUT_S,
                     interval: float = 0.05, message: str | Callable[[], str] = "") -> T:
    """Poll `predicate` (a plain or async callable) until it returns something truthy; return
    that value. Raise WaitTimeout after `timeout` seconds (with `message`, or a callable that
    builds it at that moment, for what the state was)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"condition not met within {timeout:g} s" + (f": {text}" if text else ""))
        await asyncio.sleep(interval)


def wait_until_sync(predicate: Callable[[], T], timeout: float = DEFAULT_TIMEOUT_S,
                    interval: float = 0.05, message: str | Callable[[], str] = "") -> T:
    """wait_until for code outside an event loop (subprocesses, files)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"condition not met within {timeout:g} s" + (f": {text}" if text else ""))
        time.sleep(interval)
