"""The column-wise index stage gives exactly what the row-by-row one gave (tests/legacy_index.py):
same rows in the same order, same values and dtypes, same rejects, same stored bytes."""

from __future__ import annotations

import json
import math
import posixpath
import shutil
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from badinput.corpus import make_record_faults
from buildkit import copy_mirror, sample_mirror
from legacy_index import legacy_build_index, ptbxl_read_index

from ecg_instruct.build.recipe import load_recipe
from ecg_instruct.index.stored import measurements_json, stored_index_bytes
from ecg_instruct.index.table import _normalised_paths, _sorted_by_id, build_index
from ecg_instruct.sample.mirror import MIMIC_MEASUREMENT_COLUMNS, MIMIC_RECORD_COLUMNS
from ecg_instruct.sources._columns import int_strings
from ecg_instruct.sources._csv import read_metadata_csv, read_metadata_table, to_int_string
from ecg_instruct.sources.ptbxl import read_index as ptbxl_read_index_now


def assert_same_frames(old: pd.DataFrame, new: pd.DataFrame) -> None:
    """Equal columns, dtypes, index and cells (NaN equal to NaN; lists and dicts by value)."""
    assert list(new.columns) == list(old.columns)
    assert list(new.dtypes) == list(old.dtypes)
    assert new.index.equals(old.index)
    for column in old.columns:
        for before, after in zip(old[column].tolist(), new[column].tolist(), strict=True):
            assert type(after) is type(before), (column, before, after)
            assert after == before or (before != before and after != after), (column, before,
                                                                              after)


def assert_same_index(raw: Path, sources: list[str], recipe: str = "meit") -> None:
    loaded = load_recipe(recipe)
    old, old_rejects = legacy_build_index(raw, loaded, sources)
    new, new_rejects = build_index(raw, loaded, sources)
    assert_same_frames(old, new)
    assert_same_frames(old_rejects, new_rejects)
    assert stored_index_bytes(new, new_rejects) == stored_index_bytes(old, old_rejects)
    assert_same_frames(old, new)  # storing it changed nothing in the index


@pytest.fixture(scope="module")
def damaged_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bad-input corpus (tests/badinput): every record fault of the robustness docs."""
    raw = copy_mirror(sample_mirror(tmp_path_factory), tmp_path_factory.mktemp("fast") / "raw")
    make_record_faults(raw)
    return raw


def test_bad_input_corpus_indexes_as_before(damaged_mirror: Path) -> None:
    assert_same_index(damaged_mirror, ["ptbxl", "mimic"], "meit-100hz")


def test_every_source_of_the_sample_indexes_as_before(tmp_path: Path) -> None:
    from ecg_instruct.sample import write_sample_mirror
    from ecg_instruct.sample.cinc2021 import write_cinc2021
    from ecg_instruct.sample.code15 import write_code15

    raw = write_sample_mirror(tmp_path / "raw", n_ptbxl=30, n_mimic=30)
    write_cinc2021(raw, ptbxl_root=raw / "ptb-xl")
    write_code15(raw)
    for recipe in ("meit", "meit-multisource"):
        assert_same_index(raw, ["ptbxl", "mimic", "cinc2021", "code15"], recipe)


# --- MIMIC-IV-ECG edge cases ------------------------------------------------------------------

#: (subject_id, study_id, path) of record_list.csv, one edge case each.
RECORDS = [
    ("10000032", "40000001", "files/p1000/p10000032/s40000001/40000001"),
    ("10000032", "40000002", "files/p1000/p10000032/s40000002/40000002"),
    ("10000032.0", "40000003.0", "files/p1000/p10000032/s40000003/40000003"),  # float ids
    ("10000033", "4000x", "files/p1000/p10000033/s4000x/4000x"),  # non-integer study
    ("1000003y", "40000005", "files/p1000/p1000003y/s40000005/40000005"),  # bad subject
    ("", "", ""),  # empty ids
    ("10000034", "40000002", "files/p1000/p10000034/s40000002/40000002"),  # duplicate study
    ("10000034", " 40000008", "files/p1000/p10000034/s40000008/40000008"),  # spaces
    ("10000034", "040000009", "files/p1000/p10000034/s40000009/40000009"),  # leading zero
    ("10000035", "40000010", "/etc/passwd"),
    ("10000035", "40000011", "files/../../etc/passwd"),
    ("10000035", "40000012", "files\\p1000\\x"),
    ("10000035", "40000013", "."),
    ("10000035", "40000014", "./files/p1000/p10000035/s40000014/40000014"),
    ("10000036", "40000015", "files/p1000/p10000032/s40000001/40000001"),  # shared files
    ("10000036", "40000016", "files//p1000/p10000032/./s40000002/40000002/"),  # same, spelt
    ("10000036", "40000017", "files/p1000/p10000036/s40000017/40000017"),  # no measurements
    ("10000037", "40000018", "files/p1000/p10000037/s40000018/40000018"),  # dup measurements
    ("10000037", "40000019", "files/p1000/p10000037/s40000019/40000019"),
    ("10000037", "1e3", "files/p1000/p10000037/s1000/1000"),
    ("10000038", "40000021", "files/p1000/p10000038/s40000021/40000021"),
    ("10000038", "0", "files/p1000/p10000038/s0/0"),
    ("10000039", "40000023", "files/p1000/p10000039/s40000023/40000023 "),
    ("10000040", "40000024", "files/p1000/p1000004ü/s40000024/40000024"),
]
MEASURED = ["rr_interval", "p_onset", "p_end", "qrs_onset", "qrs_end", "t_end", "p_axis",
            "qrs_axis", "t_axis"]
#: (study_id, report cells, measurement cells in MEASURED order)
MEASUREMENTS = [
    ("40000001", ["Sinus rhythm", "", " Normal ECG "], ["800", "40", "148", "200", "292", "580",
                                                        "60", "-0", "40"]),
    ("40000002", [], ["29999", "-29999", "32767", "-32768", "", "nan", "inf", "-45", "361"]),
    ("40000003", ["a, with comma", "multi\nline"], ["12", "1e3", "0", "10000", "10001",
                                                   "-10000", "-180", "360", "-181"]),
    ("4000x", ["orphan"], ["800"] * 9),
    ("40000008", ["\x1c odd space \u00a0", "\t"], ["3000", "", "", "", "", "", "", "", ""]),
    ("40000018", ["first"], ["600"] * 9),
    ("40000018", ["second"], ["700"] * 9),
    ("040000019", ["zero-padded study"], ["1000.5"] * 9),
    ("1000", ["from 1e3"], ["  650 "] * 9),
    ("0", ["study zero"], ["200", "1_000", "0x10", "+5", "5.", ".5", "-.5", "1e-3", "Infinity"]),
    ("40000021", ["Sinus rhythm", "Sinus rhythm"], ["499.99"] * 9),
    ("40000023", ["é ü statements"], ["1200"] * 9),
    ("40000024", [" "] * 18, ["29999"] * 9),
]


def write_edge_mirror(raw: Path, ragged: bool) -> Path:
    """A MIMIC-IV-ECG mirror of the edge cases above; `ragged` adds a row with a cell more to
    each CSV (so that the pandas fallback reads them, not pyarrow)."""
    root = raw / "mimic-iv-ecg"
    root.mkdir(parents=True)
    records = [dict(zip(["subject_id", "study_id", "path"], row, strict=True))
               | {"file_name": row[1], "ecg_time": "2180-07-01 08:00:00"} for row in RECORDS]
    pd.DataFrame(records)[MIMIC_RECORD_COLUMNS].to_csv(root / "record_list.csv", index=False)
    rows = []
    for study, reports, values in MEASUREMENTS:
        row = {"subject_id": "1", "study_id": study, "cart_id": "1", "ecg_time": "x",
               "bandwidth": "", "filtering": ""}
        row |= {f"report_{k}": reports[k] if k < len(reports) else "" for k in range(18)}
        rows.append(row | dict(zip(MEASURED, values, strict=True)))
    pd.DataFrame(rows)[MIMIC_MEASUREMENT_COLUMNS].to_csv(root / "machine_measurements.csv",
                                                         index=False)
    if ragged:
        for name, study in (("record_list.csv", "40000019"),
                            ("machine_measurements.csv", "40000021")):
            lines = (root / name).read_text(encoding="utf-8").split("\n")
            number = next(i for i, line in enumerate(lines) if f",{study}," in line)
            lines[number] += ",surplus"
            (root / name).write_text("\n".join(lines), encoding="utf-8")
    return raw


@pytest.mark.parametrize("ragged", [False, True], ids=["pyarrow", "pandas-fallback"])
def test_mimic_edge_cases_index_as_before(tmp_path: Path, ragged: bool) -> None:
    raw = write_edge_mirror(tmp_path / "raw", ragged)
    assert_same_index(raw, ["mimic"])
    _, rejects = build_index(raw, load_recipe("meit"), ["mimic"])
    reasons = set(rejects["reason"])
    assert {"bad_metadata", "duplicate_id", "unsafe_path", "duplicate_path"} <= reasons
    assert ("bad_csv_row" in reasons) == ragged


def test_a_latin1_byte_and_a_nul_byte_fall_back_to_pandas(tmp_path: Path) -> None:
    raw = write_edge_mirror(tmp_path / "raw", ragged=False)
    path = raw / "mimic-iv-ecg" / "machine_measurements.csv"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"Sinus rhythm", b"Sinus \xe4rhythm", 1))
    assert_same_index(raw, ["mimic"])
    path.write_bytes(data.replace(b"first", b"fi\x00rst", 1))
    assert_same_index(raw, ["mimic"])


# --- the column-wise helpers against their per-cell definitions -------------------------------

CSV_CASES = {
    "short row": "a,b,c\n1,2\n3,4,5\n",
    "blank lines": "a,b\n\n1,2\n\n3,4\n",
    "leading blank lines": "\n\na,b\n1,2\n",
    "whitespace line": "a,b\n  \n1,2\n",
    "quote inside": 'a,b\n1,x"y\n',
    "text after quote": 'a,b\n1,"x"y\n',
    "crlf": "a,b\r\n1,2\r\n",
    "cr only": "a,b\r1,2\r3,4",
    "newline in quotes": 'a,b\n1,"x\ny"\n',
    "bom": "\ufeffa,b\n1,2\n",
    "spaces": "a,b\n 1 , 2 \n",
    "empty quoted": 'a,b\n1,""\n',
    "empty header cell": "a,b,\n1,2,\n",
    "duplicate header": "a,a\n1,2\n",
    "only header": "a,b\n",
    "nul": "a,b\n1,x\x00y\n",
    "control character": "a,b\n1,x\x1cy\n",
    "extra field": "a,b\n1,2\n3,4,5\n",
    "no final newline": "a,b\n1,2",
}


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_table_reader_reads_what_pandas_reads(tmp_path: Path, name: str) -> None:
    path = tmp_path / "meta.csv"
    path.write_bytes(CSV_CASES[name].encode("utf-8"))
    frame = read_metadata_csv(path, ("a",), "-")
    table = read_metadata_table(path, ("a",), "-")
    assert table.column_names == list(frame.columns)
    expected = [[None if cell != cell else cell for cell in row] for row in frame.values.tolist()]
    assert [list(row.values()) for row in table.to_pylist()] == expected


def test_int_strings_is_to_int_string() -> None:
    cells = ["0", "7", "007", "15709.0", "1e3", " 12", "12 ", "4000x", "", "-3", "+4", "1_000",
             "123456789012345", "1234567890123456", "12345678901234567", "nan", "٣", None]
    assert list(int_strings(pa.array(cells, pa.string()))) == [
        None if cell is None else to_int_string(cell) for cell in cells]


def test_normalised_paths_are_normpath() -> None:
    paths = ["files/p1/x", "files//p1/x", "files/./x", "./x", "x/", "/x", "//x", "///x", "a/../b",
             "..", ".", "", "a\\b", "a/.b/c", "a/..b", ".a/b", "a/b./c"]
    expected = [posixpath.normpath(p.replace("\\", "/")) for p in paths]
    assert _normalised_paths(pd.Series(paths)).tolist() == expected
    mixed = pd.Series(["a//b", 3, None])
    assert _normalised_paths(mixed).tolist() == [posixpath.normpath(str(p)) for p in mixed]


def test_sorting_by_id_is_pandas_stable_sort() -> None:
    ids = ["mimic/2", "ptbxl/00010", "mimic/10", "é", "z", "\U0001f600", "a", "mimic/2", "Z", ""]
    frame = pd.DataFrame({"id": ids, "n": range(len(ids))})
    expected = frame.sort_values("id", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(_sorted_by_id(frame), expected)


@pytest.mark.parametrize("values", [
    [{"b": 1.5, "a": None}, None, {"b": -0.0, "a": 0.0}, "x", {"b": 2.0, "a": 1e300}],
    [{"a": 1.0}, {"a": 1}],  # an int is written "1"
    [{"a": True}, {"a": 1.0}],
    [{"a": math.nan}, {"a": None}, {"a": math.inf}],
    [{"a": 1.0, "b": 2.0}, {"b": 2.0, "a": 1.0}],  # another key order
    [{"a": 1.0}, {"b": 1.0}],
    [{}, {}],
    [{"é": 1.0, "z": [1, 2]}],
    [None, float("nan"), ""],
    [{1: 1.0, 2: None}, {1: 2.0, 2: 3.0}],  # keys of another type
    [{"a": 1.0, "b": None}, {"a": 2.0, "b": "x"}],
])
def test_measurements_json_is_json_dumps(values: list) -> None:
    values = [*values, *values]  # twice, so that each case is a column of several dicts
    expected = [json.dumps(v, sort_keys=True) if isinstance(v, dict) else "" for v in values]
    assert list(measurements_json(pd.Series(values, dtype=object))) == expected


# --- real PTB-XL -------------------------------------------------------------------------------

def test_real_ptbxl_excerpt_indexes_as_before(real_ptbxl_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "raw" / "ptb-xl"
    root.mkdir(parents=True)
    (root / "ptbxl_database.csv").symlink_to(real_ptbxl_dir / "ptbxl_database_excerpt.csv")
    shutil.copy(real_ptbxl_dir / "scp_statements.csv", root / "scp_statements.csv")
    for records in ("hr", "lr"):
        old, old_rejects = ptbxl_read_index(root, records)
        new, new_rejects = ptbxl_read_index_now(root, records)
        assert len(new) == 5123
        assert_same_frames(old, new)
        assert_same_frames(old_rejects, new_rejects)
    assert_same_index(tmp_path / "raw", ["ptbxl"])


def test_measurements_json_of_a_dict_subclass_adds_no_key() -> None:
    values = [defaultdict(float, a=1.0, b=2.0), {"a": 1.0, "c": 2.0}]
    texts = measurements_json(pd.Series(values, dtype=object))
    assert list(texts) == ['{"a": 1.0, "b": 2.0}', '{"a": 1.0, "c": 2.0}']
    assert dict(values[0]) == {"a": 1.0, "b": 2.0}
