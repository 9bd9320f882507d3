"""Where the real browsers are, and the loud line when their tests could not run.

The browser tests (tests/test_web_page.py, tests/test_web_firefox.py, client-ts's browser test)
use Debian's own browsers. Each can be pointed elsewhere, or hidden to try the skip path:

    LPA_CHROMIUM=/path/to/chromium      (default /usr/bin/chromium)
    LPA_FIREFOX=/path/to/firefox-esr    (default /usr/bin/firefox-esr)

    python -m avatar_testkit.browsers   # prints the banner when a browser is missing; exit 0
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Browser:
    name: str
    env: str  # the variable that overrides the path
    default: str
    install: str  # how to get it on Debian/Ubuntu
    tests: str  # which tests need it

    @property
    def path(self) -> str:
        return os.environ.get(self.env) or self.default

    def available(self) -> bool:
        p = Path(self.path)
        return p.is_file() and os.access(p, os.X_OK)

    def skip_reason(self) -> str:
        return f"needs {self.name} at {self.path} ({self.install}, or set {self.env})"


CHROMIUM = Browser("Chromium", "LPA_CHROMIUM", "/usr/bin/chromium", "apt-get install chromium",
                   "tests/test_web_page.py, client-ts/test/browser.test.ts")
FIREFOX = Browser("Firefox ESR", "LPA_FIREFOX", "/usr/bin/firefox-esr", "apt-get install firefox-esr",
                  "tests/test_web_firefox.py")
ALL = (CHROMIUM, FIREFOX)


def banner(missing: list[Browser]) -> str:
    """A block that cannot be missed at the end of a run; empty when nothing is missing."""
    if not missing:
        return ""
    bar = "!" * 78
    lines = [bar, "!!! BROWSER TESTS WERE SKIPPED: the demo page and the browser client were NOT tested",
             "!!! in a real browser on this machine."]
    for b in missing:
        lines.append(f"!!!   {b.name}: not found at {b.path} -> {b.tests} skipped")
    lines.append("!!! To run them: apt-get install -y " + " ".join(
        b.install.split()[-1] for b in missing) + "  (or point " + ", ".join(
        b.env for b in missing) + " at the browser), then run the tests again.")
    lines.append(bar)
    return "\n".join(lines)


def missing_browsers() -> list[Browser]:
    return [b for b in ALL if not b.available()]


if __name__ == "__main__":
    text = banner(missing_browsers())
    if text:
        print("\n" + text, file=sys.stderr)
