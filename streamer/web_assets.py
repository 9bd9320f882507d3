"""Where the demo page's files are: the package `streamer_web`, which setup.py maps onto web/.

A wheel install carries them in site-packages; an editable install reads web/ in the checkout.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

WEB_PACKAGE = "streamer_web"


def web_root() -> Path:
    """The folder that holds index.html, js/ and css/.

    The page is served with FileResponse, which needs a real path: a package installed as
    files (pip's wheel and editable installs both are) gives one.
    """
    root = files(WEB_PACKAGE)
    if not isinstance(root, Path):
        raise RuntimeError(f"{WEB_PACKAGE} is not installed as plain files (got {root!r})")
    return root
