"""Range requests on files: the 416 answer as a JSON error.

aiohttp's FileResponse answers an unsatisfiable Range itself, after the handler has returned
and past the error middleware, with an empty body. Handlers that serve files call
``check_range`` first, with the same rules FileResponse applies, so a 416 is JSON like every
other error.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from streamer.errors import ApiError


def unsatisfiable(request: web.Request, size: int, mtime: float) -> bool:
    if "Range" not in request.headers:
        return False
    if_range = request.if_range
    if if_range is not None and mtime > if_range.timestamp():
        return False  # a changed file: FileResponse sends all of it, the Range is ignored
    try:
        rng = request.http_range
    except ValueError:
        return True
    start = rng.start
    if start is None:
        return False
    if start < 0 and rng.stop is None:
        start = max(0, start + size)
    return start >= size


def check_range(request: web.Request, path: Path) -> None:
    try:
        st = path.stat()
    except OSError:
        return  # FileResponse answers the missing file
    if unsatisfiable(request, st.st_size, st.st_mtime):
        raise ApiError(416, "range_not_satisfiable",
                       f"the Range header asks for bytes outside this {st.st_size}-byte file",
                       {"Content-Range": f"bytes */{st.st_size}"})
