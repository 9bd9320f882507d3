"""The torch side of the engine: prepare (F + M on a 256x256 crop) and batched render.

Only torch and numpy are imported here, so bench/gpu.py can run this path on a bare GPU box.
Face detection, cropping and paste-back (OpenCV, mediapipe) live in ``engine.py``/``crop.py``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from . import kp_math
from .emotions import KeypointEdit
from .loader import LivePortraitModels


@dataclass(frozen=True)
class Precision:
    """How a device runs the networks. fp32 everywhere on CPU; autocast fp16/bf16 on CUDA."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None  # None: plain float32
    channels_last: bool = False

    def ctx(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


@dataclass
class SourceState:
    """Per-portrait tensors kept on the device (batch dimension 1)."""

    feature_3d: torch.Tensor  # (1,32,16,64,64) float32
    kp_canonical: torch.Tensor  # (1,21,3)
    exp: torch.Tensor  # (1,21,3)
    scale: torch.Tensor  # (1,1)
    t: torch.Tensor  # (1,3)
    angles: torch.Tensor  # (1,3) pitch, yaw, roll in degrees
    x_s: torch.Tensor  # (1,21,3) transformed source keypoints
    eye_ratio: tuple[float, float]  # source close ratios (lid gap / eye width), per eye
    lip_ratio: float

    def nbytes(self) -> int:
        return int(self.feature_3d.numel() * self.feature_3d.element_size())


def warp_decode(models: LivePortraitModels, feature_3d: torch.Tensor, kp_source: torch.Tensor,
                kp_driving: torch.Tensor) -> dict[str, torch.Tensor]:
    """W then G; returns W's dict with ``out`` replaced by the decoded image (B,3,512,512)."""
    ret = models.warping(feature_3d, kp_driving=kp_driving, kp_source=kp_source)
    ret = dict(ret)
    ret["warped_feature"] = ret["out"]
    ret["out"] = models.spade(feature=ret["out"])
    return ret


class LivePortraitCore:
    """Models on one device plus the two stages: ``prepare_crop`` and ``render_batch``."""

    def __init__(self, models: LivePortraitModels, precision: Precision) -> None:
        self.models = models
        self.precision = precision
        if precision.channels_last:
            # 2-D convs of G and W's output head run faster in NHWC on tensor cores.
            models.spade.to(memory_format=torch.channels_last)
            models.warping.third.to(memory_format=torch.channels_last)
            models.warping.fourth.to(memory_format=torch.channels_last)
        self._warp_decode = self._warp_decode_eager

    @property
    def device(self) -> torch.device:
        return self.precision.device

    def enable_compile(self) -> None:
        """Optional torch.compile of W and G (CUDA): slower start, faster steady state."""
        self.models.warping = torch.compile(self.models.warping)  # type: ignore[assignment]
        self.models.spade = torch.compile(self.models.spade)  # type: ignore[assignment]

    @torch.no_grad()
    def prepare_crop(self, crop_u8: np.ndarray, eye_ratio: tuple[float, float],
                     lip_ratio: float) -> SourceState:
        """crop_u8: 256x256x3 uint8 RGB face crop -> features and keypoints on the device."""
        x = kp_math.preprocess(crop_u8).to(self.device)
        with self.precision.ctx():
            feature = self.models.appearance(x)
            raw = self.models.motion(x)
        raw = {k: v.float() for k, v in raw.items()}
        info = kp_math.kp_info(raw)
        x_s = kp_math.transform_keypoint(info)
        angles = torch.cat([info["pitch"], info["yaw"], info["roll"]], dim=1)
        return SourceState(feature_3d=feature.float().contiguous(), kp_canonical=info["kp"],
                           exp=info["exp"], scale=info["scale"], t=info["t"], angles=angles,
                           x_s=x_s, eye_ratio=(float(eye_ratio[0]), float(eye_ratio[1])),
                           lip_ratio=float(lip_ratio))

    def driving_keypoints(self, sources: list[SourceState], edits: list[KeypointEdit]) -> torch.Tensor:
        """Edited, retargeted and stitched driving keypoints x_d (B,21,3), float32."""
        dev = self.device
        kp = torch.cat([s.kp_canonical for s in sources])
        exp = torch.cat([s.exp for s in sources])
        scale = torch.cat([s.scale for s in sources])
        t = torch.cat([s.t for s in sources]).clone()
        x_s = torch.cat([s.x_s for s in sources])
        angles = torch.cat([s.angles for s in sources])
        d_angles = torch.tensor([[e.d_pitch, e.d_yaw, e.d_roll] for e in edits], dtype=torch.float32,
                                device=dev)
        ang = angles + d_angles
        rot = kp_math.rotation_matrix(ang[:, 0], ang[:, 1], ang[:, 2])
        delta = torch.from_numpy(np.stack([e.expression_delta() for e in edits])).to(dev)
        t[:, 1] += torch.tensor([e.shift_y for e in edits], dtype=torch.float32, device=dev)
        x_d = kp_math.compose_keypoints(kp, rot, exp + delta, scale, t)

        net = self.models.stitching
        eye_on = [e.eye_target is not None for e in edits]
        if any(eye_on):
            ratio = torch.tensor([[s.eye_ratio[0], s.eye_ratio[1],
                                   e.eye_target if e.eye_target is not None else 0.0]
                                  for s, e in zip(sources, edits)], dtype=torch.float32, device=dev)
            gate = torch.tensor(eye_on, dtype=torch.float32, device=dev).reshape(-1, 1, 1)
            x_d = x_d + gate * kp_math.retarget(net.eye, x_s, ratio)
        lip_on = [e.lip_target is not None for e in edits]
        if any(lip_on):
            ratio = torch.tensor([[s.lip_ratio, e.lip_target if e.lip_target is not None else 0.0]
                                  for s, e in zip(sources, edits)], dtype=torch.float32, device=dev)
            gate = torch.tensor(lip_on, dtype=torch.float32, device=dev).reshape(-1, 1, 1)
            x_d = x_d + gate * kp_math.retarget(net.lip, x_s, ratio)
        return kp_math.stitching(net.stitching, x_s, x_d)

    def _warp_decode_eager(self, feature: torch.Tensor, x_s: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
        with self.precision.ctx():
            return warp_decode(self.models, feature, x_s, x_d)["out"]

    @torch.no_grad()
    def render_batch(self, sources: list[SourceState], edits: list[KeypointEdit]) -> torch.Tensor:
        """One forward for many sessions: (B,3,512,512) float32 images in [0,1] on the device."""
        x_d = self.driving_keypoints(sources, edits)
        x_s = torch.cat([s.x_s for s in sources])
        feature = torch.cat([s.feature_3d for s in sources]) if len(sources) > 1 else sources[0].feature_3d
        return self._warp_decode(feature, x_s, x_d).float()
