"""The installed command: packaging sanity, serve, render, bench, and clean engine errors."""
from __future__ import annotations

import importlib.metadata as md
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from streamer.runtime.gpu import cuda_available

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamer", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_exactly_one_opencv_distribution_and_cv2_imports():
    names = sorted({(d.metadata["Name"] or "").lower() for d in md.distributions()
                    if (d.metadata["Name"] or "").lower().startswith("opencv")})
    assert names == ["opencv-contrib-python"], names
    import cv2

    assert hasattr(cv2, "remap") and hasattr(cv2, "ximgproc")  # contrib modules present


def test_console_script_is_installed_and_lists_subcommands():
    exe = shutil.which("liveportrait-avatar", path=str(Path(sys.executable).parent))
    assert exe, "pip install -e . should install the liveportrait-avatar script"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for sub in ("serve", "render", "bench", "download-weights"):
        assert sub in out.stdout


def test_render_writes_an_image(tmp_path, grace_hopper_jpeg):
    src = tmp_path / "portrait.jpg"
    src.write_bytes(grace_hopper_jpeg)
    out = tmp_path / "happy.webp"
    res = run_cli("render", str(src), "--emotion", "happy", "--intensity", "0.9", "-o", str(out))
    assert res.returncode == 0, res.stderr
    frame = np.asarray(Image.open(io.BytesIO(out.read_bytes())))
    assert frame.shape == (512, 512, 3)


def test_render_bad_inputs_fail_cleanly(tmp_path, cat_jpeg):
    cat = tmp_path / "cat.jpg"
    cat.write_bytes(cat_jpeg)
    res = run_cli("render", str(cat), "--emotion", "sad")
    assert res.returncode == 1 and "no face found" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("render", str(tmp_path / "missing.jpg"), "--emotion", "sad")
    assert res.returncode == 1 and "cannot read" in res.stderr
    res = run_cli("render", str(cat), "--emotion", "sad", "--intensity", "2")
    assert res.returncode == 2 and "intensity" in res.stderr
    res = run_cli("render", str(cat), "--emotion", "elated")
    assert res.returncode == 2 and "invalid choice" in res.stderr


@pytest.mark.skipif(cuda_available(), reason="checks the no-GPU path")
def test_liveportrait_without_gpu_or_weights_exits_with_a_message(tmp_path, grace_hopper_jpeg):
    src = tmp_path / "p.jpg"
    src.write_bytes(grace_hopper_jpeg)
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    res = run_cli("render", str(src), "--emotion", "happy", "--engine", "liveportrait",
                  "--device", "cuda", env=env)
    assert res.returncode == 2 and "error:" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("serve", "--engine", "liveportrait", "--no-download", "--port", "1", env=env)
    assert res.returncode == 2 and "error:" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("download-weights", env=env)
    assert res.returncode == 2 and "HF_HUB_OFFLINE" in res.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_auto_picks_mesh_without_gpu_and_stops_on_sigterm(tmp_path, grace_hopper_jpeg):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamer", "serve", "--port", str(port),
                             "--output-dir", str(tmp_path / "out"), "--output-ttl", "60"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    health = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.3)
        assert health is not None, proc.stdout.read() if proc.poll() is not None else "no answer"
        assert health["status"] == "healthy"
        if not cuda_available():
            assert health["engine"] == "mesh"
        # The README's curl example, done with the standard library.
        boundary = "b0undary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"emotion\"\r\n\r\nhappy\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"intensity\"\r\n\r\n0.8\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"source_image\"; "
                f"filename=\"portrait.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() \
            + grace_hopper_jpeg + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/render", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            result = json.loads(r.read())
        assert result["emotion"] == "happy" and Path(result["output_path"]).parent == (tmp_path / "out")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGTERM)


def test_bench_prints_json():
    res = run_cli("bench", "--engine", "mesh", "--frames", "3", "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["prepare_ms"] > 0 and result["render_ms_median"] > 0


def test_version_prints_the_installed_package_version():
    exe = shutil.which("liveportrait-avatar", path=str(Path(sys.executable).parent))
    assert exe
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"liveportrait-avatar {md.version('liveportrait-avatar')}"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", md.version("liveportrait-avatar"))
