"""Content-hash cache of prepared portraits (LRU, bounded by count and bytes).

Sessions pin the sources they stream; a pinned source is never evicted, and
``unpin`` to zero releases it from the engine once it also falls out of the LRU.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterator

from engine.api import Source


def content_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class _Entry:
    source: Source
    pins: int = 0


@dataclass
class SourceCache:
    max_entries: int = 32
    max_bytes: int = 2 << 30
    release: Callable[[Source], None] = lambda s: None
    _entries: "OrderedDict[str, _Entry]" = field(default_factory=OrderedDict)
    hits: int = 0
    misses: int = 0
    # Prepares in flight by key: concurrent requests for one new photo share one prepare.
    _inflight: "dict[str, asyncio.Future[Source]]" = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Source | None:
        e = self._entries.get(key)
        if e is None:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return e.source

    async def get_or_prepare(self, key: str, prepare: Callable[[], Awaitable[Source]]) -> Source:
        while True:
            src = self.get(key)
            if src is not None:
                return src
            pending = self._inflight.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if pending.cancelled() and task is not None and not task.cancelling():
                    continue  # the first requester went away, not us: prepare it ourselves
                raise
        self.misses += 1
        fut: asyncio.Future[Source] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            src = await prepare()
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            self._inflight.pop(key, None)
        fut.set_result(src)
        existing = self._entries.get(key)
        if existing is not None:
            return existing.source
        self._entries[key] = _Entry(src)
        self._evict()
        return src

    def pin(self, key: str) -> None:
        self._entries[key].pins += 1

    def unpin(self, key: str) -> None:
        e = self._entries.get(key)
        if e is not None and e.pins > 0:
            e.pins -= 1
        self._evict()

    @contextlib.contextmanager
    def held(self, key: str) -> Iterator[None]:
        """Pin a key around one request's engine calls, so a session that closes (or a server
        shutdown) meanwhile cannot release the portrait under the request."""
        pinned = key in self._entries
        if pinned:
            self.pin(key)
        try:
            yield
        finally:
            if pinned:
                self.unpin(key)

    def discard(self, key: str) -> bool:
        """Drop an unpinned entry now and release it from the engine (a deleted session's
        portrait). Pinned entries stay. Returns True when something was released."""
        e = self._entries.get(key)
        if e is None or e.pins > 0:
            return False
        del self._entries[key]
        self.release(e.source)
        return True

    def pinned_keys(self) -> list[str]:
        return [k for k, e in self._entries.items() if e.pins > 0]

    def clear(self) -> None:
        for e in self._entries.values():
            self.release(e.source)
        self._entries.clear()

    def _total_bytes(self) -> int:
        return sum(e.source.nbytes() for e in self._entries.values())

    def _evict(self) -> None:
        while len(self._entries) > self.max_entries or self._total_bytes() > self.max_bytes:
            victim = next((k for k, e in self._entries.items() if e.pins == 0), None)
            if victim is None:
                return
            self.release(self._entries.pop(victim).source)
