"""One sample build with every instruction task, shared by the export tests (~15 s), from the
session's sample mirror (`tests/conftest.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecg_instruct.build.recipe import recipe_path

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = recipe_path("meit-instruct")


def run_build(mirror: Path, out: Path, workers: int, **instruct):
    import dataclasses

    from ecg_instruct.build.pipeline import BuildOptions, build
    from ecg_instruct.build.recipe import load_recipe

    recipe = load_recipe(RECIPE)
    if instruct:
        recipe = dataclasses.replace(recipe, instruct=dataclasses.replace(recipe.instruct,
                                                                          **instruct))
    return build(BuildOptions(raw_dir=mirror, out=out, recipe=recipe,
                              sources=["ptbxl", "mimic"], workers=workers, seed=0,
                              progress=False, sample=True))


@pytest.fixture(scope="session")
def built(sample_mirror: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("build") / "meit"
    summary = run_build(sample_mirror, out, workers=2)
    return out, summary
