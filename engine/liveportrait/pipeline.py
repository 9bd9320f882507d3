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
from .emotions import (EYE_RATIO_NEUTRAL, LIP_RATIO_CLOSED, NEUTRAL_EXP, KeypointEdit,
                       expression_mask)
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

    def driving_expression(self, sources: list[SourceState], edits: list[KeypointEdit]) -> torch.Tensor:
        """The expression each frame drives with, (B,21,3) float32.

        Baseline "photo": the source's own ``exp`` plus the edit's delta. Absolute edits
        (baseline "neutral"): the source's expression components are replaced by NEUTRAL_EXP
        first, so the result does not depend on what the photo's face was doing.
        """
        exp = torch.cat([s.exp for s in sources])
        delta = torch.from_numpy(np.stack([e.expression_delta() for e in edits])).to(self.device)
        return self._base_expression(exp, edits) + delta

    def _base_expression(self, exp: torch.Tensor, edits: list[KeypointEdit]) -> torch.Tensor:
        rows = [e.absolute for e in edits]
        if not any(rows):
            return exp
        dev = self.device
        replace = torch.from_numpy(expression_mask()).to(dev)[None] & \
            torch.tensor(rows, dtype=torch.bool, device=dev).reshape(-1, 1, 1)
        return torch.where(replace, torch.from_numpy(NEUTRAL_EXP).to(dev)[None], exp)

    def edited_keypoints(self, sources: list[SourceState], edits: list[KeypointEdit]) -> torch.Tensor:
        """Edited and retargeted driving keypoints before stitching, (B,21,3) float32."""
        dev = self.device
        kp = torch.cat([s.kp_canonical for s in sources])
        scale = torch.cat([s.scale for s in sources])
        t_src = torch.cat([s.t for s in sources])
        t = t_src.clone()
        x_s = torch.cat([s.x_s for s in sources])
        angles = torch.cat([s.angles for s in sources])
        d_angles = torch.tensor([[e.d_pitch, e.d_yaw, e.d_roll] for e in edits], dtype=torch.float32,
                                device=dev)
        ang = angles + d_angles
        rot = kp_math.rotation_matrix(ang[:, 0], ang[:, 1], ang[:, 2])
        t[:, 1] += torch.tensor([e.shift_y for e in edits], dtype=torch.float32, device=dev)
        x_d = kp_math.compose_keypoints(kp, rot, self.driving_expression(sources, edits), scale, t)

        # The retargeting nets move the eyes/lips of the keypoints they are given from one open
        # ratio to another. Photo: from the source's measured ratios, on x_s. Absolute: from the
        # neutral reference (the source's pose and shape with NEUTRAL_EXP), minus the nets' output
        # at target == reference, so a target equal to the reference moves nothing.
        x_cond = x_s
        absolute = [e.absolute for e in edits]
        if any(absolute):
            rot_s = kp_math.rotation_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
            exp = torch.cat([s.exp for s in sources])
            x_ref = kp_math.compose_keypoints(kp, rot_s, self._base_expression(exp, edits), scale, t_src)
            x_cond = torch.where(torch.tensor(absolute, device=dev).reshape(-1, 1, 1), x_ref, x_s)
        net = self.models.stitching
        for kind, module in (("eye", net.eye), ("lip", net.lip)):
            rows = [_retarget_rows(kind, s, e) for s, e in zip(sources, edits)]
            if any(r.on for r in rows):
                ratio = torch.tensor([r.ratio for r in rows], dtype=torch.float32, device=dev)
                gate = torch.tensor([r.on for r in rows], dtype=torch.float32, device=dev).reshape(-1, 1, 1)
                x_d = x_d + gate * kp_math.retarget(module, x_cond, ratio)
                if any(r.on and r.reference is not None for r in rows):
                    ref = torch.tensor([r.reference or r.ratio for r in rows], dtype=torch.float32, device=dev)
                    ref_gate = torch.tensor([r.on and r.reference is not None for r in rows],
                                            dtype=torch.float32, device=dev).reshape(-1, 1, 1)
                    x_d = x_d - ref_gate * kp_math.retarget(module, x_cond, ref)
        return x_d

    def driving_keypoints(self, sources: list[SourceState], edits: list[KeypointEdit]) -> torch.Tensor:
        """Edited, retargeted and stitched driving keypoints x_d (B,21,3), float32."""
        x_s = torch.cat([s.x_s for s in sources])
        return kp_math.stitching(self.models.stitching.stitching, x_s, self.edited_keypoints(sources, edits))

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


@dataclass(frozen=True)
class _RetargetRow:
    ratio: list[float]  # the net's ratio input: [source..., target]
    on: bool  # apply this row's delta
    reference: list[float] | None = None  # absolute: the same input at target == reference


def _retarget_rows(kind: str, src: SourceState, edit: KeypointEdit) -> _RetargetRow:
    """Ratio input of the eye ([left, right, target]) or lip ([source, target]) net for one frame."""
    target = edit.eye_target if kind == "eye" else edit.lip_target
    if edit.absolute:
        ref = EYE_RATIO_NEUTRAL if kind == "eye" else LIP_RATIO_CLOSED
        start = [ref, ref] if kind == "eye" else [ref]
        goal = ref if target is None else float(target)
        return _RetargetRow(start + [goal], abs(goal - ref) > 1e-9, start + [ref])
    start = [src.eye_ratio[0], src.eye_ratio[1]] if kind == "eye" else [src.lip_ratio]
    return _RetargetRow(start + [target if target is not None else 0.0], target is not None)
