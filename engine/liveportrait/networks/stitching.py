"""Stitching and retargeting MLPs (Linear layers at even indices of ``mlp``, ReLU between)."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

# Hyper-parameters of the three networks in the official file, by sub-dict name.
STITCHING_PARAMS: dict[str, dict[str, object]] = {
    "retarget_shoulder": {"input_size": 126, "hidden_sizes": [128, 128, 64], "output_size": 65},
    "retarget_mouth": {"input_size": 65, "hidden_sizes": [128, 128, 64], "output_size": 63},
    "retarget_eye": {"input_size": 66, "hidden_sizes": [256, 256, 128, 128, 64], "output_size": 63},
}
# Our role names for the sub-dicts.
ROLES: dict[str, str] = {"stitching": "retarget_shoulder", "lip": "retarget_mouth", "eye": "retarget_eye"}


class StitchingRetargetingNetwork(nn.Module):
    def __init__(self, input_size: int, hidden_sizes: Sequence[int], output_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_size
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def strip_module_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept keys with or without the DDP ``module.`` prefix (the official loader drops it anywhere)."""
    return {k.replace("module.", ""): v for k, v in state.items()}


class StitchingRetargeting(nn.Module):
    """The three MLPs of ``stitching_retargeting_module.pth`` under our role names."""

    def __init__(self) -> None:
        super().__init__()
        self.stitching = StitchingRetargetingNetwork(**STITCHING_PARAMS["retarget_shoulder"])  # type: ignore[arg-type]
        self.lip = StitchingRetargetingNetwork(**STITCHING_PARAMS["retarget_mouth"])  # type: ignore[arg-type]
        self.eye = StitchingRetargetingNetwork(**STITCHING_PARAMS["retarget_eye"])  # type: ignore[arg-type]

    def load_official(self, checkpoint: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Strict load of each sub-dict; raises KeyError naming a missing sub-dict."""
        for role, sub in ROLES.items():
            if sub not in checkpoint:
                raise KeyError(f"stitching checkpoint has no {sub!r} entry")
            getattr(self, role).load_state_dict(strip_module_prefix(checkpoint[sub]), strict=True)
