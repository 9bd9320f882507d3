"""Strict JSON in and out: only finite numbers of sane size cross the wire.

Python's json accepts `NaN`, `Infinity` and `-Infinity` (not JSON, and browsers cannot parse
them back), turns `1e400` into inf, and parses a 4000-digit integer that then makes
``float()`` or ``math.isfinite`` raise OverflowError deep inside a handler. Here every number
is checked while it is parsed, so a handler never sees one it cannot compute with, and
every server answer is written with ``allow_nan=False``.
"""
from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

# Integers longer than this (sign excluded) are refused while parsing: no field of the
# protocol comes near it, and a 20-digit literal is already past float's exact range.
MAX_INT_DIGITS = 20


class NumberError(ValueError):
    """A number literal the server refuses: NaN/Infinity, an overflowing float, a huge integer."""


def _reject_constant(name: str) -> Any:
    raise NumberError(f"{name} is not a JSON number; send a finite number")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise NumberError(f"an integer of {len(text.lstrip('-'))} digits is too large")
    return int(text) + 0  # "-0" -> 0


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NumberError(f"{text[:32]} overflows a double; send a finite number")
    return value + 0.0  # -0.0 -> 0.0, so it is never echoed as "-0.0"


def loads(text: str | bytes) -> Any:
    """json.loads that raises NumberError for any number the server refuses (a ValueError,
    so callers that catch ValueError for bad JSON keep working)."""
    return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int,
                      parse_float=_parse_float)


def _blank_int(text: str) -> int | None:
    try:
        return _parse_int(text)
    except NumberError:
        return None


def _blank_float(text: str) -> float | None:
    try:
        return _parse_float(text)
    except NumberError:
        return None


def loads_blanking(text: str | bytes) -> Any:
    """Like loads, but every refused number reads as None (to report on a refused message)."""
    return json.loads(text, parse_constant=lambda _: None, parse_int=_blank_int,
                      parse_float=_blank_float)


def dumps(obj: Any) -> str:
    """json.dumps that raises ValueError instead of writing NaN/Infinity."""
    return json.dumps(obj, allow_nan=False)


def json_response(data: Any, **kwargs: Any) -> web.Response:
    """web.json_response with the strict encoder."""
    return web.json_response(data, dumps=dumps, **kwargs)


def finite_number(value: Any) -> float | None:
    """value as a finite float, or None when it is not a real number (bools, strings, NaN,
    inf, an int too large for a double). Never raises; -0 becomes 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f + 0.0 if math.isfinite(f) else None
