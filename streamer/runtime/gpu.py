"""The one GPU probe: what torch sees, asked for cheaply and never failing.

Used by the engine factory (auto device, --engine auto) and by /health.
"""
from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuFacts:
    available: bool
    name: str | None
    cuda_version: str | None


NO_GPU = GpuFacts(False, None, None)


def nvidia_driver_present() -> bool:
    """Cheap check before importing torch (seconds, hundreds of MB) just to hear "no GPU"."""
    return os.path.exists("/proc/driver/nvidia/version") or bool(glob.glob("/dev/nvidia[0-9]*"))


def probe_gpu() -> GpuFacts:
    """What torch sees; a broken torch/CUDA install just reads as no GPU."""
    if "torch" not in sys.modules and not nvidia_driver_present():
        return NO_GPU  # no driver: skip importing torch for a "no"
    try:
        import torch

        if torch.cuda.is_available():
            return GpuFacts(True, torch.cuda.get_device_name(0), torch.version.cuda)
        return GpuFacts(False, None, torch.version.cuda)
    except Exception:  # noqa: BLE001 - health must answer even when torch is unhappy
        return NO_GPU


def cuda_available() -> bool:
    return probe_gpu().available
