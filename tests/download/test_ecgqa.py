"""`download ecgqa` against a local server holding a repository-shaped ECG-QA tree."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from questions.ecgqa_files import sample

from ecg_instruct.download.ecgqa import SOURCE_FILE, download_ecgqa
from ecg_instruct.errors import UserError
from ecg_instruct.sources.ecgqa import read_questions

from .conftest import FAST, tree_files
from .physionet_server import PhysioNetServer

TEST_CHUNK = "ecgqa/ptbxl/template/test/80000.json"


def _chunk(folder: Path, first: int, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [sample(i, [i % 50 + 1], ["yes"]) for i in range(first, first + n)]
    (folder / f"{first}.json").write_text(json.dumps(rows, indent=4))


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """The repository root: ecgqa/<edition>/... chunks (train from 0, test from 80000, as the
    release numbers them), the small files, and files the download must not take."""
    root = tmp_path / "repo"
    ptbxl = root / "ecgqa" / "ptbxl"
    for variant in ("template", "paraphrased"):
        _chunk(ptbxl / variant / "train", 0, 300)
        _chunk(ptbxl / variant / "train", 10_000, 20)
        _chunk(ptbxl / variant / "valid", 0, 5)
        _chunk(ptbxl / variant / "test", 80_000, 40)
    _chunk(root / "ecgqa" / "mimic-iv-ecg" / "template" / "test", 0, 3)
    for name in ("answers.csv", "train_ecgs.tsv", "test_ecgs.tsv"):
        (ptbxl / name).write_text("0\t1\n")
    (root / "README.md").write_text("not part of the release files\n")
    return root


@pytest.fixture
def server(repository: Path) -> Iterator[PhysioNetServer]:
    with PhysioNetServer(repository) as srv:
        yield srv


def _get(out: Path, server: PhysioNetServer, **kw):
    return download_ecgqa(out, server.base_url, progress=False, config=FAST, **kw)


def test_fetches_every_question_file_and_a_rerun_skips_them(repository, server, tmp_path):
    out = tmp_path / "raw"
    summary = _get(out, server)
    assert summary.ok and summary.fetched == 12 and summary.skipped == 0
    got = tree_files(out / "ecg-qa")
    want = {k: v for k, v in tree_files(repository).items() if k.startswith("ecgqa/")}
    source = json.loads(got.pop(SOURCE_FILE))
    assert got == want
    # the provenance of what was read: where from, and each file's size and sha256
    assert source["base_url"] == server.base_url.rstrip("/")
    assert source["expected_release"] == "1.0.2"
    assert source["files"] == {path: {"bytes": len(data),
                                      "sha256": hashlib.sha256(data).hexdigest()}
                               for path, data in sorted(want.items())}
    again = _get(out, server)
    assert again.fetched == 0 and again.skipped == 12
    assert json.loads((out / "ecg-qa" / SOURCE_FILE).read_text())["files"] == source["files"]
    # what the build reads
    rows = read_questions(out, ["ptbxl", "mimic"], ["template", "paraphrased"])
    assert len(rows) == 2 * (300 + 20 + 5 + 40) + 3


def test_a_dropped_connection_resumes_with_range(repository, server, tmp_path):
    server.add_fault(TEST_CHUNK, "drop")
    out = tmp_path / "raw"
    assert _get(out, server, sources=["ptbxl"], variants=["template"]).ok
    (first, s1), (second, s2) = server.requests_for(TEST_CHUNK)
    size = (repository / TEST_CHUNK).stat().st_size
    assert (first, s1) == (None, 200) and s2 == 206 and second == f"bytes={size // 2}-"
    assert (out / "ecg-qa" / TEST_CHUNK).read_bytes() == (repository / TEST_CHUNK).read_bytes()
    assert not list(out.rglob("*.part"))


def test_a_damaged_local_file_is_fetched_again(repository, server, tmp_path):
    out = tmp_path / "raw"
    _get(out, server, sources=["ptbxl"], variants=["template"])
    local = out / "ecg-qa" / TEST_CHUNK
    local.write_bytes(local.read_bytes()[:100])
    summary = _get(out, server, sources=["ptbxl"], variants=["template"])
    assert summary.fetched == 1 and local.read_bytes() == (repository / TEST_CHUNK).read_bytes()


def test_a_file_that_is_not_its_questions_is_reported_and_never_renamed(repository, server,
                                                                        tmp_path):
    """No checksum is published: the content check (a JSON list starting at the sample id the
    name says) is what keeps a proxy's error page out of the mirror."""
    bad = "ecgqa/ptbxl/template/valid/0.json"
    (repository / bad).write_text("<html>rate limited</html>")
    out = tmp_path / "raw"
    summary = _get(out, server, sources=["ptbxl"], variants=["template"])
    assert not summary.ok and [r.path for r in summary.failed] == [bad]
    assert "content check failed twice" in summary.failed[0].detail
    assert len(server.requests_for(bad)) == 2  # the .part was tried fresh once more
    assert not (out / "ecg-qa" / bad).exists() and not list(out.rglob("*.part"))
    (repository / bad).write_text(json.dumps([sample(1, [1], ["yes"])]))  # wrong first id
    assert not _get(out, server, sources=["ptbxl"], variants=["template"]).ok


def test_nothing_there_is_one_line_naming_the_url(server, tmp_path):
    with pytest.raises(UserError, match="no ECG-QA question files found"):
        download_ecgqa(tmp_path / "raw", server.base_url + "elsewhere/", progress=False,
                       config=FAST)


def test_an_incomplete_download_leaves_no_provenance_file(repository, server, tmp_path):
    """SOURCE.json describes a complete download only: a rerun that fails a file removes the
    one an earlier complete run wrote (the files may have changed since)."""
    out = tmp_path / "raw"
    assert _get(out, server, sources=["ptbxl"], variants=["template"]).ok
    assert (out / "ecg-qa" / SOURCE_FILE).is_file()
    bad = "ecgqa/ptbxl/template/valid/0.json"
    (repository / bad).write_text("<html>rate limited</html>")
    (out / "ecg-qa" / bad).unlink()
    assert not _get(out, server, sources=["ptbxl"], variants=["template"]).ok
    assert not (out / "ecg-qa" / SOURCE_FILE).exists()
