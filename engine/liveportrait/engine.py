"""The ``liveportrait`` Engine: detection and crop (CPU), networks on the chosen device."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..api import EngineError, EngineInfo, EngineUnavailableError, Source, check_image
from ..motion import Motion
from . import crop as cropping
from . import kp_math
from .emotions import edit_for_motion
from .loader import load_models
from .pipeline import LivePortraitCore, Precision, SourceState
from .weights import resolve_weights

log = logging.getLogger(__name__)

MODEL_VERSION = "liveportrait-human-v1 (KwaiVGI/LivePortrait weights, own implementation)"
OUTPUT_SIZE = cropping.CROP_SIZE
MAX_BATCH = 16  # larger batches are split; one 512x512 decode is ~1 GB of activations in fp16


@dataclass
class LivePortraitSource(Source):
    image: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.uint8), repr=False)
    transform: cropping.CropTransform | None = field(default=None, repr=False)
    paste: cropping.PasteBack | None = field(default=None, repr=False)
    state: SourceState | None = field(default=None, repr=False)

    def nbytes(self) -> int:
        n = self.image.nbytes
        if self.paste is not None:
            n += self.paste.mask.nbytes
        if self.state is not None:
            n += self.state.nbytes()
        return n

    @property
    def eye_ratio(self) -> float:
        assert self.state is not None
        return 0.5 * (self.state.eye_ratio[0] + self.state.eye_ratio[1])


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailableError("device cuda was requested but CUDA is not available here")
    if dev.type not in ("cpu", "cuda"):
        raise EngineUnavailableError(f"unsupported device {device!r} (use auto, cpu or cuda)")
    return dev


def precision_for(device: torch.device, dtype: str = "auto") -> Precision:
    """CPU: float32. CUDA: fp16 autocast (bf16 or fp32 on request) with channels-last."""
    if device.type != "cuda":
        return Precision(device=device)
    choice = {"auto": torch.float16, "fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}
    if dtype not in choice:
        raise EngineUnavailableError(f"unknown precision {dtype!r} (use fp16, bf16 or fp32)")
    return Precision(device=device, autocast_dtype=choice[dtype], channels_last=True)


class LivePortraitEngine:
    name = "liveportrait"

    def __init__(self, core: LivePortraitCore) -> None:
        self.core = core
        dev = core.device
        gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
        self._info = EngineInfo(name=self.name, device=str(dev) if dev.type == "cpu" else f"cuda:{dev.index or 0}",
                                gpu_name=gpu, model_version=MODEL_VERSION, output_size=OUTPUT_SIZE)

    @property
    def info(self) -> EngineInfo:
        return self._info

    def prepare(self, image: np.ndarray) -> LivePortraitSource:
        from ..landmarks import detect_landmarks  # mediapipe loads only when a portrait arrives

        image = check_image(image)
        lm = detect_landmarks(image)
        t = cropping.crop_transform(lm.points)
        crop512 = cropping.warp_crop(image, t)
        eyes, lip = cropping.open_ratios(lm.points)
        state = self.core.prepare_crop(cropping.network_input(crop512), eyes, lip)
        h, w = image.shape[:2]
        return LivePortraitSource(width=w, height=h, face_box=lm.box, image=image, transform=t,
                                  paste=cropping.prepare_paste_back(t, w, h), state=state)

    def render(self, jobs: Sequence[tuple[Source, Motion]], mode: str = "crop",
               size: int | None = None) -> list[np.ndarray]:
        if mode not in ("crop", "full"):
            raise EngineError(f"unknown render mode {mode!r} (crop or full)")
        if size is not None and not (16 <= int(size) <= 2048):
            raise EngineError("size must be between 16 and 2048 pixels")
        frames: list[np.ndarray] = []
        for start in range(0, len(jobs), MAX_BATCH):
            frames += self._render_chunk(jobs[start:start + MAX_BATCH], mode, size)
        return frames

    def _render_chunk(self, jobs: Sequence[tuple[Source, Motion]], mode: str,
                      size: int | None) -> list[np.ndarray]:
        sources: list[LivePortraitSource] = []
        for src, _ in jobs:
            if not isinstance(src, LivePortraitSource) or src.state is None:
                raise EngineError("source was not prepared by this engine, or was released")
            sources.append(src)
        try:
            edits = [edit_for_motion(m, s.eye_ratio, s.state.lip_ratio)  # type: ignore[union-attr]
                     for s, (_, m) in zip(sources, jobs)]
        except ValueError as exc:  # an unknown baseline
            raise EngineError(str(exc)) from None
        images = self.core.render_batch([s.state for s in sources], edits)  # type: ignore[misc]
        crops = kp_math.to_uint8(images)
        out: list[np.ndarray] = []
        for src, frame in zip(sources, crops):
            if mode == "full":
                assert src.paste is not None
                out.append(cropping.paste_back(frame, src.image, src.paste))
            elif size is not None and int(size) != OUTPUT_SIZE:
                interp = cv2.INTER_AREA if int(size) < OUTPUT_SIZE else cv2.INTER_LINEAR
                out.append(cv2.resize(frame, (int(size), int(size)), interpolation=interp))
            else:
                out.append(np.ascontiguousarray(frame))
        return out

    def release(self, source: Source) -> None:
        # Dropping the tensors frees the device memory once no batch holds them.
        if isinstance(source, LivePortraitSource):
            source.state = None


def load_liveportrait_engine(device: str = "auto", weights_dir: Path | None = None,
                             allow_download: bool = True, precision: str | None = None,
                             compile: bool | None = None) -> LivePortraitEngine:
    """Resolve weights, load the five networks on the device, return the Engine.

    ``precision`` (CUDA only: fp16 default, bf16, fp32) and ``compile`` (torch.compile of W and
    G) default to the LIVEPORTRAIT_PRECISION / LIVEPORTRAIT_COMPILE environment variables.
    Raises EngineUnavailableError (naming ``liveportrait-avatar download-weights``) when the
    weights are missing and cannot be downloaded.
    """
    dev = resolve_device(device)
    root = resolve_weights(weights_dir, allow_download=allow_download)
    prec = precision_for(dev, precision or os.environ.get("LIVEPORTRAIT_PRECISION", "auto"))
    try:
        models = load_models(root, dev)
    except (RuntimeError, KeyError, OSError) as exc:
        raise EngineUnavailableError(f"cannot load the LivePortrait weights from {root}: {exc}") from exc
    core = LivePortraitCore(models, prec)
    want_compile = compile if compile is not None else os.environ.get("LIVEPORTRAIT_COMPILE", "") == "1"
    if want_compile and dev.type == "cuda":
        core.enable_compile()
    log.info("liveportrait engine on %s (%s) from %s", dev, prec.autocast_dtype or "float32", root)
    return LivePortraitEngine(core)
