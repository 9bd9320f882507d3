"""Our LivePortrait implementation against the official reference outputs (seed-1 weights).

The conformance CLI runs once, as a subprocess, on the reference cases.npz; every array must
pass the reference compare_outputs.py with tolerances.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.liveportrait import kp_math
from engine.liveportrait.networks.stitching import StitchingRetargeting
from engine.liveportrait.weights import STITCHING
from lp_fixtures import REF_DIR, REPO_ROOT, file_tensor_digest, manifest, needs_reference, seed1_checkpoints

pytestmark = needs_reference


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lp_conf") / "candidate.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "engine.liveportrait.conformance", "--checkpoints", str(seed1_checkpoints()),
         "--cases", str(REF_DIR / "cases.npz"), "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _compare(cand: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REF_DIR / "compare_outputs.py"), str(REF_DIR / "cases.npz"),
                           str(cand), "--strict", *extra], capture_output=True, text=True, timeout=300)


def test_generated_checkpoints_match_reference_digests() -> None:
    want = json.loads((REF_DIR / "checkpoint_digests_seed1.json").read_text())["tensor_sha256"]
    root = seed1_checkpoints()
    got = {e["path"]: file_tensor_digest(root, e) for e in manifest()["files"]}
    assert got == want


def test_every_reference_array_passes(candidate: Path) -> None:
    proc = _compare(candidate)
    assert proc.returncode == 0, proc.stdout
    assert "FAIL" not in proc.stdout and "missing" not in proc.stdout
    tolerances = json.loads((REF_DIR / "tolerances.json").read_text())["arrays"]
    with np.load(candidate) as c:
        assert set(tolerances) <= set(c.files)


def test_comparison_catches_a_small_error(candidate: Path, tmp_path: Path) -> None:
    # The gate must be able to fail: a 1e-3 relative nudge of one keypoint array is caught.
    with np.load(candidate) as c:
        arrays = {k: c[k] for k in c.files}
    arrays["g_x_d_stitched"] = arrays["g_x_d_stitched"] * np.float32(1.001)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    proc = _compare(bad, "--only", "g_x_d")
    assert proc.returncode != 0 and "FAIL" in proc.stdout


def test_stitching_file_loads_with_or_without_module_prefix() -> None:
    ckpt = torch.load(seed1_checkpoints() / STITCHING, map_location="cpu", weights_only=True)
    assert all(k.startswith("module.") for k in ckpt["retarget_eye"])
    a, b = StitchingRetargeting(), StitchingRetargeting()
    a.load_official(ckpt)
    b.load_official({name: {k.replace("module.", ""): v for k, v in sd.items()} for name, sd in ckpt.items()})
    x = torch.randn(2, 66)
    assert torch.equal(a.eye(x), b.eye(x))
    with pytest.raises(KeyError, match="retarget_mouth"):
        StitchingRetargeting().load_official({"retarget_shoulder": ckpt["retarget_shoulder"]})
    with pytest.raises(RuntimeError):  # strict: a missing tensor is an error, not a silent default
        broken = dict(ckpt)
        broken["retarget_eye"] = {k: v for k, v in ckpt["retarget_eye"].items() if "mlp.10" not in k}
        StitchingRetargeting().load_official(broken)


def test_rotation_and_keypoint_equation_facts() -> None:
    # Degrees pass through transform_keypoint unchanged; (B,66) logits are converted.
    logits = torch.zeros(1, 66)
    logits[0, 40] = 50.0  # all mass on bin 40 -> 3*40 - 97.5 degrees
    assert kp_math.bins_to_degrees(logits).item() == pytest.approx(22.5, abs=1e-4)
    r = kp_math.rotation_matrix(torch.tensor([0.0]), torch.tensor([90.0]), torch.tensor([0.0]))
    # Row-vector convention kp @ R with R = Ry^T: x axis goes to -z... i.e. (1,0,0) @ R = (0,0,-1)
    assert torch.allclose(torch.tensor([[1.0, 0.0, 0.0]]) @ r[0], torch.tensor([[0.0, 0.0, -1.0]]), atol=1e-6)
    info = {"kp": torch.ones(1, 21, 3), "exp": torch.zeros(1, 21, 3), "scale": torch.tensor([[2.0]]),
            "t": torch.tensor([[0.5, -0.5, 9.0]]), "pitch": torch.zeros(1, 1), "yaw": torch.zeros(1, 1),
            "roll": torch.zeros(1, 1)}
    x = kp_math.transform_keypoint(info)
    assert torch.allclose(x[0, 0], torch.tensor([2.5, 1.5, 2.0]))  # t_z ignored
