"""Weight resolution: --weights-dir, a real HF cache folder (offline), download, missing weights.

The HF hub itself is the only thing mocked (this machine cannot reach it).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.api import EngineUnavailableError
from engine.liveportrait import load_liveportrait_engine, weights
from lp_fixtures import needs_reference, seed1_checkpoints

pytestmark = needs_reference

REV = "0123456789abcdef0123456789abcdef01234567"


def _link_tree(src_root: Path, dst_root: Path, files: tuple[str, ...] = weights.WEIGHT_FILES) -> None:
    """Hard links (or symlinks across file systems) instead of copying 520 MB."""
    for rel in files:
        dst = dst_root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src_root / rel, dst)
        except OSError:
            dst.symlink_to(src_root / rel)


@pytest.fixture()
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def _build_cache(home: Path) -> Path:
    repo = home / "hub" / "models--KwaiVGI--LivePortrait"
    snap = repo / "snapshots" / REV
    _link_tree(seed1_checkpoints(), snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REV)
    return snap


def test_weights_dir_is_used_as_is() -> None:
    root = seed1_checkpoints()
    assert weights.resolve_weights(root) == root


def test_weights_dir_with_a_missing_file_names_the_command(tmp_path: Path) -> None:
    _link_tree(seed1_checkpoints(), tmp_path, weights.WEIGHT_FILES[:-1])
    with pytest.raises(EngineUnavailableError) as err:
        weights.resolve_weights(tmp_path)
    msg = str(err.value)
    assert "liveportrait-avatar download-weights" in msg and "stitching_retargeting_module.pth" in msg


def test_engine_loads_from_a_real_hf_cache_offline(hf_home: Path) -> None:
    snap = _build_cache(hf_home)
    assert weights.resolve_weights() == snap
    engine = load_liveportrait_engine(device="cpu")
    assert engine.name == "liveportrait" and engine.info.device == "cpu"
    assert engine.info.output_size == 512


def test_incomplete_cache_is_not_used(hf_home: Path) -> None:
    snap = _build_cache(hf_home)
    (snap / weights.SPADE).unlink()
    with pytest.raises(EngineUnavailableError, match="HF_HUB_OFFLINE"):
        weights.resolve_weights()


def test_missing_weights_offline_name_the_command(hf_home: Path) -> None:
    with pytest.raises(EngineUnavailableError) as err:
        load_liveportrait_engine(device="cpu")
    assert "liveportrait-avatar download-weights" in str(err.value)
    assert str(hf_home) in str(err.value)


def test_missing_weights_without_download_name_the_command(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(EngineUnavailableError, match="liveportrait-avatar download-weights"):
        weights.resolve_weights(allow_download=False)


def test_download_fetches_exactly_the_five_files(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls: list[dict] = []

    def fake_snapshot_download(repo_id: str, **kw: object) -> str:  # stands in for huggingface.co
        calls.append({"repo_id": repo_id, **kw})
        snap = Path(str(kw["cache_dir"])) / "models--KwaiVGI--LivePortrait" / "snapshots" / REV
        _link_tree(seed1_checkpoints(), snap)
        return str(snap)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    root = weights.resolve_weights()
    assert root.name == REV and not weights.missing_files(root)
    assert calls == [{"repo_id": "KwaiVGI/LivePortrait", "allow_patterns": list(weights.WEIGHT_FILES),
                      "cache_dir": str(hf_home / "hub")}]
    assert all("animal" not in f and "insightface" not in f for f in weights.WEIGHT_FILES)


def test_failed_download_names_the_command(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")

    def unreachable(*_: object, **__: object) -> str:
        raise OSError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(EngineUnavailableError) as err:
        weights.resolve_weights()
    assert "download failed" in str(err.value) and "liveportrait-avatar download-weights" in str(err.value)


def test_cuda_request_without_cuda_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(EngineUnavailableError, match="CUDA"):
        load_liveportrait_engine(device="cuda", weights_dir=seed1_checkpoints())
