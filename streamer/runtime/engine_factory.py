"""Chooses and loads the engine: --engine auto|mesh|liveportrait, --device auto|cpu|cuda.

auto -> liveportrait when CUDA is present and its weights resolve (local folder, HF cache,
or a download), else mesh. Every choice is logged with its reason. An engine that cannot
start raises EngineUnavailableError whose message tells the user what to do.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from engine.api import Engine, EngineUnavailableError
from streamer.runtime.gpu import cuda_available

log = logging.getLogger("streamer.engine")

ENGINE_CHOICES = ("auto", "mesh", "liveportrait")
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EngineRequest:
    engine: str = "auto"
    device: str = "auto"
    weights_dir: Path | None = None
    allow_download: bool = True


def _resolve_device(device: str) -> str:
    if device not in DEVICE_CHOICES:
        raise EngineUnavailableError(f"unknown device {device!r}; valid: {', '.join(DEVICE_CHOICES)}")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise EngineUnavailableError("--device cuda was asked for, but torch sees no CUDA GPU here; "
                                     "use --device cpu (or auto)")
    return device


def load_mesh() -> Engine:
    from engine.mesh import MeshEngine

    return MeshEngine()


def load_liveportrait(device: str, weights_dir: Path | None, allow_download: bool) -> Engine:
    from engine.liveportrait import load_liveportrait_engine

    return load_liveportrait_engine(device, weights_dir, allow_download)


def build_engine(req: EngineRequest) -> Engine:
    if req.engine not in ENGINE_CHOICES:
        raise EngineUnavailableError(f"unknown engine {req.engine!r}; valid: {', '.join(ENGINE_CHOICES)}")
    device = _resolve_device(req.device)
    if req.engine == "mesh":
        if device == "cuda":
            log.warning("the mesh engine runs on the CPU; --device cuda has no effect on it")
        log.info("engine: mesh (asked for)")
        return load_mesh()
    if req.engine == "liveportrait":
        log.info("engine: liveportrait on %s (asked for)", device)
        return load_liveportrait(device, req.weights_dir, req.allow_download)
    # auto
    if device != "cuda":
        reason = "no CUDA GPU is present" if req.device == "auto" else "--device cpu was asked for"
        log.info("engine: mesh (auto: %s)", reason)
        return load_mesh()
    try:
        engine = load_liveportrait(device, req.weights_dir, req.allow_download)
    except EngineUnavailableError as exc:
        log.warning("engine: mesh (auto: liveportrait is unavailable: %s)", exc)
        return load_mesh()
    log.info("engine: liveportrait on %s (auto: CUDA present, weights resolved)", device)
    return engine
