"""Keypoint post-processing with the official semantics (see the reference README, section 4).

Everything here is batched: the leading dimension is the batch (sessions or cases).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

NUM_BINS = 66


def bins_to_degrees(pred: torch.Tensor) -> torch.Tensor:
    """(B, 66) pose-bin logits -> (B,) degrees in (-97.5, 97.5); other shapes pass through."""
    if pred.ndim > 1 and pred.shape[1] == NUM_BINS:
        idx = torch.arange(NUM_BINS, dtype=torch.float32, device=pred.device)
        return torch.sum(F.softmax(pred, dim=1) * idx, dim=1) * 3 - 97.5
    return pred


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Degrees (B,) or (B,1) -> (B,3,3) R = (Rz(roll) Ry(yaw) Rx(pitch))^T, applied as ``kp @ R``."""
    def rad(a: torch.Tensor) -> torch.Tensor:
        a = a / 180 * math.pi
        return a.reshape(-1, 1)

    x, y, z = rad(pitch), rad(yaw), rad(roll)
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    b = x.shape[0]
    rx = torch.cat([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], 1).reshape(b, 3, 3)
    ry = torch.cat([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], 1).reshape(b, 3, 3)
    rz = torch.cat([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], 1).reshape(b, 3, 3)
    return (rz @ ry @ rx).permute(0, 2, 1)


def kp_info(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Raw motion-extractor heads -> angles in degrees (B,1), kp/exp as (B,21,3), t and scale unchanged."""
    b = raw["kp"].shape[0]
    return {
        "pitch": bins_to_degrees(raw["pitch"])[:, None],
        "yaw": bins_to_degrees(raw["yaw"])[:, None],
        "roll": bins_to_degrees(raw["roll"])[:, None],
        "t": raw["t"],
        "exp": raw["exp"].reshape(b, -1, 3),
        "scale": raw["scale"],
        "kp": raw["kp"].reshape(b, -1, 3),
    }


def transform_keypoint(info: dict[str, torch.Tensor]) -> torch.Tensor:
    """x = scale * (kp @ R + exp), then x[..., :2] += t[:, :2] (t_z is ignored, as officially)."""
    kp = info["kp"]
    b = kp.shape[0]
    kp = kp.reshape(b, -1, 3)
    rot = rotation_matrix(bins_to_degrees(info["pitch"]), bins_to_degrees(info["yaw"]),
                          bins_to_degrees(info["roll"]))
    return compose_keypoints(kp, rot, info["exp"].reshape(b, -1, 3), info["scale"], info["t"])


def compose_keypoints(kp: torch.Tensor, rot: torch.Tensor, exp: torch.Tensor,
                      scale: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The keypoint equation s * (kp @ R + exp) + t_xy with explicit parts (used for editing)."""
    x = (kp @ rot + exp) * scale.reshape(-1, 1, 1)
    xy = x[..., 0:2] + t.reshape(-1, 3)[:, None, 0:2]
    return torch.cat([xy, x[..., 2:3]], dim=-1)


def concat_feat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cat([a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)], dim=1)


def apply_stitching(delta: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
    """Add the stitching MLP output (B,65): 63 per-keypoint deltas, then (dx, dy) to every keypoint."""
    b, n = kp_driving.shape[:2]
    out = kp_driving + delta[:, : 3 * n].reshape(b, n, 3)
    shift = torch.zeros(b, 1, 3, dtype=out.dtype, device=out.device)
    shift[..., 0:2] = delta[:, 3 * n: 3 * n + 2].reshape(b, 1, 2)
    return out + shift


def stitching(net: torch.nn.Module, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
    return apply_stitching(net(concat_feat(kp_source, kp_driving)), kp_driving)


def retarget(net: torch.nn.Module, kp_source: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Eye (ratio B,3) or lip (ratio B,2) retargeting: a (B,21,3) keypoint delta."""
    return net(concat_feat(kp_source, ratio)).reshape(-1, kp_source.shape[1], 3)


# --- close ratios on the official 203-point landmark layout (numpy, float64 like the reference) ---

def _distance_ratio(lmk: np.ndarray, i1: int, i2: int, i3: int, i4: int, eps: float = 1e-6) -> np.ndarray:
    num = np.linalg.norm(lmk[:, i1] - lmk[:, i2], axis=1, keepdims=True)
    den = np.linalg.norm(lmk[:, i3] - lmk[:, i4], axis=1, keepdims=True)
    return num / (den + eps)


def eye_close_ratio(lmk: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """(B,203,2) -> (B,2) [left, right] lid gap / eye width, or (B,3) with a target column."""
    cols = [_distance_ratio(lmk, 6, 18, 0, 12), _distance_ratio(lmk, 30, 42, 24, 36)]
    if target is not None:
        cols.append(target)
    return np.concatenate(cols, axis=1)


def lip_close_ratio(lmk: np.ndarray) -> np.ndarray:
    """(B,203,2) -> (B,1) inner-lip gap / mouth width."""
    return _distance_ratio(lmk, 90, 102, 48, 66)


def combined_eye_ratio(driving_eye_ratio: np.ndarray, source_lmk: np.ndarray) -> torch.Tensor:
    """[source left, source right, driving LEFT] as a (1,3) float32 tensor (driving right ignored)."""
    src = torch.from_numpy(eye_close_ratio(source_lmk[None])).float()
    drv = torch.tensor([float(driving_eye_ratio[0][0])], dtype=torch.float32).reshape(1, 1)
    return torch.cat([src, drv], dim=1)


def combined_lip_ratio(driving_lip_ratio: np.ndarray, source_lmk: np.ndarray) -> torch.Tensor:
    """[source lip, driving lip] as a (1,2) float32 tensor."""
    src = torch.from_numpy(lip_close_ratio(source_lmk[None])).float()
    drv = torch.tensor([float(np.asarray(driving_lip_ratio).reshape(-1)[0])], dtype=torch.float32).reshape(1, 1)
    return torch.cat([src, drv], dim=1)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) in [0,1] -> (B,H,W,3) uint8, truncating like the official parse_output."""
    x = image.detach().float().permute(0, 2, 3, 1).cpu().numpy()
    x = np.clip(x, 0, 1)
    return np.clip(x * 255, 0, 255).astype(np.uint8)


def preprocess(images_u8: np.ndarray) -> torch.Tensor:
    """(B,H,W,3) or (H,W,3) uint8 -> (B,3,H,W) float32 in [0,1]."""
    x = images_u8[None] if images_u8.ndim == 3 else images_u8
    x = np.clip(x.astype(np.float32) / 255.0, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()
