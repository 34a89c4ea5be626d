"""Shared fixtures: real PTB-XL files from ../shared and an isolated Hugging Face cache."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DIR = REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(autouse=True)
def _isolated_hf_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """`datasets` caches a full Arrow copy per config: keep it out of the user's cache."""
    hf_home = tmp_path_factory.getbasetemp() / "hf_home"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def real_ptbxl_dir() -> Path:
    """The real PTB-XL excerpt shipped beside the checkout (never copied into the repo)."""
    path = REAL_DIR / "ptb-xl"
    if not (path / "ptbxl_database_excerpt.csv").exists():
        pytest.skip(f"real PTB-XL files not found at {path} (../shared is absent)")
    return path
