"""Load the five official checkpoint files into our modules with strict key matching."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import weights
from .networks.appearance import AppearanceFeatureExtractor
from .networks.motion_extractor import MotionExtractor
from .networks.spade import SPADEDecoder
from .networks.stitching import StitchingRetargeting
from .networks.warping import WarpingNetwork

# Hyper-parameters of the official models.yaml (human models).
APPEARANCE_PARAMS = dict(image_channel=3, block_expansion=64, num_down_blocks=2, max_features=512,
                         reshape_channel=32, reshape_depth=16, num_resblocks=6)
MOTION_PARAMS = dict(num_kp=21, backbone="convnextv2_tiny")
WARPING_PARAMS = dict(num_kp=21, block_expansion=64, max_features=512, num_down_blocks=2,
                      reshape_channel=32, estimate_occlusion_map=True,
                      dense_motion_params=dict(block_expansion=32, max_features=1024, num_blocks=5,
                                               reshape_depth=16, compress=4))
SPADE_PARAMS = dict(upscale=2, block_expansion=64, max_features=512, num_down_blocks=2)


@dataclass
class LivePortraitModels:
    appearance: AppearanceFeatureExtractor
    motion: MotionExtractor
    warping: WarpingNetwork
    spade: SPADEDecoder
    stitching: StitchingRetargeting

    def modules(self) -> list[nn.Module]:
        return [self.appearance, self.motion, self.warping, self.spade, self.stitching]

    def to(self, device: torch.device | str) -> "LivePortraitModels":
        for m in self.modules():
            m.to(device)
        return self


def _read(path: Path) -> dict:
    # weights_only: the official files are plain tensors in dicts; never unpickle code.
    return torch.load(path, map_location="cpu", weights_only=True)


def load_models(root: Path | str, device: torch.device | str = "cpu") -> LivePortraitModels:
    """Build the five networks, strict-load the files under ``root`` (HF layout), eval mode."""
    root = Path(root)
    models = LivePortraitModels(
        appearance=AppearanceFeatureExtractor(**APPEARANCE_PARAMS),
        motion=MotionExtractor(**MOTION_PARAMS),
        warping=WarpingNetwork(**WARPING_PARAMS),
        spade=SPADEDecoder(**SPADE_PARAMS),
        stitching=StitchingRetargeting(),
    )
    models.appearance.load_state_dict(_read(root / weights.APPEARANCE), strict=True)
    models.motion.load_state_dict(_read(root / weights.MOTION), strict=True)
    models.warping.load_state_dict(_read(root / weights.WARPING), strict=True)
    models.spade.load_state_dict(_read(root / weights.SPADE), strict=True)
    models.stitching.load_official(_read(root / weights.STITCHING))
    for m in models.modules():
        m.eval()
        m.requires_grad_(False)
    return models.to(device)
