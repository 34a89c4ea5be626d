"""Shared fixtures: real PTB-XL files from ../shared and an isolated Hugging Face cache."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DIR = REPO_ROOT.parent / "shared" / "data" / "real"
# The bundled recipes are the checkout's pipelines/ (package data in a wheel): ask for them by
# name, e.g. `load_recipe("meit")` or `ecg_instruct.build.recipe.recipe_path("meit-100hz")`.


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


@pytest.fixture(scope="session")
def sample_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic PhysioNet-shaped mirror (ptb-xl/ and mimic-iv-ecg/), written once."""
    from ecg_instruct.sample import write_sample_mirror

    return write_sample_mirror(tmp_path_factory.mktemp("sample-mirror"))


@pytest.fixture(scope="session")
def built_dataset(sample_mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample mirror built with the default MEIT recipe (500 Hz), as a user gets it."""
    from ecg_instruct.build.pipeline import BuildOptions, build
    from ecg_instruct.build.recipe import load_recipe

    out = tmp_path_factory.mktemp("built") / "meit"
    build(BuildOptions(raw_dir=sample_mirror, out=out,
                       recipe=load_recipe("meit"),
                       sources=["ptbxl", "mimic"], workers=2, progress=False))
    return out


@pytest.fixture(scope="session")
def ecgqa_build(tmp_path_factory: pytest.TempPathFactory):
    """(mirror, out, summary): the 20 + 20 record sample mirror built at 100 Hz with the ECG-QA
    task (both wordings, default split policy); shared by the questions and training tests."""
    from buildkit import quick_recipe, run_build, sample_mirror

    mirror = sample_mirror(tmp_path_factory)
    folder = tmp_path_factory.mktemp("ecgqa-build")
    recipe = quick_recipe(folder, ecgqa={"variant": "both", "split": "ours"})
    out = folder / "meit"
    summary = run_build(mirror, out, recipe)
    return mirror, out, summary
