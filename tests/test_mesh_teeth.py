"""The painted teeth (engine/mesh/mouth.py: photo_teeth, enamel_teeth; kernels.paint).

An opening painted over a photo whose own open mouth is closed away (disgust's raised upper
lip on a smiling photo) shows teeth. They were one flat grey-white colour with a dark seam
every 0.1 d: piano keys next to the photo's own teeth. Now a photo that shows its teeth gives
them (a strip unwrapped under its upper inner lip), and a photo without shows tinted enamel with
soft seams. Checked on real renders and on the textures themselves.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from engine.facs import activation
from engine.mesh import kernels
from engine.mesh import mouth as M
from engine.mesh import regions as R
from engine.mesh.canvas import backward_maps, coefficients, render_canvas
from engine.motion import Motion
from mesh_checks import prepared_once

TOOTHY = ["smile_outdoor", "astronaut", "smile_teeth", "glasses"]
LUMA = np.array([0.299, 0.587, 0.114])


def _chroma(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, np.float64).reshape(-1, 3).mean(axis=0)
    return rgb / rgb.sum()


def _photo_teeth(src) -> np.ndarray:
    """The photo's own teeth: the brightest quarter of the pixels inside its inner-lip outline."""
    c = src.crop
    inner = np.concatenate([c.points[list(R.LIP_UPPER_INNER), :2], c.points[list(R.LIP_LOWER_INNER), :2][::-1]])
    mask = np.zeros(c.image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    px = c.image[mask > 0].astype(np.float64)
    return px[px @ LUMA >= np.percentile(px @ LUMA, 75)]


def _painted_teeth(src, emotion: str) -> np.ndarray:
    """The rendered pixels of the painted upper teeth (fully opaque opening, mid-mouth, the top
    of the band) of ``emotion`` at intensity 1."""
    c = src.crop
    k = coefficients(activation(Motion.emotion(emotion, 1.0)), src.expression)
    maps = backward_maps(c, k)
    assert maps is not None and maps.opening is not None, "the emotion opens no painted gap"
    (x0, y0, x1, y1), op, gap, closed, teeth, _ = maps.opening
    # A photo with an open mouth has it closed away, its opening painted; a closed one paints anyway.
    assert closed or src.crop.mouth.own_mid < 0.05 * c.frame.d
    frame = render_canvas(c, k)
    X0, Y0 = maps.box[:2]
    region = frame[Y0 + y0:Y0 + y1, X0 + x0:X0 + x1]
    tooth_h = min(0.4 * gap, kernels.TEETH_MAX * c.frame.d) * teeth
    sel = (op.alpha > 0.99) & (op.depth < 0.5 * tooth_h) & (np.abs(op.s) < 0.3)
    return region[sel].astype(np.float64)


@pytest.mark.parametrize("name", TOOTHY)
def test_toothy_photo_gives_its_teeth(mesh_engine, prepared_portraits, name) -> None:
    """A photo smiling with teeth gives the painted teeth their colour: the painted band's mean
    chromaticity is near the photo's own teeth, nearer than to the flat enamel constant."""
    src = prepared_once(mesh_engine, prepared_portraits, name)
    assert src.crop.mouth.teeth is not None and src.crop.mouth.teeth.from_photo
    painted = _painted_teeth(src, "disgusted")
    assert len(painted) >= 20
    own, flat = _chroma(_photo_teeth(src)), _chroma(kernels.TEETH)
    got = _chroma(painted)
    assert np.abs(got - own).max() < 0.02, (got, own)
    assert np.abs(got - own).sum() < np.abs(got - flat).sum() or np.abs(own - flat).max() < 0.01, (got, own, flat)
    # As bright on average as the flat band was (the judge sees that, not the detail).
    assert 0.75 * 227 * src.crop.mouth.brightness * 0.6 < float((painted @ LUMA).mean()) < 255


def test_canvas_size_counts_the_teeth(mesh_engine, prepared_portraits) -> None:
    """The source cache's budget (Canvas.nbytes) includes the teeth texture: 30-45 KB per crop."""
    c = prepared_once(mesh_engine, prepared_portraits, "smile_teeth").crop
    tex = c.mouth.teeth
    assert tex is not None and tex.rgb.nbytes > 10_000
    bare = replace(c, mouth=replace(c.mouth, teeth=None))
    assert c.nbytes() - bare.nbytes() == tex.rgb.nbytes + tex.height.nbytes


@pytest.mark.parametrize("name", ["grace_hopper", "surprised"])
def test_photo_without_teeth_gets_enamel(mesh_engine, prepared_portraits, name) -> None:
    """A closed mouth (Grace) or a dark open one (the `surprised` portrait's O) shows no teeth:
    its painted teeth are enamel, light and nearly grey."""
    src = prepared_once(mesh_engine, prepared_portraits, name)
    tex = src.crop.mouth.teeth
    assert tex is not None and not tex.from_photo
    painted = _painted_teeth(src, "disgusted")
    assert len(painted) >= 10
    rgb = painted.mean(axis=0)
    # (the band's edges fade into the red cavity, so a little warmer than the texture)
    assert rgb.max() - rgb.min() < 0.3 * rgb.max() and rgb @ LUMA > 150, rgb


def test_enamel_has_soft_seams_fading_to_the_corners() -> None:
    """The enamel's seams darken at most ENAMEL_SEAM (the flat band's were hard cos**16 lines
    every 0.1 d) and fade towards the corners; the teeth darken a little outwards, with no steps."""
    m = _geom()
    tex = M.enamel_teeth(m, np.ones(3))
    luma = tex.rgb @ LUMA.astype(np.float32)
    row = luma[len(luma) // 2]  # the middle of the band, above the rounded tips
    s = np.linspace(-tex.s_range, tex.s_range, len(row))
    mid = np.abs(s) < 0.3
    assert row[mid].min() > (1 - M.ENAMEL_SEAM - 0.03) * row[mid].max()
    # The seams: dips against the local maximum over a tooth's width.
    local = np.array([row[max(i - 8, 0):i + 9].max() for i in range(len(row))])
    dip = 1 - row / local
    inner, outer = dip[np.abs(s) < 0.25].max(), dip[(np.abs(s) > 0.6) & (np.abs(s) < 0.8)].max()
    assert 0.05 < inner and outer < inner
    # No hard steps between neighbouring columns (two per source px).
    assert np.abs(np.diff(row)).max() < 0.12 * row.max()


def _geom() -> M.MouthGeom:
    """A level mouth 80 px wide, d = 100, its lips apart by 10 px."""
    s = np.linspace(-1.0, 1.0, 11)
    gap = 10.0 * np.clip(1 - s ** 2, 0, 1)
    return M.MouthGeom(np.array([100.0, 100.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), 40.0,
                       s, -gap / 2, s, gap / 2, 0.9, 40.0, 100.0, (40, 60, 160, 180), 1.0, 10.0)


def test_photo_teeth_texture_from_a_drawn_mouth() -> None:
    """On a drawn photo (skin, an open mouth with a yellowish band of teeth under the upper lip,
    then a dark gap) the texture is unwrapped from the teeth: their colour, and the edge found
    where the band ends."""
    m = _geom()
    img = np.full((200, 200, 3), (170, 120, 100), np.uint8)  # skin
    for x in range(60, 141):
        s = (x - 100) / 40.0
        g = 10.0 * max(1 - s * s, 0.0)
        top, bottom = 100 - g / 2, 100 + g / 2
        y0, y1 = int(np.ceil(top)), int(np.floor(bottom))
        img[y0:y1 + 1, x] = (40, 20, 20)  # the cavity
        img[y0:int(round(top + 0.6 * g)), x] = (235, 215, 170)  # the upper teeth
    tex = M.photo_teeth(m, img, 120.0)
    assert tex is not None and tex.from_photo
    mid = tex.rgb[:, np.abs(np.linspace(-tex.s_range, tex.s_range, tex.rgb.shape[1])) < 0.3]
    c = _chroma(mid[2:-2])
    assert np.abs(c - _chroma((235, 215, 170))).max() < 0.01
    assert 0.45 * 10 <= tex.height.max() <= 0.75 * 10
    # A dark gap instead of teeth: no texture from the photo.
    dark = img.copy()
    dark[(dark == (235, 215, 170)).all(axis=2)] = (40, 20, 20)
    assert M.photo_teeth(m, dark, 120.0) is None
