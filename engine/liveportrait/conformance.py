"""Recompute every reference array of a conformance cases file with our implementation.

    python -m engine.liveportrait.conformance --checkpoints DIR --cases CASES.npz --out CANDIDATE.npz

DIR holds the five files in the HF repo layout. Each stage is fed the *stored* inputs of
that stage; case ``g`` is chained end to end on our own results. Stored "input" arrays that
are copies of an upstream output (``d_kp_source`` = ``c_kp_transformed`` ...) are written
from our upstream result, so they check something. Runs in float32 with TF32 off.
Only torch and numpy are imported.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from . import kp_math
from .loader import LivePortraitModels, load_models
from .pipeline import warp_decode


def _t(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


def _n(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def _regen(cases: np.lib.npyio.NpzFile, name: str, stream: int, shape: tuple[int, ...],
           amplitude: float) -> np.ndarray:
    """Regenerate a random input volume as the reference README specifies, checked by digest.

    The README's stream is ``default_rng([1, stream])``; for cases made with another weight
    seed we also try ``[seed, stream]`` and keep whichever matches the stored SHA-256.
    """
    seed = int(str(cases["meta_seed"])) if "meta_seed" in cases.files else 1
    want = str(cases[name + "__sha256"]) if name + "__sha256" in cases.files else None
    for first in dict.fromkeys((1, seed)):
        rng = np.random.default_rng([first, stream])
        x = ((2 * rng.random(shape) - 1) * (np.sqrt(3.0) * amplitude)).astype(np.float32)
        if want is None:
            return x
        if hashlib.sha256(np.ascontiguousarray(x).astype("<f4").tobytes()).hexdigest() == want:
            return x
    raise SystemExit(f"cannot regenerate {name}: no stream matches {name}__sha256")


def compute(models: LivePortraitModels, cases: np.lib.npyio.NpzFile,
            device: torch.device) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    g = lambda k: cases[k]  # noqa: E731
    dev = device

    # (a) preprocessing and F
    img = kp_math.preprocess(np.stack([g("img_u8_0"), g("img_u8_1")])).to(dev)
    out["img"] = _n(img)
    out["a_feature_3d"] = _n(models.appearance(img))

    # (b) M, degrees, rotation
    raw = models.motion(img)
    for k in ("pitch", "yaw", "roll", "t", "exp", "scale", "kp"):
        out[f"b_raw_{k}"] = _n(raw[k])
    info = kp_math.kp_info(raw)
    for k, v in info.items():
        out[f"b_info_{k}"] = _n(v)
    out["b_rot"] = _n(kp_math.rotation_matrix(info["pitch"], info["yaw"], info["roll"]))
    out["b_pure_bins_deg"] = _n(kp_math.bins_to_degrees(_t(g("b_pure_bins"), dev)))
    ang = _t(g("b_pure_angles"), dev)
    out["b_pure_rot"] = _n(kp_math.rotation_matrix(ang[:, 0:1], ang[:, 1:2], ang[:, 2:3]))

    # (c) transform_keypoint
    x_s = kp_math.transform_keypoint(info)
    out["c_kp_transformed"] = _n(x_s)
    pure = {k: _t(g(f"c_pure_{k}"), dev) for k in ("kp", "exp", "pitch", "yaw", "roll", "t", "scale")}
    out["c_pure_out"] = _n(kp_math.transform_keypoint(pure))

    # (d) stitching, on the stored inputs
    st = models.stitching
    d_src = _t(g("d_kp_source"), dev)
    d_drv = d_src + _t(g("d_offset"), dev)
    out["d_kp_source"] = out["c_kp_transformed"]
    out["d_kp_driving"] = _n(x_s + _t(g("d_offset"), dev))
    out["d_stitch_raw"] = _n(st.stitching(kp_math.concat_feat(d_src, d_drv)))
    out["d_stitching"] = _n(kp_math.stitching(st.stitching, d_src, d_drv))

    # (e) retargeting and close ratios
    e_src = _t(g("e_kp_source"), dev)
    out["e_kp_source"] = out["c_kp_transformed"]
    out["e_retarget_eye"] = _n(kp_math.retarget(st.eye, e_src, _t(g("e_eye_ratio"), dev)))
    out["e_retarget_lip"] = _n(kp_math.retarget(st.lip, e_src, _t(g("e_lip_ratio"), dev)))
    lmk = g("e_lmk")
    out["e_eye_close_ratio"] = kp_math.eye_close_ratio(lmk)
    out["e_eye_close_ratio_target"] = kp_math.eye_close_ratio(lmk, g("e_target_eye_ratio"))
    out["e_lip_close_ratio"] = kp_math.lip_close_ratio(lmk)
    out["e_combined_eye_ratio"] = _n(kp_math.combined_eye_ratio(kp_math.eye_close_ratio(lmk[1:2]), lmk[0]))
    out["e_combined_lip_ratio"] = _n(kp_math.combined_lip_ratio(kp_math.lip_close_ratio(lmk[2:3]), lmk[0]))

    # (f) warp_decode on a regenerated random volume and the stored keypoints
    f_shape = tuple(int(s) for s in g("f_feature_3d__shape"))
    f_feat = _t(_regen(cases, "f_feature_3d", 1, f_shape, 0.5), dev)
    out["f_kp_source"] = out["c_kp_transformed"]
    out["f_kp_driving"] = out["d_stitching"]
    ret = warp_decode(models, f_feat, _t(g("f_kp_source"), dev), _t(g("f_kp_driving"), dev))
    out["f_occlusion_map"] = _n(ret["occlusion_map"])
    out["f_deformation"] = _n(ret["deformation"])
    out["f_warped_feature"] = _n(ret["warped_feature"])
    out["f_dense_motion_mask"] = _n(ret["mask"])
    out["f_image"] = _n(ret["out"])
    del ret, f_feat

    # (f2) G alone
    f2_shape = tuple(int(s) for s in g("f2_feature__shape"))
    out["f2_image"] = _n(models.spade(feature=_t(_regen(cases, "f2_feature", 2, f2_shape, 0.3), dev)))

    # (g) end to end on our own upstream results
    img0 = img[0:1]
    feat0 = models.appearance(img0)
    info0 = kp_math.kp_info(models.motion(img0))
    g_x_s = kp_math.transform_keypoint(info0)
    info_d = dict(info0)
    info_d["exp"] = info0["exp"] + _t(g("g_exp_delta"), dev)
    g_x_d = kp_math.transform_keypoint(info_d)
    g_x_st = kp_math.stitching(st.stitching, g_x_s, g_x_d)
    ret = warp_decode(models, feat0, g_x_s, g_x_st)
    out["g_feature_3d"] = _n(feat0)
    out["g_x_s"], out["g_x_d"], out["g_x_d_stitched"] = _n(g_x_s), _n(g_x_d), _n(g_x_st)
    out["g_occlusion_map"] = _n(ret["occlusion_map"])
    out["g_deformation"] = _n(ret["deformation"])
    out["g_warped_feature"] = _n(ret["warped_feature"])
    out["g_image"] = _n(ret["out"])
    out["g_image_u8"] = kp_math.to_uint8(ret["out"])
    return out


def set_strict_fp32() -> None:
    """TF32 would add ~1e-3 relative error, far above the tolerances."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def run(checkpoints: Path, cases_path: Path, out_path: Path, device: str = "cpu") -> dict[str, np.ndarray]:
    set_strict_fp32()
    dev = torch.device(device)
    models = load_models(checkpoints, dev)
    # On CUDA, cuDNN's fp32 conv algorithms drift about twice as far from the CPU reference
    # as the native kernels (measured on an H100: g_image mean error 4.6e-6 vs 2.3e-6), which
    # the uint8 truncation gate of g_image_u8 amplifies past its 0.1 % limit. Conformance is
    # about the arithmetic, so it runs without cuDNN; the engine keeps cuDNN for speed.
    cudnn_was = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = dev.type != "cuda"
    try:
        with np.load(cases_path) as cases, torch.no_grad():
            result = compute(models, cases, dev)
    finally:
        torch.backends.cudnn.enabled = cudnn_was
    np.savez(out_path, **result)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.liveportrait.conformance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", type=Path, required=True, help="folder in the HF repo layout")
    p.add_argument("--cases", type=Path, required=True, help="cases.npz of the reference")
    p.add_argument("--out", type=Path, required=True, help="candidate .npz to write")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]; always float32")
    args = p.parse_args(argv)
    result = run(args.checkpoints, args.cases, args.out, args.device)
    print(f"wrote {len(result)} arrays to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
