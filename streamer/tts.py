"""Text to speech with espeak-ng (Debian package espeak-ng), for POST /sessions/{id}/say.

A subprocess without a shell, the text after ``--`` so that it can never be read as an option,
under a timeout that kills it."""
from __future__ import annotations

import asyncio
import shutil
import subprocess

from streamer.errors import ApiError

SYNTH_TIMEOUT_S = 20.0


def tts_available() -> bool:
    """True when espeak-ng is on PATH (looked up per call: installing it needs no restart)."""
    return shutil.which("espeak-ng") is not None


async def synthesize(text: str, timeout_s: float = SYNTH_TIMEOUT_S) -> bytes:
    """espeak-ng's WAV for ``text``. Raises ApiError 501 (not installed), 504 (too slow),
    502 (it failed)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ApiError(501, "tts_unavailable", "espeak-ng is not installed on this server")
    proc = await asyncio.create_subprocess_exec(
        exe, "--stdout", "--", text,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        await _kill(proc)
        raise ApiError(504, "tts_timeout", f"espeak-ng took longer than {timeout_s:g} s") from None
    except asyncio.CancelledError:  # the client went away: never leave the process behind
        await _kill(proc)
        raise
    if proc.returncode != 0 or not out:
        raise ApiError(502, "tts_failed", f"espeak-ng failed (exit status {proc.returncode})")
    return out


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await asyncio.shield(proc.wait())
