"""SPADE generator G: warped feature (B,256,64,64) -> image (B,3,512,512) in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import SPADEResBlock

__all__ = ["SPADEDecoder"]

NUM_MIDDLE_BLOCKS = 6


class SPADEDecoder(nn.Module):
    """Constructor arguments are the ``model_params`` of spade_generator.pth.

    fc 3x3 (C -> 2C), six SPADE res-blocks at 2C, nearest x2, up_0 (2C -> C), nearest x2,
    up_1 (C -> out_channels), LeakyReLU(0.2), conv to 3*upscale^2, PixelShuffle, sigmoid.
    Every res-block is conditioned on the input feature itself.
    """

    def __init__(self, upscale: int = 1, max_features: int = 256, block_expansion: int = 64,
                 out_channels: int = 64, num_down_blocks: int = 2) -> None:
        super().__init__()
        ch = min(max_features, block_expansion * (2 ** num_down_blocks))
        self.upscale = upscale
        self.fc = nn.Conv2d(ch, 2 * ch, 3, padding=1)
        for i in range(NUM_MIDDLE_BLOCKS):
            self.add_module(f"G_middle_{i}", SPADEResBlock(2 * ch, 2 * ch, ch))
        self.up_0 = SPADEResBlock(2 * ch, ch, ch)
        self.up_1 = SPADEResBlock(ch, out_channels, ch)
        self.conv_img: nn.Module
        if upscale is None or upscale <= 1:
            self.conv_img = nn.Conv2d(out_channels, 3, 3, padding=1)
        else:
            # Key names conv_img.0.* come from this Sequential.
            self.conv_img = nn.Sequential(
                nn.Conv2d(out_channels, 3 * upscale * upscale, 3, padding=1),
                nn.PixelShuffle(upscale))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        seg = feature
        x = self.fc(feature)
        for i in range(NUM_MIDDLE_BLOCKS):
            x = getattr(self, f"G_middle_{i}")(x, seg)
        x = self.up_0(F.interpolate(x, scale_factor=2.0, mode="nearest"), seg)
        x = self.up_1(F.interpolate(x, scale_factor=2.0, mode="nearest"), seg)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))
