"""Same inputs + recipe + seed -> identical bytes, whatever the worker count, the output location or
the split filter; nothing machine-specific in the published bytes."""

from __future__ import annotations

import os
import re

import pyarrow.parquet as pq
import pytest
from buildkit import quick_recipe, run_build, sample_mirror, tree_digest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    mirror = sample_mirror(tmp_path_factory)
    base = tmp_path_factory.mktemp("determinism")
    recipe = quick_recipe(base)
    one = base / "w1" / "meit"
    two = base / "w2" / "meit"
    run_build(mirror, one, recipe, workers=1)
    run_build(mirror, two, recipe, workers=2)
    return mirror, base, recipe, one, two


def test_workers_1_and_2_give_identical_bytes(builds):
    _, _, _, one, two = builds
    digest_one, digest_two = tree_digest(one), tree_digest(two)
    assert len([p for p in digest_one if p.startswith("data/")]) > 4  # several files per source
    assert digest_one == digest_two


def _published_text(folder) -> list[tuple[str, str]]:
    """Every text a user reads from the dataset: the card, and every string cell of every
    Parquet file (decompressed: the files are zstd, a byte search would find nothing)."""
    texts = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".md":
            texts.append((path.name, path.read_text(encoding="utf-8")))
        elif path.suffix == ".parquet":
            table = pq.read_table(path)
            texts.append((path.name, repr(table.schema.metadata)))
            for name in table.column_names:
                if name != "signal":
                    texts.append((f"{path.name}:{name}", repr(table.column(name).to_pylist())))
    return texts


def test_published_bytes_hold_nothing_machine_specific(builds):
    mirror, base, _, one, _ = builds
    needles = {str(base), str(mirror), str(mirror.resolve()), str(one.parent), "/tmp/"}
    # the process id as a number of its own: pid 2025 must not match "20250 bytes per record"
    pid = re.compile(rf"(?<![0-9]){os.getpid()}(?![0-9])")
    texts = _published_text(one)
    assert any("rejects.parquet:detail" == name for name, _ in texts)
    for name, text in texts:
        for needle in needles:
            assert needle not in text, f"{needle!r} found in {name}"
        assert not pid.search(text), f"the build's process id {os.getpid()} found in {name}"


def test_a_different_seed_changes_only_the_instructions(builds, tmp_path):
    mirror, _, recipe, one, _ = builds
    other = tmp_path / "seed1" / "meit"
    run_build(mirror, other, recipe, workers=1, seed=1)
    assert tree_digest(other) != tree_digest(one)
    for path in sorted((one / "data").rglob("*.parquet")):
        mine = pq.read_table(path).drop_columns(["messages", "template_id"])
        theirs = pq.read_table(other / path.relative_to(one)).drop_columns(["messages", "template_id"])
        assert mine.equals(theirs)


def test_split_filter_gives_the_same_test_files_as_a_full_build(builds, tmp_path):
    mirror, _, recipe, one, _ = builds
    only = tmp_path / "test-only" / "meit"
    summary = run_build(mirror, only, recipe, workers=2, splits=["test"])
    assert set(summary.counts["split"]) <= {"test", "(unassigned)"}
    full = {p: d for p, d in tree_digest(one).items() if "/test-" in p}
    mine = {p: d for p, d in tree_digest(only).items() if p.startswith("data/")}
    assert full and mine == full


def test_a_sample_mirror_is_labelled_synthetic_however_it_is_chosen(tmp_path, tmp_path_factory):
    """`--sample-fallback DIR` and `--raw-dir DIR` on the same sample mirror: the same card."""
    from buildkit import copy_mirror
    from typer.testing import CliRunner

    from ecg_instruct.cli import SAMPLE_MARKER, app

    mirror = copy_mirror(sample_mirror(tmp_path_factory), tmp_path / "sample")
    (mirror / SAMPLE_MARKER).write_text("written by `ecg-instruct sample`\n")
    recipe = quick_recipe(tmp_path)
    common = ["--recipe", str(recipe), "--workers", "1", "--no-progress"]
    fallback = tmp_path / "a" / "meit"
    direct = tmp_path / "b" / "meit"
    runner = CliRunner()
    result = runner.invoke(app, ["build", "--raw-dir", str(tmp_path / "none"), "--sample-fallback",
                                 str(mirror), "--out", str(fallback), *common])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["build", "--raw-dir", str(mirror), "--out", str(direct), *common])
    assert result.exit_code == 0, result.output
    card = (direct / "README.md").read_text(encoding="utf-8")
    assert "synthetic sample mirror" in card
    assert card == (fallback / "README.md").read_text(encoding="utf-8")
