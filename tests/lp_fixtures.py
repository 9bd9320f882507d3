"""Seed-1 synthetic LivePortrait checkpoints, generated once per test process.

Reference data: ``../shared/liveportrait_reference`` beside the repository (CI keeps it
there), or $LP_REFERENCE_DIR. Checkpoints: $LP_CKPT_DIR if set, else generated with the
reference ``make_checkpoints.py`` into a temp dir (about 520 MB, ~5 s) that is removed at exit.
"""
from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REF_DIR = Path(os.environ.get("LP_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "liveportrait_reference"))

needs_reference = pytest.mark.skipif(not (REF_DIR / "make_checkpoints.py").is_file(),
                                     reason=f"LivePortrait reference data not found in {REF_DIR}")


@functools.lru_cache(maxsize=1)
def seed1_checkpoints() -> Path:
    env = os.environ.get("LP_CKPT_DIR")
    if env:
        return Path(env)
    out = Path(tempfile.mkdtemp(prefix="lp_ckpt_seed1_"))
    atexit.register(shutil.rmtree, out, True)
    subprocess.run([sys.executable, str(REF_DIR / "make_checkpoints.py"), str(out), "--seed", "1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def manifest() -> dict:
    return json.loads((REF_DIR / "manifest.json").read_text())


def file_tensor_digest(root: Path, entry: dict) -> str:
    """The reference's tensor-content digest, recomputed from the file *as written on disk*."""
    import torch

    obj = torch.load(root / entry["path"], map_location="cpu", weights_only=True)
    h = hashlib.sha256()

    def feed(qkey: str, t: "torch.Tensor") -> None:
        a = t.numpy()
        h.update(qkey.encode("utf-8"))
        h.update(str(a.dtype).encode())
        h.update(str(tuple(a.shape)).encode())
        h.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())

    if entry["container"] == "state_dict":
        for t in entry["tensors"]:
            feed(f"{entry['path']}::{t['key']}", obj[t["key"]])
    else:
        for sub in entry["sub_dicts"]:
            for t in sub["tensors"]:
                feed(f"{entry['path']}::{sub['name']}/{t['key']}", obj[sub["name"]][t["key"]])
    return h.hexdigest()
