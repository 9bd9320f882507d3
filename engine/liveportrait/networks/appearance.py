"""Appearance feature extractor F: portrait crop (B,3,256,256) -> feature volume (B,32,16,64,64)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DownBlock2d, ResBlock3d, SameBlock2d

__all__ = ["AppearanceFeatureExtractor"]


class AppearanceFeatureExtractor(nn.Module):
    """2-D encoder whose last feature map is re-read as a 3-D volume, then 3-D res-blocks.

    Constructor arguments are the ``model_params`` of appearance_feature_extractor.pth.
    """

    def __init__(self, image_channel: int, block_expansion: int, num_down_blocks: int,
                 max_features: int, reshape_channel: int, reshape_depth: int,
                 num_resblocks: int) -> None:
        super().__init__()
        self.reshape_channel = reshape_channel
        self.reshape_depth = reshape_depth
        self.first = SameBlock2d(image_channel, block_expansion)
        blocks = []
        width = block_expansion
        for i in range(num_down_blocks):
            width_in = min(max_features, block_expansion * (2 ** i))
            width = min(max_features, block_expansion * (2 ** (i + 1)))
            blocks.append(DownBlock2d(width_in, width))
        self.down_blocks = nn.ModuleList(blocks)
        self.second = nn.Conv2d(width, max_features, kernel_size=1)
        # Sequential with names "3dr<i>" to match the checkpoint keys resblocks_3d.3dr<i>.*
        self.resblocks_3d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(reshape_channel))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        out = self.first(img)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        # channel index = c * depth + d, i.e. a plain view of the 2-D channels.
        volume = out.view(b, self.reshape_channel, self.reshape_depth, h, w)
        return self.resblocks_3d(volume)
