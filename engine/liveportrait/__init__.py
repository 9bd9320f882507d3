"""The ``liveportrait`` engine: our implementation of LivePortrait loading the official weights."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import LivePortraitEngine

__all__ = ["load_liveportrait_engine"]


def load_liveportrait_engine(device: str = "auto", weights_dir: Path | None = None,
                             allow_download: bool = True, **options: object) -> "LivePortraitEngine":
    """See ``engine.liveportrait.engine.load_liveportrait_engine`` (imported lazily: torch is heavy)."""
    from .engine import load_liveportrait_engine as _load

    return _load(device=device, weights_dir=weights_dir, allow_download=allow_download, **options)  # type: ignore[arg-type]
