"""F, W and G against the official reference outputs (seed-1 synthetic checkpoints).

Checkpoints come from lp_fixtures.seed1_checkpoints(): generated once per test process and
shared with the conformance, weights and render tests (or $LP_CKPT_DIR).
Case f runs on its first batch element only, to keep the test around 15 s on 2 cores.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine.liveportrait.networks.appearance import AppearanceFeatureExtractor
from engine.liveportrait.networks.spade import SPADEDecoder
from engine.liveportrait.networks.warping import WarpingNetwork

from lp_fixtures import REF_DIR, needs_reference, seed1_checkpoints

pytestmark = needs_reference


@pytest.fixture(scope="module")
def ckpt_dir() -> Path:
    return seed1_checkpoints()


@pytest.fixture(scope="module")
def cases() -> Any:
    return np.load(REF_DIR / "cases.npz")


@pytest.fixture(scope="module")
def tolerances() -> dict[str, dict[str, float]]:
    return json.loads((REF_DIR / "tolerances.json").read_text())["arrays"]


def _model_params() -> dict[str, dict[str, Any]]:
    files = json.loads((REF_DIR / "manifest.json").read_text())["files"]
    return {e["model"]: e["model_params"] for e in files if "model_params" in e}


def _load(cls: type[torch.nn.Module], model: str, ckpt_dir: Path) -> torch.nn.Module:
    net = cls(**_model_params()[model]).eval()
    sd = torch.load(ckpt_dir / "liveportrait" / "base_models" / f"{model}.pth",
                    map_location="cpu", weights_only=True)
    net.load_state_dict(sd, strict=True)
    return net


def _regenerate(name: str, seed: list[int], shape: tuple[int, ...], scale: float,
                cases: Any) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    arr = ((2 * rng.random(shape) - 1) * (np.sqrt(3.0) * scale)).astype(np.float32)
    assert hashlib.sha256(arr.tobytes()).hexdigest() == str(cases[name + "__sha256"])
    return torch.from_numpy(arr)


def _check(name: str, cand: torch.Tensor, cases: Any, tol: dict[str, float],
           batch: int | None = None) -> None:
    """compare_outputs.py's criterion, restricted to the first `batch` elements if given."""
    c = cand.detach().numpy().astype(np.float64)
    if name + "__idx" in cases.files:
        shape = tuple(int(s) for s in cases[name + "__shape"])
        nb = batch or shape[0]
        assert c.shape == (nb,) + shape[1:], (name, c.shape)
        idx, val = cases[name + "__idx"], cases[name + "__val"].astype(np.float64)
        keep = idx < c.size  # flat C-order: the first nb batch elements come first
        ref, got = val[keep], c.reshape(-1)[idx[keep]]
        rows = c.reshape(nb, shape[1], -1)
        chan_err = max(np.abs(rows.mean(2) - cases[name + "__chan_mean"][:nb]).max(),
                       np.abs(rows.std(2) - cases[name + "__chan_std"][:nb]).max())
    else:
        ref = cases[name].astype(np.float64)[: batch or None]
        assert c.shape == ref.shape, (name, c.shape, ref.shape)
        got, chan_err = c, 0.0
    peak = float(np.abs(ref).max())
    bound = tol["atol"] + tol["rtol"] * peak
    bound_mean = tol["atol"] + tol["rtol_mean"] * peak
    d = np.abs(got - ref)
    assert d.max() <= bound and chan_err <= bound, f"{name}: max|d|={d.max():.3g} > {bound:.3g}"
    assert d.mean() <= bound_mean, f"{name}: mean|d|={d.mean():.3g} > {bound_mean:.3g}"


@torch.inference_mode()
def test_appearance_matches_reference(ckpt_dir: Path, cases: Any, tolerances: Any) -> None:
    net = _load(AppearanceFeatureExtractor, "appearance_feature_extractor", ckpt_dir)
    out = net(torch.from_numpy(cases["img"]))
    _check("a_feature_3d", out, cases, tolerances["a_feature_3d"])


@torch.inference_mode()
def test_warping_and_decoder_match_reference(ckpt_dir: Path, cases: Any,
                                             tolerances: Any) -> None:
    feature = _regenerate("f_feature_3d", [1, 1], (2, 32, 16, 64, 64), 0.5, cases)[:1]
    warp = _load(WarpingNetwork, "warping_module", ckpt_dir)
    kp_s = torch.from_numpy(cases["f_kp_source"][:1])
    kp_d = torch.from_numpy(cases["f_kp_driving"][:1])
    res = warp(feature, kp_d, kp_s)  # positional: driving before source
    assert set(res) == {"occlusion_map", "deformation", "out", "mask"}
    for key, name in [("occlusion_map", "f_occlusion_map"), ("deformation", "f_deformation"),
                      ("out", "f_warped_feature"), ("mask", "f_dense_motion_mask")]:
        _check(name, res[key], cases, tolerances[name], batch=1)

    gen = _load(SPADEDecoder, "spade_generator", ckpt_dir)
    image = gen(res["out"])
    _check("f_image", image, cases, tolerances["f_image"], batch=1)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0

    f2 = _regenerate("f2_feature", [1, 2], (1, 256, 64, 64), 0.3, cases)
    _check("f2_image", gen(f2), cases, tolerances["f2_image"])


def test_spectral_norm_uses_stored_vectors() -> None:
    """Changing the stored u must change the output: sigma is not recomputed (no SVD/power step)."""
    from engine.liveportrait.networks.blocks import SpectralNormConv2d

    conv = SpectralNormConv2d(4, 6, 3, padding=1).eval()
    x = torch.randn(1, 4, 8, 8)
    w = conv.weight_orig.detach().reshape(6, -1)
    sigma = torch.dot(conv.weight_u, w @ conv.weight_v)
    ref = torch.nn.functional.conv2d(x, conv.weight_orig / sigma, conv.bias, padding=1)
    torch.testing.assert_close(conv(x), ref)
    with torch.no_grad():
        conv.weight_u.mul_(2.0)
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(
        x, conv.weight_orig / (2 * sigma), conv.bias, padding=1))
    assert sorted(conv.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
