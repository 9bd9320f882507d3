"""Warping module W: warps the source feature volume by the keypoint motion for G."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import SameBlock2d
from .dense_motion import DenseMotionNetwork

__all__ = ["WarpingNetwork"]


class WarpingNetwork(nn.Module):
    """Constructor arguments are the ``model_params`` of warping_module.pth.

    forward(feature_3d, kp_driving, kp_source) -> dict with
      occlusion_map (B,1,H,W), deformation (B,D,H,W,3), out (B,256,H,W; already
      multiplied by the occlusion map) and mask (B,K+1,D,H,W; diagnostic).
    Note the positional order: driving before source (as in the official module).
    """

    def __init__(self, num_kp: int, block_expansion: int, max_features: int,
                 num_down_blocks: int, reshape_channel: int,
                 estimate_occlusion_map: bool = False,
                 dense_motion_params: dict[str, Any] | None = None, **_: Any) -> None:
        super().__init__()
        if dense_motion_params is None:
            # Every released checkpoint has a dense-motion network; W is meaningless without it.
            raise ValueError("WarpingNetwork needs dense_motion_params")
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp, feature_channel=reshape_channel,
            estimate_occlusion_map=estimate_occlusion_map, **dense_motion_params)
        width = block_expansion * (2 ** num_down_blocks)
        self.third = SameBlock2d(max_features, width, lrelu=True)
        self.fourth = nn.Conv2d(width, width, kernel_size=1)

    def forward(self, feature_3d: torch.Tensor, kp_driving: torch.Tensor,
                kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        motion = self.dense_motion_network(feature_3d, kp_driving, kp_source)
        deformation = motion["deformation"]
        # The full (uncompressed) volume is warped, then flattened to 2-D channels.
        warped = F.grid_sample(feature_3d, deformation, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        b, c, d, h, w = warped.shape
        out = self.fourth(self.third(warped.view(b, c * d, h, w)))
        occlusion = motion.get("occlusion_map")
        if occlusion is not None:
            out = out * occlusion
        return {"occlusion_map": occlusion, "deformation": deformation, "out": out,
                "mask": motion["mask"]}
