"""A filtered build never replaces a wider one by surprise (issue 14).

`ecg-instruct build --source mimic --split test` (a README example) used to write into the
default `out/meit`, replacing a full build and deleting its work folder.
"""

from __future__ import annotations

import pytest
from buildkit import quick_recipe, run_build, sample_mirror, tree_digest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_a_filtered_build_next_to_a_full_one_leaves_it_intact(
    tmp_path_factory, tmp_path, monkeypatch,
):
    from ecg_instruct.cli import app

    mirror = sample_mirror(tmp_path_factory)
    recipe = quick_recipe(tmp_path / "recipe")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    common = ["--raw-dir", str(mirror), "--recipe", str(recipe), "--workers", "1",
              "--no-progress"]
    full = runner.invoke(app, ["build", *common])
    assert full.exit_code == 0, full.output
    meit, work = tmp_path / "out" / "meit", tmp_path / "out" / "meit.work"
    before, work_before = tree_digest(meit), tree_digest(work)

    filtered = runner.invoke(app, ["build", "--source", "mimic", "--split", "test", *common])
    assert filtered.exit_code == 0, filtered.output
    assert (tmp_path / "out" / "meit-mimic-test" / "README.md").is_file()
    assert tree_digest(meit) == before and tree_digest(work) == work_before

    # the same filter into the full build's folder: refused, one line, nothing touched
    refused = runner.invoke(app, ["build", "--source", "mimic", "--split", "test", "--out",
                                  str(meit), *common])
    assert refused.exit_code == 2  # a UserError: one line
    assert "would replace it" in refused.output and "--overwrite" in refused.output
    assert "Traceback" not in refused.output
    assert tree_digest(meit) == before and tree_digest(work) == work_before


def test_a_full_build_without_its_work_folder_is_still_not_replaced_by_a_filtered_one(
    tmp_path_factory, tmp_path,
):
    """A dataset whose `.work/` was deleted (or built before the marker existed) still tells
    what it holds by its file names: a narrower build into it is refused."""
    import shutil

    from ecg_instruct.cli import app

    mirror = sample_mirror(tmp_path_factory)
    recipe = quick_recipe(tmp_path / "recipe")
    meit = tmp_path / "out" / "meit"
    common = ["--raw-dir", str(mirror), "--recipe", str(recipe), "--workers", "1",
              "--no-progress", "--out", str(meit)]
    runner = CliRunner()
    assert runner.invoke(app, ["build", *common]).exit_code == 0
    shutil.rmtree(tmp_path / "out" / "meit.work")
    before = tree_digest(meit)
    refused = runner.invoke(app, ["build", "--source", "mimic", "--split", "test", *common])
    assert refused.exit_code == 2 and "would replace it" in refused.output, refused.output
    assert tree_digest(meit) == before
    # a build covering everything the folder holds replaces it as a rebuild does
    assert runner.invoke(app, ["build", *common]).exit_code == 0


def test_overwrite_replaces_a_wider_build_and_keeps_its_work(tmp_path_factory, tmp_path):
    from ecg_instruct.errors import UserError

    mirror = sample_mirror(tmp_path_factory)
    recipe = quick_recipe(tmp_path / "recipe")
    out = tmp_path / "meit"
    run_build(mirror, out, recipe)
    full_work = {p.name for p in out.with_name("meit.work").iterdir() if p.is_dir()}
    with pytest.raises(UserError, match="would replace it"):
        run_build(mirror, out, recipe, splits=["test"])
    run_build(mirror, out, recipe, splits=["test"], overwrite=True)
    assert "validation" not in {p.name.split("-")[0] for p in out.glob("data/*/*.parquet")}
    assert full_work <= {p.name for p in out.with_name("meit.work").iterdir()}
    run_build(mirror, out, recipe, splits=["test"])  # same filter again: a plain rebuild
    # back to the full build, without --overwrite: it covers everything the folder holds
    # (before: refused until out.work/published.json was deleted by hand); resumed
    run_build(mirror, out, recipe)
    assert "validation" in {p.name.split("-")[0] for p in out.glob("data/*/*.parquet")}
