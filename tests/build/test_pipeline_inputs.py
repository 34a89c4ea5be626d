"""A rerun notices changed signal files and redoes exactly what they touch (issue 14).

The work key hashes the metadata, not the 800k signal files; each signals shard's name carries
the size and mtime of its records' `.hea`/`.dat` instead. Re-downloading a damaged file (or a
file being damaged) after a build must change that record on the next run, and only it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from buildkit import copy_mirror, quick_recipe, run_build, sample_mirror

pytestmark = pytest.mark.slow


def _rows(out: Path) -> dict[str, str]:
    """sha256 of every published record row (signal and metadata), by id."""
    rows = {}
    for path in sorted((out / "data").glob("*/*.parquet")):
        if path.parent.name == "instructions":
            continue
        for row in pq.read_table(path).to_pylist():
            rows[row["id"]] = hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()
    return rows


def _rejects(out: Path) -> dict[str, str]:
    table = pq.read_table(out / "rejects.parquet").to_pylist()
    return {row["id"]: row["reason"] for row in table}


def test_a_changed_dat_changes_exactly_its_record_on_rerun(tmp_path_factory, tmp_path):
    raw = copy_mirror(sample_mirror(tmp_path_factory), tmp_path / "raw")
    recipe = quick_recipe(tmp_path / "recipe")
    out = tmp_path / "meit"
    run_build(raw, out, recipe, seed=1)
    good_rows, good_rejects = _rows(out), _rejects(out)
    record = "ptbxl/00002"
    assert record in good_rows
    dat = raw / "ptb-xl" / "records100" / "00000" / "00002_lr.dat"
    good = dat.read_bytes()

    # good -> truncated (a damaged copy): the record is now rejected, nothing else moves
    dat.write_bytes(good[: len(good) // 2])
    run_build(raw, out, recipe, seed=1)
    rows, rejects = _rows(out), _rejects(out)
    assert record not in rows and rejects[record] == "truncated_dat"
    assert {k: v for k, v in good_rows.items() if k != record} == rows
    assert {k: v for k, v in rejects.items() if k != record} == good_rejects

    # truncated -> good (re-downloaded): the record is published again, as in the first build
    dat.write_bytes(good)
    stat = dat.stat()
    os.utime(dat, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a coarse-mtime FS
    run_build(raw, out, recipe, seed=1)
    assert _rows(out) == good_rows and _rejects(out) == good_rejects
    shards = list(out.with_name("meit.work").glob("*/signals/*.arrow"))
    assert len({p.name.split(".")[0] for p in shards}) == len(shards)  # no outdated shard left
