"""Sample portraits that ship inside packages we already depend on (no downloads, no photos in git).

grace_hopper: matplotlib's sample data (matplotlib comes with mediapipe).
astronaut / chelsea: scikit-image's data module (a runtime dependency); chelsea is a cat, i.e. no human face.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

SAMPLE_NAMES: tuple[str, ...] = ("grace_hopper", "astronaut")


class SampleUnavailableError(RuntimeError):
    pass


def _jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _skimage(name: str) -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise SampleUnavailableError(
            f"the {name!r} sample needs scikit-image (pip install scikit-image)") from None
    return np.asarray(getattr(data, name)(), dtype=np.uint8)


def sample_portrait_bytes(name: str = "grace_hopper") -> bytes:
    """JPEG bytes of a sample photo: "grace_hopper" | "astronaut" (faces), "chelsea" (a cat)."""
    if name == "grace_hopper":
        try:
            from matplotlib import cbook
        except ImportError:
            raise SampleUnavailableError("the grace_hopper sample needs matplotlib") from None
        return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()
    if name in ("astronaut", "chelsea"):
        return _jpeg(_skimage(name))
    raise ValueError(f"unknown sample {name!r}; valid: grace_hopper, astronaut, chelsea")


def available_samples() -> list[str]:
    """The face samples that can be loaded here (for the bench and the CLI)."""
    out = []
    for name in SAMPLE_NAMES:
        try:
            sample_portrait_bytes(name)
        except SampleUnavailableError:
            continue
        out.append(name)
    return out
