"""The work one REST request may ask for: output pixels x frames, checked before any engine work.

A crop frame is 512x512 whatever the photo; a full-mode frame is the whole photo, after the
decode-time scale-down (http/decode.py). A request past the budget gets 413
`request_too_costly` saying what it asked for and what is allowed, so a client can split it.
"""
from __future__ import annotations

from streamer.errors import ApiError
from streamer.http.decode import fit_size, image_size

CROP_PIXELS = 512 * 512


def request_pixels(data: bytes, mode: str, frames: int, max_source_pixels: int) -> int:
    """Output pixels x frames for a render of this upload (0 when it is not an image: the
    decoder answers that)."""
    if mode != "full":
        return CROP_PIXELS * frames
    size = image_size(data)
    if size is None:
        return 0
    w, h = fit_size(size[0], size[1], max_source_pixels)
    return w * h * frames


def check_budget(data: bytes, mode: str, frames: int, max_source_pixels: int, budget: int) -> None:
    cost = request_pixels(data, mode, frames, max_source_pixels)
    if cost > budget:
        per_frame = max(1, cost // max(1, frames))
        raise ApiError(413, "request_too_costly",
                       f"this request asks for {frames} frame(s) of {per_frame / 1e6:.1f} megapixels "
                       f"({cost / 1e6:.1f} Mpx in all); one request may ask for at most "
                       f"{budget / 1e6:.1f} Mpx: send fewer emotions per batch, mode=crop, or a "
                       f"smaller photo")
