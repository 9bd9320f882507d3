"""Schemathesis against the live server: every response must be documented in /openapi.json
(status, content type, headers, JSON schema) and never a 500.

The schemathesis CLI runs in a subprocess (its requests are blocking) while the real server
runs on a loopback port in this test's event loop. All four phases run: examples, coverage
(boundary values and every enum), fuzzing (random and negative data) and stateful (following
the document's links, e.g. POST /sessions -> GET/DELETE /sessions/{id}).

Excluded check, and why: positive_data_acceptance. A schema can say "binary image", not
"a photo with one visible face", so a schema-valid upload is legitimately refused with 422
invalid_image / no_face (or 400 empty_file). Instead, the hook below swaps a real portrait
into half of the positive uploads, so real renders and real sessions are exercised too.

Run alone:  python -m pytest tests/test_fuzz_schemathesis.py -q -s   (prints the case count)
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.http_exceptions import BadHttpMessage

from streamer.config import SessionLimits

REPO = Path(__file__).resolve().parent.parent
MAX_EXAMPLES = 12  # per operation and phase: ~400-600 requests, ~30 s on the 2-core box
SEED = 20261126  # reproducible; change it locally to explore further
_HOOKS_ENV = "LPA_SCHEMATHESIS_HOOKS"

if os.environ.get(_HOOKS_ENV) == "1":  # only inside the schemathesis subprocess
    import schemathesis
    from hypothesis import strategies as st

    _face: list[bytes] = []
    _FORM_FIELDS = {
        "/render": {"source_image", "emotion", "intensity", "output_format", "mode"},
        "/render/batch": {"source_image", "emotions", "intensity", "output_format", "mode"},
        "/sessions": {"source_image", "fps", "size", "codec", "idle_motion"},
    }

    def _portrait() -> bytes:
        if not _face:
            from streamer.samples import sample_portrait_bytes

            _face.append(sample_portrait_bytes("grace_hopper"))
        return _face[0]

    def _generated_image(value: object) -> bool:
        """Schemathesis fills a positive image/* field with a tiny real image; a negated one
        (a number, text, an empty part) must stay as it is."""
        return isinstance(value, bytes) and value[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0",
                                                          b"\xff\xd8\xff\xdb", b"GIF8", b"RIFF")

    @schemathesis.hook
    def flatmap_case(context, case):  # type: ignore[no-untyped-def]
        body = case.body
        meta = case.meta
        positive = meta is None or (not meta.generation.mode.is_negative and not any(
            c.mode.is_negative for c in meta.components.values()))
        # Only plain forms: a "negative" case whose only flaw is an extra field (ignored by the
        # server) or a one-item array sent as one field would become a valid request here.
        known = _FORM_FIELDS.get(case.operation.path, set())
        if not positive or not isinstance(body, dict) or not set(body) <= known \
                or not _generated_image(body.get("source_image")):
            return st.just(case)

        def with_face(use: bool):  # type: ignore[no-untyped-def]
            if use:
                case.body = {**body, "source_image": _portrait()}
            return case

        return st.booleans().map(with_face)


def _schemathesis_cmd() -> list[str]:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or \
        shutil.which("schemathesis")
    if exe is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    return [exe]


async def test_schemathesis_finds_no_undocumented_answer(start_server, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    cmd = _schemathesis_cmd()
    caplog.set_level(logging.ERROR, logger="streamer")
    srv = await start_server(sessions=SessionLimits(max_sessions=4))
    report = tmp_path / "report.ndjson"
    env = {**os.environ, _HOOKS_ENV: "1", "SCHEMATHESIS_HOOKS": "tests.test_fuzz_schemathesis",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "NO_COLOR": "1", "COLUMNS": "120"}
    # From a file (with --url), so that GET /openapi.json is fuzzed like any other operation.
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.base_url + "/openapi.json") as r:
            assert r.status == 200
            (tmp_path / "openapi.json").write_bytes(await r.read())
    args = [*cmd, "run", str(tmp_path / "openapi.json"), "--url", srv.base_url,
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "2",
            "--request-timeout", "20", "--no-shrink",
            "--report", "ndjson", "--report-ndjson-path", str(report)]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=tmp_path, env=env,  # cwd: its .hypothesis folder stays out of the repo
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out_b, _ = await asyncio.wait_for(proc.communicate(), timeout=300)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    out = out_b.decode("utf-8", "replace")
    m = re.search(r"(\d+) generated", out)
    assert m, out[-4000:]
    cases = int(m.group(1))
    print(f"\nschemathesis: {cases} cases against {srv.base_url}")
    assert proc.returncode == 0, out[-8000:]
    assert cases >= 200, out[-4000:]  # the run really ran
    assert re.search(r"Tested:\s+17\b", out), out[-3000:]  # every documented operation
    # No handler crashed (the middleware would have logged and answered 500 internal_error).
    # aiohttp itself logs (and answers 400 to) requests it cannot parse, such as schemathesis'
    # NUL-byte header probe: that is the HTTP parser working, not a handler crash.
    crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
               and not (r.exc_info and isinstance(r.exc_info[1], BadHttpMessage))]
    assert crashes == [], crashes

    # The server still serves: health, and a real render.
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.base_url + "/health") as r:
            assert r.status == 200
        async with http.get(srv.base_url + "/sessions") as r:
            assert r.status == 200
            assert len((await r.json())["sessions"]) <= 4
