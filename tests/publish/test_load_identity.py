"""`load_dataset("./out/meit")` never serves an earlier build's rows from the Hugging Face cache.

`datasets` (5.x) keys its Arrow cache of a local folder on the folder's *name* and the card's
YAML (config patterns, features, split sizes), not on the data files: a rebuilt `out/meit`, or
another dataset in a folder of the same name, was served from the first one's cache (measured:
the old ages came back after a rebuild). The card now names each config's content digest, so a
different content is a different cache entry and the same content is still reused.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from buildkit import copy_mirror, quick_recipe, run_build, sample_mirror

datasets = pytest.importorskip("datasets")


def _ages(out: Path) -> dict[str, float]:
    ds = datasets.load_dataset(str(out), "ptbxl", split="train")
    return dict(zip(ds["id"], ds["age"], strict=True))


def _with_age(mirror: Path, dest: Path, ecg_id: str, age: float) -> Path:
    """A copy of the mirror where one record's age is changed (same digits: same file sizes)."""
    copy = copy_mirror(mirror, dest)
    table = copy / "ptb-xl" / "ptbxl_database.csv"
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["ecg_id"] == ecg_id:
            row["age"] = f"{age:.1f}"
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return copy


def test_a_rebuilt_or_same_named_dataset_is_loaded_fresh(tmp_path_factory, tmp_path: Path):
    mirror = sample_mirror(tmp_path_factory)
    recipe = quick_recipe(tmp_path / "recipe")
    first, second = tmp_path / "a" / "meit", tmp_path / "b" / "meit"
    run_build(_with_age(mirror, tmp_path / "m1", "1", 64.0), first, recipe)
    assert _ages(first)["ptbxl/00001"] == 64.0
    # another dataset in a folder of the same name, loaded with the same cache
    run_build(_with_age(mirror, tmp_path / "m2", "1", 65.0), second, recipe)
    assert _ages(second)["ptbxl/00001"] == 65.0
    # the first folder rebuilt in place from the changed mirror
    run_build(tmp_path / "m2", first, recipe, overwrite=True)
    assert _ages(first)["ptbxl/00001"] == 65.0
    # and the same content is one cache entry, not a new Arrow copy per load
    cache = Path(datasets.config.HF_DATASETS_CACHE)
    before = sorted(p.name for p in cache.rglob("*.arrow"))
    _ages(second)
    assert sorted(p.name for p in cache.rglob("*.arrow")) == before
