"""The engine in its own process: an ``Engine`` proxy whose work runs in a spawned child.

Why: the mesh engine is numpy/OpenCV code that keeps taking the GIL back. Inside the server
it waits for the GIL against the event loop and the encoder threads (a 4 ms render took
11-13 ms), and the server used under one of two cores. In a child process it has its own GIL.

Shape of it:
- ``ProcessEngine`` implements the ``Engine`` protocol, so ``EngineWorker`` (its one engine
  thread and bounded queue), REST, sessions and the scheduler use it unchanged. The engine
  thread blocks in a pipe read, which releases the GIL.
- The child builds the engine from a picklable ``EngineRequest`` (spawn context: never fork
  a process that runs threads and an event loop) and keeps the prepared sources by id; the
  parent holds ``ProxySource`` (size, face box, id, and the image, for re-preparing after a
  crash).
- Frames come back through one shared-memory buffer (one request is in flight at a time:
  the single engine thread), copied out by the parent; batches too big for it go through
  the pipe. The segment is unlinked as soon as the child has mapped it, so a killed server
  leaves nothing in /dev/shm.
- A child that dies fails the call in flight with ``EngineCrashedError`` (an EngineError:
  500 on REST, an error event in sessions); the next call starts a new child, and sources
  from the old one are prepared again on first use.
- Test hook: ``child_hook="module:function"`` makes the child pass its engine through that
  function (importable in the child: spawn copies the parent's sys.path) and use what it
  returns. Only tests set it (tests/engine_hooks.py wraps the engine with crash and stall
  faults); the server never does.
"""
from __future__ import annotations

import importlib
import itertools
import logging
import multiprocessing as mp
import os
import secrets
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any, Callable, Sequence

import numpy as np

from engine.api import Engine, EngineError, EngineInfo, EngineUnavailableError, Source
from engine.motion import Motion

from streamer.runtime.engine_factory import EngineRequest

log = logging.getLogger("streamer.engine")

# 16 MiB holds a batch of 21 512x512 frames; bigger outputs (full-mode renders of large
# photos) go through the pipe, where the copy matters less than the render itself.
FRAME_BUFFER_BYTES = 16 << 20
START_TIMEOUT_S = 120.0  # engine construction + warm-up (mediapipe graph, model load)
STOP_TIMEOUT_S = 1.0


class EngineCrashedError(EngineError):
    code = "engine_crashed"


@dataclass
class ProxySource(Source):
    """The parent's handle on a source that lives in the child."""

    sid: int = 0
    generation: int = 0  # which child holds it; a restarted child has a new generation
    image: np.ndarray | None = field(default=None, repr=False)
    child_nbytes: int = 0

    def nbytes(self) -> int:
        return self.child_nbytes + (0 if self.image is None else self.image.nbytes)


# ---------------------------------------------------------------- child side

def _pin_threads() -> None:
    # Same reasoning as the scheduler's tuning: on a small box OpenCV's own pool competes
    # with the server's encoders for the same cores.
    if (os.cpu_count() or 1) <= 4:
        import cv2

        cv2.setNumThreads(1)


# After work that touched this many bytes (a large photo prepared, full-size frames rendered,
# sources released) the child hands freed heap back to the OS: glibc keeps it otherwise, and
# one 4000x4000 batch left a child at 1.6 GB for good.
TRIM_AFTER_BYTES = 8 << 20


def _malloc_trim() -> Callable[[], object]:
    """glibc's malloc_trim(0), or a no-op where there is none (musl, macOS)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


def _picklable_error(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - anything that does not travel becomes a plain EngineError
        return EngineError(f"{type(exc).__name__}: {exc}")


def _load_hook(spec: str) -> Callable[[Engine], Engine]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _child_main(conn: Connection, req: EngineRequest, shm_name: str,
                hook: str | None = None) -> None:
    """Runs in the spawned child: build the engine, then answer requests until told to stop
    or until the parent goes away (EOF on the pipe)."""
    from streamer.runtime.engine_factory import build_engine

    shm = SharedMemory(shm_name)
    buf: np.ndarray | None = None
    try:
        _pin_threads()
        try:
            engine = build_engine(req)
            if hook is not None:
                engine = _load_hook(hook)(engine)
        except BaseException as exc:  # noqa: BLE001 - report why, then exit
            conn.send(("err", _picklable_error(exc)))
            return
        conn.send(("ok", (engine.name, engine.info)))
        trim = _malloc_trim()
        sources: dict[int, Source] = {}
        buf = np.ndarray((shm.size,), np.uint8, shm.buf)
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            op = msg[0]
            if op == "stop":
                return
            touched = 0  # bytes this request made or freed: past TRIM_AFTER_BYTES, trim
            try:
                for sid in msg[-1]:  # releases piggy-backed on every request
                    gone = sources.pop(sid, None)
                    touched += 0 if gone is None else gone.nbytes()
                if op == "prepare":
                    _, sid, image, _ = msg
                    src = engine.prepare(image)
                    sources[sid] = src
                    touched += image.nbytes
                    reply: Any = (src.width, src.height, tuple(src.face_box), src.nbytes())
                elif op == "render":
                    _, jobs, mode, size, _ = msg
                    missing = [sid for sid, _ in jobs if sid not in sources]
                    if missing:
                        raise EngineError("source was released or never prepared")
                    frames = engine.render([(sources[sid], m) for sid, m in jobs],
                                           mode=mode, size=size)
                    touched += sum(f.nbytes for f in frames) * (4 if mode == "full" else 1)
                    reply = _pack_frames(frames, buf)
                    frames = []
                elif op == "release":
                    reply = None
                else:
                    raise EngineError(f"unknown engine request {op!r}")
                conn.send(("ok", reply))
            except BaseException as exc:  # noqa: BLE001 - every failure goes back typed
                conn.send(("err", _picklable_error(exc)))
            msg = reply = image = None  # nothing big outlives its request
            if touched >= TRIM_AFTER_BYTES:
                trim()  # after the answer is sent: the caller is not kept waiting for it
    finally:
        buf = None  # drop our view first: close() refuses while one is exported
        _close_quietly(shm)


def _pack_frames(frames: list[np.ndarray], buf: np.ndarray) -> tuple[str, Any]:
    total = sum(f.nbytes for f in frames)
    if total > buf.size:
        return ("pipe", frames)
    shapes, off = [], 0
    for f in frames:
        n = f.nbytes
        buf[off:off + n] = np.ascontiguousarray(f, dtype=np.uint8).reshape(-1)
        shapes.append(f.shape)
        off += n
    return ("shm", shapes)


# ---------------------------------------------------------------- parent side

@dataclass
class _Child:
    proc: Any  # multiprocessing.context.SpawnProcess
    conn: Connection
    shm: SharedMemory
    generation: int
    name: str = ""
    info: EngineInfo | None = None
    # close() (any thread) and a failing call (the engine thread) may both stop one child.
    stop_lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: bool = False


class ProcessEngine:
    """An Engine whose prepare/render/release run in a child process. Calls must come from
    one thread at a time (EngineWorker's engine thread); ``release`` may come from any
    thread and never blocks: it rides along with the next request."""

    def __init__(self, req: EngineRequest, frame_buffer_bytes: int = FRAME_BUFFER_BYTES,
                 child_hook: str | None = None) -> None:
        self.req = req
        self.frame_buffer_bytes = frame_buffer_bytes
        self.child_hook = child_hook  # tests only: see the module docstring
        self._ctx = mp.get_context("spawn")
        self._ids = itertools.count(1)
        self._generations = itertools.count(1)
        self._lock = threading.Lock()  # guards _child and _releases across threads
        self._releases: list[int] = []
        self._closed = False
        self.restarts = 0
        self._child: _Child | None = self._start()
        self.name = self._child.name
        # Kept here: /health reads it while a crashed child is being replaced.
        self._info: EngineInfo = self._child.info  # type: ignore[assignment]

    # -- Engine protocol
    @property
    def info(self) -> EngineInfo:
        return self._info

    def prepare(self, image: np.ndarray) -> Source:
        child = self._ensure_child()
        sid = next(self._ids)
        w, h, box, nbytes = self._ask(child, ("prepare", sid, image, self._take_releases(child)))
        return ProxySource(width=w, height=h, face_box=box, sid=sid, generation=child.generation,
                           image=image, child_nbytes=nbytes)

    def render(self, jobs: Sequence[tuple[Source, Motion]], mode: str = "crop",
               size: int | None = None) -> list[np.ndarray]:
        child = self._ensure_child()
        for src, _ in jobs:
            if not isinstance(src, ProxySource):
                raise EngineError("source was not prepared by this engine")
            if src.generation != child.generation:
                self._reprepare(child, src)
        kind, payload = self._ask(child, ("render", [(s.sid, m) for s, m in jobs], mode, size,
                                          self._take_releases(child)))
        if kind == "pipe":
            return list(payload)
        out, off = [], 0
        view = np.ndarray((child.shm.size,), np.uint8, child.shm.buf)
        for shape in payload:
            n = int(np.prod(shape))
            out.append(view[off:off + n].reshape(shape).copy())  # the buffer is reused next call
            off += n
        return out

    def release(self, source: Source) -> None:
        if isinstance(source, ProxySource):
            with self._lock:
                child = self._child
                if child is not None and child.generation == source.generation:
                    self._releases.append(source.sid)
            source.image = None

    # -- lifecycle
    @property
    def pid(self) -> int | None:
        child = self._child
        return None if child is None else child.proc.pid

    def close(self) -> None:
        """Stop the child now. Safe from any thread, and while a call is in flight: that call
        then fails with EngineCrashedError."""
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
        if child is not None:
            self._stop(child)

    # -- internals
    def _start(self) -> _Child:
        gen = next(self._generations)
        shm = SharedMemory(name=f"lpa-engine-{os.getpid()}-{gen}-{secrets.token_hex(4)}",
                           create=True, size=self.frame_buffer_bytes)
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_child_main, args=(child_conn, self.req, shm.name, self.child_hook),
                                 name=f"engine-{gen}", daemon=True)
        try:
            proc.start()
        except BaseException:
            shm.close()
            shm.unlink()
            raise
        child_conn.close()  # so that a dead child reads as EOF here
        child = _Child(proc, parent_conn, shm, gen)
        try:
            if not parent_conn.poll(START_TIMEOUT_S):
                raise EngineUnavailableError("the engine process did not start in time")
            status, payload = parent_conn.recv()
        except (EOFError, OSError):
            self._stop(child)
            raise EngineUnavailableError("the engine process exited while starting") from None
        except BaseException:
            self._stop(child)
            raise
        finally:
            # The child has mapped it (or is gone): drop the name so nothing can leak.
            _unlink_quietly(shm)
        if status != "ok":
            self._stop(child)
            raise payload
        child.name, child.info = payload
        log.info("engine process %d started (%s on %s)", proc.pid, child.info.name,
                 child.info.device)
        return child

    def _ensure_child(self) -> _Child:
        with self._lock:
            if self._closed:
                raise EngineUnavailableError("the engine is shut down")
            child = self._child
        if child is not None:
            return child
        new = self._start()
        with self._lock:
            if self._closed:  # closed while we were starting
                self._stop(new)
                raise EngineUnavailableError("the engine is shut down")
            self._child = new
            self._releases.clear()  # ids of the dead child mean nothing to the new one
        return new

    def _take_releases(self, child: _Child) -> list[int]:
        with self._lock:
            out, self._releases = self._releases, []
        return out

    def _reprepare(self, child: _Child, src: ProxySource) -> None:
        if src.image is None:
            raise EngineError("source was released")
        self._ask(child, ("prepare", src.sid, src.image, []))
        src.generation = child.generation

    def _ask(self, child: _Child, msg: tuple) -> Any:
        try:
            child.conn.send(msg)
            status, payload = child.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._lost(child)
            raise EngineCrashedError("the engine process stopped; it is being restarted") from None
        if status == "err":
            raise payload
        return payload

    def _lost(self, child: _Child) -> None:
        with self._lock:
            closing = self._closed
            if self._child is child:
                self._child = None
        self._stop(child)
        if not closing:
            self.restarts += 1
            log.error("engine process %s exited (code %s); the next call starts a new one",
                      child.proc.pid, child.proc.exitcode)

    def _stop(self, child: _Child) -> None:
        with child.stop_lock:
            if not child.stopped:
                self._stop_once(child)
                child.stopped = True

    def _stop_once(self, child: _Child) -> None:
        proc = child.proc
        if proc.is_alive():
            try:
                child.conn.send(("stop", []))
            except (OSError, ValueError):
                pass
            proc.join(0.2)
        if proc.is_alive():
            proc.kill()  # a render in progress does not read the pipe: no point waiting
        proc.join(STOP_TIMEOUT_S)
        try:
            child.conn.close()
        except OSError:
            pass
        _close_quietly(child.shm)
        _unlink_quietly(child.shm)


def _close_quietly(shm: SharedMemory) -> None:
    try:
        shm.close()
    except BufferError:
        pass  # a copy-out is still running on the engine thread; the mapping goes with it


def _unlink_quietly(shm: SharedMemory) -> None:
    try:
        shm.unlink()
    except FileNotFoundError:
        pass


ENGINE_PROCESS_CHOICES = ("auto", "on", "off")


def wants_engine_process(choice: str, req: EngineRequest) -> bool:
    """--engine-process: on/off as asked; auto = a child process for the mesh engine on the
    CPU (measured: bench/README.md, Sessions), in-process for anything that may use CUDA."""
    if choice not in ENGINE_PROCESS_CHOICES:
        raise ValueError(f"engine process must be one of {', '.join(ENGINE_PROCESS_CHOICES)}")
    if choice != "auto":
        return choice == "on"
    from streamer.runtime.gpu import cuda_available

    if req.engine == "mesh":
        return True
    return req.engine == "auto" and (req.device == "cpu" or not cuda_available())
