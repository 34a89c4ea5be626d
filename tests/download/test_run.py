"""End-to-end downloads against the local PhysioNet-shaped server (library API)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from ecg_instruct.download.fetch import part_path
from ecg_instruct.download.run import download_release
from ecg_instruct.errors import UserError

from .conftest import FAST, tree_files, write_checksums
from .physionet_server import PhysioNetServer

P = "ptb-xl/1.0.3/"
HR1 = "records500/00000/00001_hr.dat"
METADATA = {"ptbxl_database.csv", "scp_statements.csv", "LICENSE.txt", "RECORDS",
            "SHA256SUMS.txt"}


def _get(out: Path, url: str, name: str = "ptbxl", **kw):
    return download_release(name, out, base_url=url, progress=False, config=FAST, **kw)


def _release(mirror: Path) -> Path:
    return mirror / "ptb-xl" / "1.0.3"


def _no_parts(root: Path) -> bool:
    return not [p for p in root.rglob("*.part")]


# -- full and subset downloads ------------------------------------------------------------

def test_full_download_matches_release_and_rerun_skips(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, out: Path
) -> None:
    summary = _get(out, ptbxl_url)
    got = tree_files(out / "ptb-xl")
    assert got == tree_files(_release(mirror))
    n = len(got) - 1  # SHA256SUMS.txt itself is not a listed file
    assert (summary.fetched, summary.skipped, len(summary.failed)) == (n, 0, 0)
    assert summary.bytes_fetched == sum(len(v) for k, v in got.items() if k != "SHA256SUMS.txt")
    assert summary.ok and "0 failed" in summary.line()

    server.log.clear()
    again = _get(out, ptbxl_url)
    assert (again.fetched, again.skipped, len(again.failed)) == (0, n, 0)
    assert [p for p, _, _ in server.log] == [P + "SHA256SUMS.txt"]  # verified locally


def test_rate_500_fetches_records500_only(ptbxl_url: str, out: Path) -> None:
    _get(out, ptbxl_url, rate=500)
    files = set(tree_files(out / "ptb-xl"))
    assert not any(f.startswith("records100/") for f in files)
    assert {f for f in files if f.startswith("records500/")} == {
        f"records500/00000/{i:05d}_hr.{ext}" for i in (1, 2, 3, 4, 5, 17) for ext in ("hea", "dat")
    }
    assert METADATA <= files


def test_metadata_only(server: PhysioNetServer, ptbxl_url: str, out: Path) -> None:
    summary = _get(out, ptbxl_url, metadata_only=True)
    assert set(tree_files(out / "ptb-xl")) == METADATA
    assert summary.fetched == len(METADATA) - 1
    assert not any("records" in p for p, _, _ in server.log if not p.endswith("RECORDS"))


def test_limit_takes_first_records_by_id_whatever_the_csv_order(ptbxl_url: str, out: Path) -> None:
    summary = _get(out, ptbxl_url, rate=100, limit=2)
    records = {f for f in tree_files(out / "ptb-xl") if f.startswith("records")}
    assert records == {f"records100/00000/0000{i}_lr.{e}" for i in (1, 2) for e in ("hea", "dat")}
    assert summary.records == 2


def test_records_file_by_id_and_path(ptbxl_url: str, out: Path, tmp_path: Path) -> None:
    wanted = tmp_path / "records.txt"
    wanted.write_text("# ids and paths mix\n3\nptbxl/00017\n\nrecords500/00000/00002_hr.hea\n")
    _get(out, ptbxl_url, records_file=wanted)
    records = {f for f in tree_files(out / "ptb-xl") if f.startswith("records")}
    stems = {"records100/00000/00003_lr", "records500/00000/00003_hr",
             "records100/00000/00017_lr", "records500/00000/00017_hr",
             "records500/00000/00002_hr"}
    assert records == {f"{s}.{e}" for s in stems for e in ("hea", "dat")}


@pytest.mark.parametrize(
    "line, message",
    [("99999", "not in ptbxl_database.csv"), ("records500/00000/00009_hr", "not in"),
     ("../../etc/passwd", "not allowed")],
)
def test_records_file_bad_entries_refused(
    ptbxl_url: str, out: Path, tmp_path: Path, line: str, message: str
) -> None:
    wanted = tmp_path / "records.txt"
    wanted.write_text(f"1\n{line}\n")
    with pytest.raises(UserError, match=message) as info:
        _get(out, ptbxl_url, records_file=wanted)
    assert str(wanted) in str(info.value)
    assert not (out / "ptb-xl" / "records500").exists()


def test_ptbxl_split_test_uses_strat_fold_10(ptbxl_url: str, out: Path) -> None:
    _get(out, ptbxl_url, split="test", rate=500)
    records = {f for f in tree_files(out / "ptb-xl") if f.startswith("records")}
    assert records == {f"records500/00000/0000{i}_hr.{e}" for i in (3, 5) for e in ("hea", "dat")}


def test_mimic_test_split_is_patient_level_and_the_builds(
    pristine: dict, mimic_url: str, out: Path
) -> None:
    from ecg_instruct.index.split import mimic_split  # what ecg_instruct.index.table assigns

    subjects: dict[int, list[str]] = pristine["mimic_subjects"]
    summary = _get(out, mimic_url, name="mimic", split="test")
    got = {f for f in tree_files(out / "mimic-iv-ecg") if f.startswith("files/")}
    expected = {f"{rel}.{e}" for s, rels in subjects.items() if mimic_split(s) == "test"
                for rel in rels for e in ("hea", "dat")}
    assert got == expected and len(expected) == 8  # 2 test subjects x 2 studies x 2 files
    assert summary.records == 4
    assert {"record_list.csv", "machine_measurements.csv"} <= set(tree_files(out / "mimic-iv-ecg"))


def test_split_follows_the_recipe(pristine: dict, ptbxl_url: str, mimic_url: str,
                                  out: Path) -> None:
    from ecg_instruct.build.recipe import SplitConfig

    everyone_test = SplitConfig(mimic_fractions=[0.0, 0.0, 1.0])
    summary = _get(out, mimic_url, name="mimic", split="test", split_config=everyone_test)
    assert summary.records == 10  # all 5 subjects x 2 studies
    folds = SplitConfig(ptbxl_folds={"train": [1, 3, 5, 9], "validation": [], "test": [10]})
    summary = _get(out, ptbxl_url, split="train", rate=100, split_config=folds)
    assert summary.records == 4  # ecg_ids 1, 2, 4, 17 (folds 1, 9, 3, 5)


def test_mimic_limit_and_study_ids(pristine: dict, mimic_url: str, out: Path,
                                   tmp_path: Path) -> None:
    subjects: dict[int, list[str]] = pristine["mimic_subjects"]
    first_subject = min(subjects)
    _get(out, mimic_url, name="mimic", limit=1)
    got = {f for f in tree_files(out / "mimic-iv-ecg") if f.startswith("files/")}
    assert got == {f"{subjects[first_subject][0]}.{e}" for e in ("hea", "dat")}

    last = subjects[max(subjects)][1]
    wanted = tmp_path / "studies.txt"
    wanted.write_text(f"mimic/{last.rsplit('/', 1)[1]}\n")
    _get(out, mimic_url, name="mimic", records_file=wanted)
    got = {f for f in tree_files(out / "mimic-iv-ecg") if f.startswith("files/")}
    assert f"{last}.dat" in got and len(got) == 4


# -- resume, corruption, retries ----------------------------------------------------------

def test_connection_dropped_mid_file_resumes_with_range(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, out: Path
) -> None:
    server.add_fault(P + HR1, "drop")
    summary = _get(out, ptbxl_url, rate=500)
    assert summary.ok
    size = (_release(mirror) / HR1).stat().st_size
    (first, s1), (second, s2) = server.requests_for(P + HR1)
    assert (first, s1) == (None, 200)
    assert s2 == 206 and second == f"bytes={size // 2}-"  # continued, not restarted
    assert (out / "ptb-xl" / HR1).read_bytes() == (_release(mirror) / HR1).read_bytes()
    assert _no_parts(out)


def test_part_file_from_an_interrupted_run_is_continued(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, out: Path
) -> None:
    data = (_release(mirror) / HR1).read_bytes()
    dest = out / "ptb-xl" / HR1
    dest.parent.mkdir(parents=True)
    part_path(dest).write_bytes(data[:50_000])
    summary = _get(out, ptbxl_url, records_file=None, rate=500, limit=1)
    assert server.requests_for(P + HR1) == [("bytes=50000-", 206)]
    assert dest.read_bytes() == data and not part_path(dest).exists()
    hea = (_release(mirror) / HR1.replace(".dat", ".hea")).stat().st_size
    assert summary.bytes_fetched == len(data) - 50_000 + hea + sum(
        (_release(mirror) / m).stat().st_size for m in METADATA - {"SHA256SUMS.txt"})


def test_complete_part_file_is_verified_and_renamed(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, out: Path
) -> None:
    data = (_release(mirror) / HR1).read_bytes()
    dest = out / "ptb-xl" / HR1
    dest.parent.mkdir(parents=True)
    part_path(dest).write_bytes(data)
    assert _get(out, ptbxl_url, rate=500, limit=1).ok
    assert server.requests_for(P + HR1) == [(f"bytes={len(data)}-", 416)]
    assert dest.read_bytes() == data


def test_wrong_part_prefix_is_refetched_from_scratch(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, out: Path
) -> None:
    data = (_release(mirror) / HR1).read_bytes()
    dest = out / "ptb-xl" / HR1
    dest.parent.mkdir(parents=True)
    part_path(dest).write_bytes(b"\0" * 1000)  # e.g. left by a different release
    assert _get(out, ptbxl_url, rate=500, limit=1).ok
    assert server.requests_for(P + HR1) == [("bytes=1000-", 206), (None, 200)]
    assert dest.read_bytes() == data


def test_server_ignoring_range_restarts_the_file(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, out: Path
) -> None:
    data = (_release(mirror) / HR1).read_bytes()
    dest = out / "ptb-xl" / HR1
    dest.parent.mkdir(parents=True)
    part_path(dest).write_bytes(data[:1000])
    server.add_fault(P + HR1, "ignore_range")
    assert _get(out, ptbxl_url, rate=500, limit=1).ok
    assert dest.read_bytes() == data


def test_corrupted_body_is_detected_and_refetched_once(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, out: Path
) -> None:
    server.add_fault(P + HR1, "corrupt")
    summary = _get(out, ptbxl_url, rate=500)
    assert summary.ok
    assert server.requests_for(P + HR1) == [(None, 200), (None, 200)]
    assert (out / "ptb-xl" / HR1).read_bytes() == (_release(mirror) / HR1).read_bytes()


def test_persistent_mismatch_is_reported_by_path_and_never_renamed(
    server: PhysioNetServer, ptbxl_url: str, out: Path
) -> None:
    server.add_fault(P + HR1, "corrupt", "corrupt")
    summary = _get(out, ptbxl_url, rate=500)
    assert [r.path for r in summary.failed] == [HR1]
    assert "checksum mismatch" in summary.failed[0].detail
    assert summary.fetched == 5 + 11 - 1 and not summary.ok  # everything else arrived
    assert "1 failed" in summary.line()
    assert not (out / "ptb-xl" / HR1).exists() and _no_parts(out)


def test_local_file_that_does_not_match_is_replaced(
    mirror: Path, ptbxl_url: str, out: Path
) -> None:
    _get(out, ptbxl_url, rate=500, limit=1)
    dest = out / "ptb-xl" / HR1
    dest.write_bytes(b"tampered")
    summary = _get(out, ptbxl_url, rate=500, limit=1)
    assert summary.fetched == 1 and dest.read_bytes() == (_release(mirror) / HR1).read_bytes()


def test_429_and_503_are_retried(server: PhysioNetServer, ptbxl_url: str, out: Path) -> None:
    server.add_fault(P + HR1, "429", "503")
    server.add_fault(P + "SHA256SUMS.txt", "503")
    assert _get(out, ptbxl_url, rate=500).ok
    assert [s for _, s in server.requests_for(P + HR1)] == [429, 503, 200]


def test_file_missing_on_server_fails_alone(
    mirror: Path, ptbxl_url: str, out: Path
) -> None:
    (_release(mirror) / HR1).unlink()
    summary = _get(out, ptbxl_url, rate=500)
    assert [(r.path, r.detail) for r in summary.failed] == [(HR1, "HTTP 404")]
    assert summary.fetched == 5 + 11 - 1


def test_too_many_5xx_fail_the_file_after_retries(
    server: PhysioNetServer, ptbxl_url: str, out: Path
) -> None:
    server.add_fault(P + HR1, *["503"] * 4)
    summary = _get(out, ptbxl_url, rate=500, limit=1)
    assert [r.path for r in summary.failed] == [HR1]
    assert "HTTP 503 after 3 retries" in summary.failed[0].detail


# -- safety and errors --------------------------------------------------------------------

@pytest.mark.parametrize("evil", ["../escaped.txt", "/tmp/escaped.txt", "a/../../escaped.txt",
                                  "..\\escaped.txt"])
def test_checksum_file_naming_outside_paths_is_refused(
    mirror: Path, ptbxl_url: str, out: Path, evil: str
) -> None:
    release = _release(mirror)
    sums = release / "SHA256SUMS.txt"
    digest = hashlib.sha256(b"x").hexdigest()
    sums.write_text(sums.read_text() + f"{digest}  {evil}\n")
    with pytest.raises(UserError, match="refusing the whole checksum file") as info:
        _get(out, ptbxl_url)
    assert ptbxl_url + "SHA256SUMS.txt" in str(info.value)
    assert not out.exists()  # nothing written at all
    assert not (out.parent / "escaped.txt").exists()


def test_record_list_naming_outside_paths_is_refused(
    mirror: Path, mimic_url: str, out: Path
) -> None:
    root = mirror / "mimic-iv-ecg" / "1.0"
    csv_path = root / "record_list.csv"
    lines = csv_path.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",../../../escaped"
    csv_path.write_text("\n".join(lines) + "\n")
    write_checksums(root)
    with pytest.raises(UserError, match="record_list.csv.*refusing"):
        _get(out, mimic_url, name="mimic", limit=1)
    assert not (out / "mimic-iv-ecg" / "files").exists()


def test_unreachable_server_is_one_clean_error(out: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/files/ptb-xl/1.0.3/"
    with pytest.raises(UserError) as info:
        _get(out, url)
    message = str(info.value)
    assert message.startswith(url + "SHA256SUMS.txt: cannot reach the server")
    assert "--base-url" in message and str(out / "ptb-xl") in message
    assert "\n" not in message
    assert not out.exists()  # no empty release folder that would look like a started copy


def test_wrong_base_url_says_so(server: PhysioNetServer, out: Path) -> None:
    with pytest.raises(UserError, match="HTTP 404.*--base-url"):
        _get(out, server.base_url + "ptb-xl/9.9/")


@pytest.mark.parametrize(
    "kw, message",
    [({"name": "mimic", "rate": 500}, "--rate applies to ptbxl only"),
     ({"rate": 250}, "--rate must be 100 or 500"),
     ({"limit": 0}, "--limit must be at least 1"),
     ({"split": "dev"}, "--split must be one of"),
     ({"connections": 100}, "--connections must be"),
     ({"name": "ptb"}, "unknown dataset"),
     ({"metadata_only": True, "limit": 3}, "--metadata-only fetches no records")],
)
def test_bad_options_fail_before_any_request(
    server: PhysioNetServer, ptbxl_url: str, out: Path, kw: dict, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        _get(out, ptbxl_url, **kw)
    assert server.log == []


def test_not_a_checksum_file(mirror: Path, ptbxl_url: str, out: Path) -> None:
    (_release(mirror) / "SHA256SUMS.txt").write_text("<html>Not found</html>\n")
    with pytest.raises(UserError, match="line 1 is not '<sha256> <path>'"):
        _get(out, ptbxl_url)


def test_subset_needs_a_verified_index_csv(
    server: PhysioNetServer, ptbxl_url: str, out: Path
) -> None:
    """A stale local ptbxl_database.csv must not choose the records when the fetch fails."""
    (out / "ptb-xl").mkdir(parents=True)
    (out / "ptb-xl" / "ptbxl_database.csv").write_text("ecg_id,filename_lr,filename_hr\n")
    server.add_fault(P + "ptbxl_database.csv", "corrupt", "corrupt")
    with pytest.raises(UserError, match=r"csv: not fetched and verified \(checksum mismatch"):
        _get(out, ptbxl_url, limit=1)
    assert not (out / "ptb-xl" / "records500").exists()


def test_subset_download_builds_only_what_was_fetched(pristine: dict, mimic_url: str, out: Path,
                                                      tmp_path: Path) -> None:
    """A subset mirror indexes its subset: records never fetched are not build inputs."""
    from ecg_instruct.build.recipe import Recipe
    from ecg_instruct.index.table import build_index
    from ecg_instruct.sources.subset import read_subset

    _get(out, mimic_url, name="mimic", limit=3)
    root = out / "mimic-iv-ecg"
    fetched = read_subset(root)
    assert fetched is not None and len(fetched) == 3
    index, rejects = build_index(out, Recipe(name="t"), ["mimic"])
    assert set(index["id"]) == fetched and rejects.empty
    for path in index["path"]:
        assert (root / f"{path}.hea").is_file()
    _get(out, mimic_url, name="mimic")  # the complete release: every record is an input again
    assert read_subset(root) is None
    assert len(build_index(out, Recipe(name="t"), ["mimic"])[0]) == 10
