"""Expression fidelity: render every portrait x emotion with the mesh engine, let the independent
judge (tools/expression_judge.py, fer's FER2013 model in .venv-judge) label each render.

Shared by bench/fidelity.md (tools/fidelity.py), tests/test_expression_fidelity.py and
tools/emotions_grid.py so the three agree on what is rendered and how it is scored.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar_testkit.portraits import available_portraits, portrait_rgb
from engine.motion import EMOTIONS, Motion

# The checkout: the judge runs as `python -m tools.expression_judge` from here, in .venv-judge.
REPO = Path(__file__).resolve().parent.parent

INTENSITY = 1.0
# FER2013-trained classifiers are documented to confuse these (see docs in the test module):
# the requested class must at least rise the most against the neutral render.
CONFUSABLE: tuple[str, ...] = ("disgusted", "fearful")
PHOTO = "photo"   # the row for the unrendered photo in the tables


def judge_python() -> Path:
    return Path(os.environ.get("LPA_JUDGE_PYTHON", REPO / ".venv-judge" / "bin" / "python"))


def judge_files(paths: list[Path], jitter: bool = False) -> list[dict]:
    """One judge process for all images; returns its --json verdicts in order (with ``jitter``,
    each also has "jittered": probabilities averaged over 175 boxes around fer's own)."""
    py = judge_python()
    if not py.exists():
        raise FileNotFoundError(f"{py} missing: run `make judge-env`")
    flags = ["--json"] + (["--jitter"] if jitter else [])
    out = subprocess.run([str(py), "-m", "tools.expression_judge", *flags, *map(str, paths)],
                         cwd=REPO, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def render_matrix(names: list[str] | None = None, size: int | None = None,
                  baseline: str = "neutral") -> dict[str, dict[str, np.ndarray]]:
    """{portrait: {"photo": crop of the photo as prepared, emotion: render}}, RGB uint8, mode crop."""
    from engine.mesh import MeshEngine

    engine = MeshEngine()
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in names or available_portraits():
        src = engine.prepare(portrait_rgb(name))
        # The photo as photographed, cropped the same way (all weights 0 on the photo's baseline).
        row = {PHOTO: engine.render([(src, Motion(baseline="photo"))], mode="crop", size=size)[0]}
        frames = engine.render([(src, Motion.emotion(e, INTENSITY, baseline=baseline)) for e in EMOTIONS],
                               mode="crop", size=size)
        row.update(dict(zip(EMOTIONS, frames)))
        out[name] = row
    return out


@dataclass
class Cell:
    probs: dict[str, float]
    top: str | None


@dataclass
class Scores:
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)   # portrait -> row -> cell
    raw: dict[str, Cell] = field(default_factory=dict)                # portrait -> the photo's own crop
    # portrait -> row -> averaged over 175 boxes around fer's (score(jitter=True)); else empty
    jittered: dict[str, dict[str, Cell]] = field(default_factory=dict)

    def hits(self, portrait: str) -> list[str]:
        return [e for e in EMOTIONS if self.cells[portrait][e].top == e]

    def hit_rate(self, portrait: str | None = None) -> float:
        ps = [portrait] if portrait else list(self.cells)
        n = sum(len(self.hits(p)) for p in ps)
        return n / (len(ps) * len(EMOTIONS))

    def rise(self, portrait: str, emotion: str) -> dict[str, float]:
        """Each class's probability change from the neutral render to this emotion's render."""
        a, b = self.cells[portrait]["neutral"].probs, self.cells[portrait][emotion].probs
        if not a or not b:
            return {}
        return {c: b[c] - a[c] for c in EMOTIONS}

    def rises_most(self, portrait: str, emotion: str) -> bool:
        r = self.rise(portrait, emotion)
        return bool(r) and max(r, key=r.get) == emotion

    def jittered_view(self) -> "Scores":
        """The same scores read from the box-averaged probabilities (needs score(jitter=True))."""
        return Scores(cells=self.jittered)


def score(images: dict[str, dict[str, np.ndarray]], jitter: bool = False) -> Scores:
    """Write every render (and the photo's own crop) to a temp folder; judge them all in one call
    (``jitter``: also averaged over 175 boxes around fer's, Scores.jittered)."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        keys, paths = [], []
        for p, row in images.items():
            for e, img in row.items():
                f = Path(tmp) / f"{p}__{e}.png"
                Image.fromarray(img).save(f)
                keys.append((p, e))
                paths.append(f)
        verdicts = judge_files(paths, jitter)
    s = Scores()
    for (p, e), v in zip(keys, verdicts):
        cell = Cell(probs=v["probs"], top=v["top"])
        if e == PHOTO:
            s.raw[p] = cell
        else:
            s.cells.setdefault(p, {})[e] = cell
            if "jittered" in v:
                avg = v["jittered"]
                s.jittered.setdefault(p, {})[e] = Cell(probs=avg, top=max(avg, key=avg.get))
    return s


