"""Convolutional building blocks shared by the LivePortrait networks F, W and G.

Attribute names are part of the checkpoint contract: every parameter/buffer path
below must equal a key of the official state dicts (see manifest.json), so that
``load_state_dict(strict=True)`` accepts the released files unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SameBlock2d",
    "DownBlock2d",
    "DownBlock3d",
    "UpBlock3d",
    "ResBlock3d",
    "HourglassEncoder",
    "HourglassDecoder",
    "Hourglass",
    "SpectralNormConv2d",
    "SPADE",
    "SPADEResBlock",
]


class SameBlock2d(nn.Module):
    """conv -> BatchNorm -> ReLU (or LeakyReLU 0.01), resolution preserved."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, padding: int = 1,
                 lrelu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_ch)
        self.lrelu = lrelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(x))
        # nn.LeakyReLU() default slope (0.01) is what the checkpoints were trained with.
        return F.leaky_relu(y, 0.01) if self.lrelu else F.relu(y)


class DownBlock2d(nn.Module):
    """conv -> BatchNorm -> ReLU -> 2x2 average pool."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), kernel_size=2)


class DownBlock3d(nn.Module):
    """3-D conv -> BatchNorm -> ReLU -> average pool over (H, W) only; depth is kept."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, kernel_size, padding=padding)
        self.norm = nn.BatchNorm3d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), kernel_size=(1, 2, 2))


class UpBlock3d(nn.Module):
    """Nearest up-sampling x(1,2,2) -> 3-D conv -> BatchNorm -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, kernel_size, padding=padding)
        self.norm = nn.BatchNorm3d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        return F.relu(self.norm(self.conv(up)))


class ResBlock3d(nn.Module):
    """Pre-activation residual block: x + conv2(relu(bn2(conv1(relu(bn1(x))))))."""

    def __init__(self, channels: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, kernel_size, padding=padding)
        self.conv2 = nn.Conv3d(channels, channels, kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm3d(channels)
        self.norm2 = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        return h + x


def _level_width(block_expansion: int, level: int, max_features: int) -> int:
    return min(max_features, block_expansion * (2 ** level))


class HourglassEncoder(nn.Module):
    """Stack of DownBlock3d; returns the input and every level's output (for skips)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int,
                 max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            cin = in_features if i == 0 else _level_width(block_expansion, i, max_features)
            blocks.append(DownBlock3d(cin, _level_width(block_expansion, i + 1, max_features)))
        self.down_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = [x]
        for block in self.down_blocks:
            levels.append(block(levels[-1]))
        return levels


class HourglassDecoder(nn.Module):
    """UpBlock3d stack with skip concatenation, then conv -> BatchNorm -> ReLU.

    Output channels: block_expansion + in_features (last up-block width + the raw input).
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int,
                 max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            width = _level_width(block_expansion, i + 1, max_features)
            # The deepest block sees only the bottleneck; the others see up + skip.
            cin = width if i == num_blocks - 1 else 2 * width
            blocks.append(UpBlock3d(cin, _level_width(block_expansion, i, max_features)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, 3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        out = levels[-1]
        for block, skip in zip(self.up_blocks, reversed(levels[:-1])):
            out = torch.cat([block(out), skip], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    """3-D U-Net style encoder/decoder used by the dense-motion network."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3,
                 max_features: int = 256) -> None:
        super().__init__()
        self.encoder = HourglassEncoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = HourglassDecoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class SpectralNormConv2d(nn.Module):
    """Conv2d whose weight is ``weight_orig / sigma`` with sigma from the stored u, v.

    This is the inference-time behaviour of torch's spectral_norm (no power
    iteration): sigma = u . (W_mat v), W_mat = weight_orig viewed as (out, -1).
    The state-dict keys follow torch's layout: weight_orig, weight_u, weight_v, bias.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        self.padding = padding
        self.weight_orig = nn.Parameter(torch.empty(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        fan = in_ch * kernel_size * kernel_size
        # u, v are learnt-by-iteration state, not trained parameters: buffers, as in torch.
        self.register_buffer("weight_u", F.normalize(torch.randn(out_ch), dim=0))
        self.register_buffer("weight_v", F.normalize(torch.randn(fan), dim=0))
        nn.init.kaiming_uniform_(self.weight_orig, a=5 ** 0.5)

    def normalized_weight(self) -> torch.Tensor:
        w_mat = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        sigma = torch.dot(self.weight_u, torch.mv(w_mat, self.weight_v))
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)


class SPADE(nn.Module):
    """Spatially-adaptive norm: InstanceNorm(x) * (1 + gamma(seg)) + beta(seg)."""

    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128) -> None:
        super().__init__()
        # Sequential only to keep the official key names (mlp_shared.0.*).
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, 3, padding=1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x, eps=1e-5)
        if seg.shape[-2:] != x.shape[-2:]:
            seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
        actv = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResBlock(nn.Module):
    """SPADE residual block with spectral-norm convs and LeakyReLU(0.2) activations.

    A learned 1x1 shortcut (norm_s -> conv_s, no bias) exists only when fin != fout.
    """

    def __init__(self, fin: int, fout: int, label_nc: int) -> None:
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = SpectralNormConv2d(fin, fmid, 3, padding=1)
        self.conv_1 = SpectralNormConv2d(fmid, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, label_nc)
        self.norm_1 = SPADE(fmid, label_nc)
        if self.learned_shortcut:
            self.conv_s = SpectralNormConv2d(fin, fout, 1, padding=0, bias=False)
            self.norm_s = SPADE(fin, label_nc)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx
