"""Find the five human-model checkpoint files: a given folder, else the HF cache, else a download.

The folder layout is the HF repo's (``liveportrait/base_models/...``). The cache location and
offline mode are read from the environment at call time (HF_HOME, HF_HUB_CACHE,
HF_HUB_OFFLINE), so a process can point them elsewhere after importing huggingface_hub.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..api import EngineUnavailableError

HF_REPO_ID = "KwaiVGI/LivePortrait"
APPEARANCE = "liveportrait/base_models/appearance_feature_extractor.pth"
MOTION = "liveportrait/base_models/motion_extractor.pth"
WARPING = "liveportrait/base_models/warping_module.pth"
SPADE = "liveportrait/base_models/spade_generator.pth"
STITCHING = "liveportrait/retargeting_models/stitching_retargeting_module.pth"
# Exactly these files: no animal models, no InsightFace, no landmark model.
WEIGHT_FILES: tuple[str, ...] = (APPEARANCE, MOTION, WARPING, SPADE, STITCHING)

_HINT = "run `liveportrait-avatar download-weights` (needs internet access to huggingface.co) " \
        "or pass --weights-dir DIR holding the official files"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def hf_offline() -> bool:
    return _truthy(os.environ.get("HF_HUB_OFFLINE"))


def hf_cache_dir() -> Path:
    """The HF hub cache folder as huggingface_hub computes it, but from the current environment."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def missing_files(root: Path) -> list[str]:
    return [f for f in WEIGHT_FILES if not (root / f).is_file()]


def find_in_cache(cache_dir: Path | None = None) -> Path | None:
    """The snapshot folder of the cached repo holding all five files, or None."""
    from huggingface_hub import try_to_load_from_cache

    cache = cache_dir or hf_cache_dir()
    first = try_to_load_from_cache(HF_REPO_ID, WEIGHT_FILES[0], cache_dir=str(cache))
    if not isinstance(first, str):
        return None
    root = Path(first)
    for _ in Path(WEIGHT_FILES[0]).parts:
        root = root.parent
    return root if not missing_files(root) else None


def download_weights(cache_dir: Path | None = None) -> Path:
    """Download exactly the five files into the HF cache (with huggingface_hub's progress bars)."""
    from huggingface_hub import snapshot_download

    if hf_offline():
        raise EngineUnavailableError(
            "HF_HUB_OFFLINE is set, so the LivePortrait weights cannot be downloaded; unset it and "
            "run `liveportrait-avatar download-weights`, or pass --weights-dir DIR")
    path = snapshot_download(HF_REPO_ID, allow_patterns=list(WEIGHT_FILES),
                             cache_dir=str(cache_dir or hf_cache_dir()))
    root = Path(path)
    missing = missing_files(root)
    if missing:
        raise EngineUnavailableError(f"download of {HF_REPO_ID} lacks {', '.join(missing)}")
    return root


def resolve_weights(weights_dir: Path | str | None = None, allow_download: bool = True) -> Path:
    """Root folder (HF repo layout) of the five files; EngineUnavailableError says what to do."""
    if weights_dir is not None:
        root = Path(weights_dir).expanduser()
        missing = missing_files(root)
        if missing:
            raise EngineUnavailableError(
                f"LivePortrait weights not found in {root} (missing {', '.join(missing)}); {_HINT}")
        return root
    cached = find_in_cache()
    if cached is not None:
        return cached
    if not allow_download or hf_offline():
        why = "HF_HUB_OFFLINE is set" if hf_offline() else "downloads are disabled"
        raise EngineUnavailableError(
            f"LivePortrait weights are not in the Hugging Face cache ({hf_cache_dir()}) and {why}; {_HINT}")
    try:
        return download_weights()
    except EngineUnavailableError:
        raise
    except Exception as exc:  # network, auth, disk: all end the same way for the user
        raise EngineUnavailableError(
            f"LivePortrait weights are missing and the download failed ({type(exc).__name__}: {exc}); "
            f"{_HINT}") from exc
