"""`download cinc2021` against the local PhysioNet-shaped server: full, by database, resumed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ecg_instruct.download.run import download_release
from ecg_instruct.errors import UserError
from ecg_instruct.sources.cinc2021_layout import write_challenge_record
from ecg_instruct.sources.subset import read_subset

from .conftest import FAST, tree_files, write_checksums
from .physionet_server import PhysioNetServer

RECORDS = {"ptb-xl": ("g7", ["HR06000", "HR06001"]), "georgia": ("g1", ["E00001", "E00002"]),
           "st_petersburg_incart": ("g1", ["I0001"])}


@pytest.fixture
def served(tmp_path: Path):
    release = tmp_path / "mirror" / "challenge-2021" / "1.0.3"
    for database, (group, names) in RECORDS.items():
        for k, name in enumerate(names):
            counts = np.random.default_rng(k).integers(-500, 500, (12, 1000)).astype(np.int16)
            write_challenge_record(release / "training" / database / group, name, counts, 500,
                                   dx=["426783006"])
    (release / "LICENSE.txt").write_text("Creative Commons Attribution 4.0\n")
    write_checksums(release)
    with PhysioNetServer(tmp_path / "mirror") as server:
        yield server, release, server.base_url + "challenge-2021/1.0.3/"


def _get(out: Path, url: str, **kw):
    return download_release("cinc2021", out, base_url=url, progress=False, config=FAST, **kw)


def test_full_download_then_rerun_verifies_locally(served, tmp_path):
    server, release, url = served
    out = tmp_path / "raw"
    summary = _get(out, url)
    assert tree_files(out / "challenge-2021") == tree_files(release)
    assert summary.ok and summary.fetched == 11  # 5 records x (.hea + .mat) + LICENSE.txt
    assert read_subset(out / "challenge-2021") is None
    server.log.clear()
    assert _get(out, url).fetched == 0
    assert [p for p, _, _ in server.log] == ["challenge-2021/1.0.3/SHA256SUMS.txt"]


def test_subset_by_database_marks_the_subset_and_resumes(served, tmp_path):
    _, _, url = served
    out = tmp_path / "raw"
    summary = _get(out, url, databases=["ptb-xl"])
    files = {f for f in tree_files(out / "challenge-2021") if f.startswith("training/")}
    assert files == {f"training/ptb-xl/g7/HR0600{i}.{ext}" for i in (0, 1) for ext in ("hea", "mat")}
    assert summary.records == 2
    assert read_subset(out / "challenge-2021") == {"cinc2021/HR06000", "cinc2021/HR06001"}
    # a file lost (or never finished) is fetched again by the same command, nothing else
    (out / "challenge-2021" / "training" / "ptb-xl" / "g7" / "HR06001.mat").unlink()
    again = _get(out, url, databases=["ptb-xl"])
    assert (again.fetched, again.ok) == (1, True)
    more = _get(out, url, databases=["georgia"], limit=1)
    assert more.records == 1
    assert read_subset(out / "challenge-2021") == {"cinc2021/HR06000", "cinc2021/HR06001",
                                                    "cinc2021/E00001"}
    shutil.rmtree(out)


def test_unknown_database_or_wrong_release_is_refused(served, tmp_path):
    _, _, url = served
    with pytest.raises(UserError, match="not a Challenge 2021 database"):
        _get(tmp_path / "raw", url, databases=["ptbxl"])
    with pytest.raises(UserError, match="cinc2021 only"):
        download_release("ptbxl", tmp_path / "raw", base_url=url, databases=["ptb-xl"],
                         progress=False, config=FAST)
