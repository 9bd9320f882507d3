"""Dense-motion estimator inside W: sparse keypoint motions -> dense deformation + occlusion.

Facts of the official network that matter for bit-level agreement:
* the identity grid along an axis of size n is 2*(i/(n-1)) - 1, last dim ordered (x, y, z);
* every grid_sample is trilinear, zero-padded, align_corners=False;
* keypoint k's motion is a pure translation: grid - kp_driving_k + kp_source_k;
* entry 0 is the background (identity motion, zero heatmap), so there are num_kp + 1 entries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Hourglass

__all__ = ["DenseMotionNetwork", "identity_grid", "keypoint_gaussians"]

KP_VARIANCE = 0.01


def identity_grid(depth: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(D, H, W, 3) normalised coordinates (x, y, z) spanning [-1, 1] on each axis."""

    def axis(n: int) -> torch.Tensor:
        i = torch.arange(n, device=like.device).to(like.dtype)
        return 2 * (i / (n - 1)) - 1

    z, y, x = torch.meshgrid(axis(depth), axis(height), axis(width), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def _as_offsets(kp: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) -> (B, K, 1, 1, 1, 3), broadcastable against a (D, H, W, 3) grid."""
    return kp[:, :, None, None, None, :]


def keypoint_gaussians(kp: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) keypoints on a (D, H, W, 3) grid -> (B, K, D, H, W) unnormalised Gaussians."""
    diff = grid[None, None] - _as_offsets(kp)
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / KP_VARIANCE)


class DenseMotionNetwork(nn.Module):
    """Predicts a softmax mix of the num_kp+1 sparse motions and an occlusion map."""

    def __init__(self, block_expansion: int, num_blocks: int, max_features: int, num_kp: int,
                 feature_channel: int, reshape_depth: int, compress: int,
                 estimate_occlusion_map: bool = True) -> None:
        super().__init__()
        self.num_kp = num_kp
        entries = num_kp + 1
        # Per entry: one heatmap channel + the compressed, deformed feature channels.
        self.hourglass = Hourglass(block_expansion, entries * (compress + 1), num_blocks,
                                   max_features)
        self.mask = nn.Conv3d(self.hourglass.out_filters, entries, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress)
        self.occlusion: nn.Conv2d | None = None
        if estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1,
                                       kernel_size=7, padding=3)

    def sparse_motions(self, grid: torch.Tensor, kp_driving: torch.Tensor,
                       kp_source: torch.Tensor) -> torch.Tensor:
        """(B, K+1, D, H, W, 3) sampling grids: background identity, then one per keypoint."""
        b = kp_source.shape[0]
        per_kp = (grid[None, None] - _as_offsets(kp_driving)) + _as_offsets(kp_source)
        background = grid[None, None].expand(b, 1, *grid.shape)
        return torch.cat([background, per_kp], dim=1)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor,
                kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, d, h, w = feature.shape
        entries = self.num_kp + 1
        small = F.relu(self.norm(self.compress(feature)))  # (B, compress, D, H, W)
        c = small.shape[1]

        grid = identity_grid(d, h, w, kp_source)
        motions = self.sparse_motions(grid, kp_driving, kp_source)

        # Warp the compressed volume once per entry: fold entries into the batch.
        repeated = small.unsqueeze(1).expand(b, entries, c, d, h, w).reshape(b * entries, c, d, h, w)
        deformed = F.grid_sample(repeated, motions.reshape(b * entries, d, h, w, 3),
                                 mode="bilinear", padding_mode="zeros", align_corners=False)
        deformed = deformed.view(b, entries, c, d, h, w)

        heat = keypoint_gaussians(kp_driving, grid) - keypoint_gaussians(kp_source, grid)
        heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1)

        # Per entry: [heatmap, deformed channels] -> (B, (K+1)*(c+1), D, H, W).
        hg_in = torch.cat([heat.unsqueeze(2), deformed], dim=2).view(b, -1, d, h, w)
        prediction = self.hourglass(hg_in)

        mask = F.softmax(self.mask(prediction), dim=1)  # (B, K+1, D, H, W)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)  # (B, D, H, W, 3)
        out = {"mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            flat = prediction.reshape(b, -1, h, w)  # channel = c * D + d
            out["occlusion_map"] = torch.sigmoid(self.occlusion(flat))
        return out
