"""docs/emotions.png: every test portrait (rows) x the photo and every emotion at intensity 1.0 (columns),
rendered by the mesh engine in crop mode. `make emotions-grid`.

    .venv/bin/python tools/emotions_grid.py [--out docs/emotions.png] [--cell 144] [--judge]

--judge writes the judge's top class under each render (a quick visual check, not for the README).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from avatar_testkit.fidelity import PHOTO, REPO, render_matrix, score
from engine.motion import EMOTIONS

MAX_BYTES = 1_500_000   # keep the README's picture light


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:   # Pillow < 10.1: one fixed-size bitmap font
        return ImageFont.load_default()


def grid(images: dict[str, dict[str, np.ndarray]], cell: int,
         notes: dict[tuple[str, str], str] | None = None) -> Image.Image:
    cols = [PHOTO, *EMOTIONS]
    left, top, pad = 120, 26, 2
    notes = notes or {}
    foot = 16 if notes else 0
    w = left + len(cols) * (cell + pad)
    h = top + len(images) * (cell + foot + pad)
    out = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    font, small = _font(15), _font(12)
    for j, c in enumerate(cols):
        x = left + j * (cell + pad)
        label = "photo" if c == PHOTO else c
        draw.text((x + cell // 2, top // 2), label, fill=(0, 0, 0), font=font, anchor="mm")
    for i, (p, row) in enumerate(images.items()):
        y = top + i * (cell + foot + pad)
        draw.text((6, y + cell // 2), p, fill=(0, 0, 0), font=font, anchor="lm")
        for j, c in enumerate(cols):
            x = left + j * (cell + pad)
            tile = Image.fromarray(row[c]).resize((cell, cell), Image.LANCZOS)
            out.paste(tile, (x, y))
            if (p, c) in notes:
                ok = notes[(p, c)] == c or c == PHOTO
                draw.text((x + cell // 2, y + cell + foot // 2), notes[(p, c)],
                          fill=(0, 110, 0) if ok else (190, 0, 0), font=small, anchor="mm")
    return out


def save_small(img: Image.Image, out: Path) -> int:
    """Optimised PNG; a 256-colour palette if the full-colour file would be too heavy."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    if buf.tell() > MAX_BYTES:
        buf = io.BytesIO()
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
            buf, format="PNG", optimize=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    return buf.tell()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="every portrait x every emotion, one PNG")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "emotions.png")
    ap.add_argument("--cell", type=int, default=144, help="pixels per face")
    ap.add_argument("--judge", action="store_true", help="write the judge's top class under each face")
    args = ap.parse_args(argv)
    images = render_matrix()
    notes = None
    if args.judge:
        s = score(images)
        notes = {(p, e): (c.top or "no face") for p, row in s.cells.items() for e, c in row.items()}
        notes.update({(p, PHOTO): (c.top or "no face") for p, c in s.raw.items()})
    n = save_small(grid(images, args.cell, notes), args.out)
    print(f"wrote {args.out} ({n / 1e6:.2f} MB, {len(images)} portraits x {len(EMOTIONS)} emotions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
