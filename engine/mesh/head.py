"""Head motion fields: roll, yaw, pitch and the breathing bob, fading out around the head.

A plateau covers the face (the head moves as one) and fades to zero within about one face
width beyond it, so the background and the image edges never move.
"""
from __future__ import annotations

import numpy as np

from . import regions as R
from .geometry import FaceFrame

HEAD_BASES = ("roll_sin", "roll_cos", "yaw", "pitch", "breath")
BREATH_D = 0.015  # bob amplitude at breath = 1, in units of d
YAW_DEPTH_D = 0.45  # how far the face centre slides per sin(angle), in units of d


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def head_bases(points: np.ndarray, frame: FaceFrame, nodes: np.ndarray) -> np.ndarray:
    p = points[:, :2].astype(np.float64)
    oval = p[list(R.FACE_OVAL)]
    centre = oval.mean(axis=0)
    fc = frame.coords(oval) - frame.coords(centre[None])[0]
    a = np.abs(fc[:, 0]).max() * frame.d  # half width (px)
    b = np.abs(fc[:, 1]).max() * frame.d  # half height
    rel = nodes - centre
    x = rel @ frame.u
    y = rel @ frame.v
    rho = np.sqrt((x / a) ** 2 + (y / b) ** 2)
    # Plateau over the head (1.15x the face oval for hair/ears), zero one face width beyond.
    fall = 1.0 - _smoothstep((rho - 1.15) * a / (1.6 * a))
    # Depth proxy for yaw/pitch: a dome over the face plus the nose, so near parts move more.
    dome = np.clip(1 - rho ** 2, 0.0, None) ** 2
    nose = np.exp(-((nodes - p[R.NOSE_TIP]) ** 2).sum(axis=1) / (2 * (0.3 * frame.d) ** 2))
    depth = (YAW_DEPTH_D * dome + 0.2 * nose) * frame.d
    roll_sin = np.stack([-rel[:, 1], rel[:, 0]], axis=1) * fall[:, None]
    roll_cos = rel * fall[:, None]
    yaw = depth[:, None] * frame.u[None, :]
    pitch = depth[:, None] * frame.v[None, :]
    breath = (fall * BREATH_D * frame.d)[:, None] * np.array([0.0, 1.0])[None, :]
    return np.stack([roll_sin, roll_cos, yaw, pitch, breath]).astype(np.float32)
