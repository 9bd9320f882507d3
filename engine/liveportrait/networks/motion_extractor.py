"""Motion extractor M: a ConvNeXt-V2-tiny backbone with seven linear heads.

State-dict keys match the official checkpoint (every key starts with ``detector.``).
Numerical details that the conformance cases pin down: LayerNorm eps 1e-6, exact-erf GELU,
GRN with L2 norm over H and W divided by its channel mean + 1e-6.
"""
from __future__ import annotations

import torch
from torch import nn

_DEPTHS = (3, 3, 9, 3)
_DIMS = (96, 192, 384, 768)
_LN_EPS = 1e-6


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of an NCHW tensor, evaluated the way the official code does it."""

    def __init__(self, channels: int, eps: float = _LN_EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GlobalResponseNorm(nn.Module):
    """GRN on NHWC tensors: features scaled by their spatial L2 energy relative to the mean."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
        relative = energy / (energy.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * relative) + self.beta + x


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=_LN_EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()  # exact erf form; the tanh approximation fails conformance
        self.grn = GlobalResponseNorm(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2Tiny(nn.Module):
    def __init__(self, num_kp: int = 21, num_bins: int = 66, in_chans: int = 3) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(in_chans, _DIMS[0], kernel_size=4, stride=4),
            ChannelsFirstLayerNorm(_DIMS[0]),
        ))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                ChannelsFirstLayerNorm(_DIMS[i]),
                nn.Conv2d(_DIMS[i], _DIMS[i + 1], kernel_size=2, stride=2),
            ))
        self.stages = nn.ModuleList(
            nn.Sequential(*[ConvNeXtBlock(d) for _ in range(n)]) for d, n in zip(_DIMS, _DEPTHS)
        )
        c = _DIMS[-1]
        self.norm = nn.LayerNorm(c, eps=_LN_EPS)
        self.fc_kp = nn.Linear(c, 3 * num_kp)
        self.fc_scale = nn.Linear(c, 1)
        self.fc_pitch = nn.Linear(c, num_bins)
        self.fc_yaw = nn.Linear(c, num_bins)
        self.fc_roll = nn.Linear(c, num_bins)
        self.fc_t = nn.Linear(c, 3)
        self.fc_exp = nn.Linear(c, 3 * num_kp)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        feat = self.norm(x.mean([-2, -1]))
        return {
            "pitch": self.fc_pitch(feat),
            "yaw": self.fc_yaw(feat),
            "roll": self.fc_roll(feat),
            "t": self.fc_t(feat),
            "exp": self.fc_exp(feat),
            "scale": self.fc_scale(feat),
            "kp": self.fc_kp(feat),
        }


class MotionExtractor(nn.Module):
    """M(image in [0,1], Bx3x256x256) -> raw head outputs (pose-bin logits, t, exp, scale, kp)."""

    def __init__(self, num_kp: int = 21, backbone: str = "convnextv2_tiny", num_bins: int = 66,
                 **_: object) -> None:
        super().__init__()
        if backbone != "convnextv2_tiny":
            raise ValueError(f"unsupported motion-extractor backbone {backbone!r}")
        self.detector = ConvNeXtV2Tiny(num_kp=num_kp, num_bins=num_bins)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.detector(x)
