"""The bad-input corpus, generated (never hand-edited binaries) from a copy of the sample mirror.

`RECORD_FAULTS` damage single records: the build must go on, and each damaged record must end up
rejected with a named reason (or, for repairable text, published clean). `CONFIG_FAULTS` damage
the configuration or a whole metadata file: the build must stop with a one-line error naming the
file and the fix, before writing anything. `docs/robustness.md` lists every case by name (a test
checks that).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PTBXL_CSV = "ptb-xl/ptbxl_database.csv"
MIMIC_RECORDS = "mimic-iv-ecg/record_list.csv"
MIMIC_MEASUREMENTS = "mimic-iv-ecg/machine_measurements.csv"
CLEAN_ENGLISH = "sinus rhythm. normal ecg."


def study(index: int) -> int:
    """The MIMIC study_id of the sample mirror's index-th record (see ecg_instruct.sample.mirror)."""
    return 40000000 + index * 1013


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def ptbxl_row(rows: list[dict[str, str]], ecg_id: int) -> dict[str, str]:
    return next(row for row in rows if row["ecg_id"] == str(ecg_id))


def edit_header(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text(encoding="ascii").splitlines()
    path.write_text("\n".join(edit(lines)) + "\n", encoding="ascii")


@dataclass(frozen=True)
class RecordFault:
    name: str
    record_id: str
    expect: frozenset[str]  # reject reasons accepted; empty: published (text repaired)
    what: str


def _fault(name: str, record_id: str, expect: set[str] | str, what: str) -> RecordFault:
    return RecordFault(name, record_id, frozenset({expect} if isinstance(expect, str) else expect),
                       what)


def make_record_faults(raw: Path) -> list[RecordFault]:
    """Damage records of a (copied) 20 + 20 sample mirror in place; what each should yield.

    Signal faults go to records with a plain English report so that no earlier stage (a
    translation below coverage) can hide them.
    """
    faults: list[RecordFault] = []
    columns, rows = read_rows(raw / PTBXL_CSV)
    lr = raw / "ptb-xl" / "records100" / "00000"

    def signal_fault(ecg_id: int, name: str, expect, what: str, damage) -> None:
        ptbxl_row(rows, ecg_id)["report"] = CLEAN_ENGLISH
        damage(lr / f"{ecg_id:05d}_lr")
        faults.append(_fault(name, f"ptbxl/{ecg_id:05d}", expect, what))

    def truncate(stem: Path) -> None:
        dat = stem.with_suffix(".dat")
        dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 2])

    def header_samples(n: int):
        def edit(stem: Path) -> None:
            def first(lines: list[str]) -> list[str]:
                name, n_sig, fs, _ = lines[0].split()
                return [f"{name} {n_sig} {fs} {n}", *lines[1:]]
            edit_header(stem.with_suffix(".hea"), first)
        return edit

    def unknown_format(stem: Path) -> None:
        edit_header(stem.with_suffix(".hea"), lambda lines: [lines[0]] + [
            line.replace(".dat 16 ", ".dat 999 ", 1) for line in lines[1:]])

    def garbage_header(stem: Path) -> None:
        stem.with_suffix(".hea").write_bytes(b"\xff\xfe\x00garbage \x00\x01\n\x80\x81 12 x\n")

    def no_header(stem: Path) -> None:
        stem.with_suffix(".hea").unlink()

    def dat_is_folder(stem: Path) -> None:
        stem.with_suffix(".dat").unlink()
        stem.with_suffix(".dat").mkdir()

    def absurd_fs(stem: Path) -> None:
        edit_header(stem.with_suffix(".hea"), lambda lines: [
            " ".join([*lines[0].split()[:2], "1e12", lines[0].split()[3]]), *lines[1:]])

    def dc_offset(stem: Path) -> None:  # the 4th lead (aVR) + 30 mV: its baseline moved
        def edit(lines: list[str]) -> list[str]:
            gain = float(lines[4].split()[2].split("(")[0])
            lines[4] = lines[4].replace("(0)/mV", f"({-round(30 * gain)})/mV")
            return lines
        edit_header(stem.with_suffix(".hea"), edit)

    def identical_leads(stem: Path) -> None:  # every lead a copy of II, checksums kept right
        dat = stem.with_suffix(".dat")
        samples = np.fromfile(dat, dtype="<i2").reshape(-1, 12)
        samples[:] = samples[:, 1:2]
        samples.tofile(dat)

        def edit(lines: list[str]) -> list[str]:
            lead_ii = lines[2].split()
            return [lines[0], *(" ".join([*line.split()[:5], *lead_ii[5:7], *line.split()[7:]])
                                for line in lines[1:])]
        edit_header(stem.with_suffix(".hea"), edit)

    signal_fault(1, "truncated .dat", "truncated_dat", "`.dat` cut to half its size", truncate)
    signal_fault(2, "header sample count > file", "truncated_dat",
                 "header says 1200 samples, the `.dat` holds 1000", header_samples(1200))
    signal_fault(3, "header sample count < file", "header_mismatch",
                 "header says 800 samples, the `.dat` holds 1000", header_samples(800))
    signal_fault(4, "unknown WFDB format", "unsupported_format",
                 "signal format 999 in the header", unknown_format)
    signal_fault(19, "header is binary garbage", "bad_header",
                 "`.hea` replaced by non-text bytes", garbage_header)
    signal_fault(20, "header file missing", "missing_file", "`.hea` deleted, `.dat` kept",
                 no_header)
    signal_fault(18, "12 identical leads", "identical_leads",
                 "every lead a sample-for-sample copy of II (checksums consistent)",
                 identical_leads)

    ptbxl_row(rows, 7)["report"] = ""
    faults.append(_fault("empty report", "ptbxl/00007", "empty_report", "empty `report` cell"))
    ptbxl_row(rows, 8)["report"] = "\x01\x02 \t\x0b\x7f\u200b"
    faults.append(_fault("report of control characters only", "ptbxl/00008", "empty_report",
                         "only C0/C1 controls, tabs and zero-width spaces"))
    ptbxl_row(rows, 9)["report"] = "sinus\x07 rhythm.\x1b normal\u200b ecg.\x00"
    faults.append(_fault("report with control characters", "ptbxl/00009", set(),
                         "BEL, ESC, NUL and a zero-width space inside the text"))
    duplicate = dict(ptbxl_row(rows, 11))
    duplicate["report"] = "a different report for the same ecg_id"
    rows.append(duplicate)
    faults.append(_fault("duplicate record id", f"ptbxl/00011#line-{len(rows) + 1}",
                         "duplicate_id", "a second row with ecg_id 11 (the first is kept)"))
    ptbxl_row(rows, 9)["age"] = "-5"
    faults.append(_fault("age -5", "ptbxl/00009", set(), "published with `age` missing (None)"))
    ptbxl_row(rows, 11)["age"] = "150"
    faults.append(_fault("age 150", "ptbxl/00011", set(), "published with `age` missing (None)"))
    ptbxl_row(rows, 12)["filename_lr"] = "records100/00000/99999_lr"
    faults.append(_fault("metadata row pointing at missing files", "ptbxl/00012", "missing_file",
                         "`filename_lr` names a record that does not exist"))
    ptbxl_row(rows, 13)["filename_lr"] = "../../../../etc/passwd"
    faults.append(_fault("path escaping the raw folder", "ptbxl/00013", "unsafe_path",
                         "`filename_lr` is `../../../../etc/passwd`"))
    ptbxl_row(rows, 15)["scp_codes"] = "__import__('os').system('touch PWNED')"
    faults.append(_fault("code in scp_codes", "ptbxl/00015", "bad_scp_codes",
                         "`scp_codes` is a Python expression (parsed as a literal, never run)"))
    ptbxl_row(rows, 16)["strat_fold"] = "eleven"
    faults.append(_fault("bad strat_fold", "ptbxl/00016", "bad_strat_fold",
                         "`strat_fold` is not 1..10"))
    bad_id = ptbxl_row(rows, 17)
    bad_id["ecg_id"] = "17x"
    faults.append(_fault("non-integer record id", f"ptbxl/row-{rows.index(bad_id) + 2}",
                         "bad_metadata", "`ecg_id` is `17x`"))
    columns = [*columns, "extra_column"]
    for row in rows:
        row["extra_column"] = "ignored"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    # One report in Latin-1, as a mis-exported CSV would have it.
    body = _replace_report_bytes(text.getvalue().encode("utf-8"), ecg_id=5,
                                 raw=b"sinusrhythmus \xe4nderung")
    (raw / PTBXL_CSV).write_bytes(body)
    faults.append(_fault("non-UTF-8 report", "ptbxl/00005", "bad_encoding",
                         "the `report` cell holds Latin-1 bytes"))

    # MIMIC-IV-ECG
    columns, records = read_rows(raw / MIMIC_RECORDS)
    m_columns, measurements = read_rows(raw / MIMIC_MEASUREMENTS)
    by_study = {row["study_id"]: row for row in records}
    by_study[str(study(1))]["study_id"] = "4000x"
    faults.append(_fault("non-integer study_id", "mimic/row-3", "bad_metadata",
                         "`study_id` is `4000x` in record_list.csv"))
    records.append(dict(by_study[str(study(2))]))
    faults.append(_fault("duplicate study_id", f"mimic/{study(2)}#line-{len(records) + 1}",
                         "duplicate_id", "a study listed twice in record_list.csv"))
    by_study[str(study(3))]["path"] = "/etc/passwd"
    faults.append(_fault("absolute path in record_list", f"mimic/{study(3)}", "unsafe_path",
                         "`path` is `/etc/passwd`"))
    # (the sample mirror's own defects are ptbxl 6, 10, 14 and studies 4, 7, 15: not used here)
    for index, name, expect, what, damage in (
        (10, ".dat is a folder", "missing_file", "a directory in place of the `.dat`",
         dat_is_folder),
        (11, "sampling frequency 1e12", "bad_header", "header says `fs` = 1e12 Hz", absurd_fs),
        (12, "lead with a 30 mV DC offset", "dc_offset",
         "aVR's baseline moved so that the lead sits 30 mV above zero", dc_offset),
    ):
        damage(raw / "mimic-iv-ecg" / by_study[str(study(index))]["path"])
        faults.append(_fault(name, f"mimic/{study(index)}", expect, what))
    by_study[str(study(6))]["path"] = by_study[str(study(0))]["path"]
    faults.append(_fault("two ids for the same files", f"mimic/{study(6)}", "duplicate_path",
                         f"study {study(6)}'s `path` is study {study(0)}'s (the first is kept)"))
    for row in measurements:
        if row["study_id"] == str(study(13)):
            row["report_0"] = "Sinus rhythm. " * 200_000
    faults.append(_fault("2.8 MB report", f"mimic/{study(13)}", "report_too_long",
                         "`report_0` holds 2.8 million characters"))
    measurements[:] = [row for row in measurements if row["study_id"] != str(study(5))]
    faults.append(_fault("study without measurements row", f"mimic/{study(5)}", "empty_report",
                         "no machine_measurements.csv row, so no report"))
    write_rows(raw / MIMIC_RECORDS, columns, records)
    dropped = [c for c in m_columns if c not in ("p_axis", "t_axis")] + ["extra_column"]
    for row in measurements:
        row.pop("p_axis"), row.pop("t_axis")
        row["extra_column"] = "ignored"
    write_rows(raw / MIMIC_MEASUREMENTS, dropped, measurements)
    _add_a_field(raw / MIMIC_RECORDS, study(8))
    faults.append(_fault("CSV row with an extra field", f"mimic/{study(8)}", "bad_csv_row",
                         "one `record_list.csv` row has a cell more than the header"))
    _add_a_field(raw / MIMIC_MEASUREMENTS, study(9))
    faults.append(_fault("measurements row with an extra field", f"mimic/{study(9)}",
                         "bad_csv_row", "one `machine_measurements.csv` row has a cell more"))
    return faults


def _add_a_field(path: Path, study_id: int) -> None:
    """Append an unquoted cell to the row of `study_id` (as a stray comma would)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    number = next(i for i, line in enumerate(lines) if f",{study_id}," in line)
    lines[number] += ",surplus"
    path.write_text("\n".join(lines), encoding="utf-8")


def _replace_report_bytes(data: bytes, ecg_id: int, raw: bytes) -> bytes:
    lines = data.split(b"\n")
    header = lines[0].decode().split(",")
    column = header.index("report")
    for number, line in enumerate(lines[1:], start=1):
        cells = next(csv.reader([line.decode("utf-8")])) if line else []
        if cells and cells[0] == str(ecg_id):
            cells[column] = "@@REPORT@@"
            out = io.StringIO()
            csv.writer(out, lineterminator="").writerow(cells)
            lines[number] = out.getvalue().encode("utf-8").replace(b"@@REPORT@@", raw)
            return b"\n".join(lines)
    raise AssertionError(f"ecg_id {ecg_id} not found")


_FOLDS = {"train": [1, 2, 3, 4, 5, 6, 7, 8], "validation": [9], "test": [10]}
#: Recipe values that type-check but cannot work: `quick_recipe` changes (`a__b=value`).
RECIPE_VALUE_FAULTS: dict[str, dict] = {
    "recipe rows_per_file 0": {"rows_per_file": 0},
    "recipe row_group_rows 0": {"publish__row_group_rows": 0},
    "recipe without sources": {"sources__enabled": []},
    "recipe source listed twice": {"sources__enabled": ["ptbxl", "ptbxl"]},
    "recipe fold in two splits": {"split__ptbxl_folds": {**_FOLDS, "train": list(range(1, 10))}},
    "recipe fold in no split": {"split__ptbxl_folds": {**_FOLDS, "test": []}},
    "recipe fold out of range": {"split__ptbxl_folds": {**_FOLDS, "test": [10, 11]}},
    "recipe unknown split name": {"split__ptbxl_folds": {"train": _FOLDS["train"], "valid": [9],
                                                         "test": [10]}},
    "recipe negative shard_size": {"shard_size": -4},
    "recipe fs 0": {"signals__fs": 0},
    "recipe fs absurd": {"signals__fs": 5_000_000},
    "recipe under one sample": {"signals__fs": 1, "signals__duration_s": 0.1},
    "recipe min_coverage as a percentage": {"reports__min_coverage": 80},
}


@dataclass(frozen=True)
class ConfigFault:
    name: str
    names: str  # a fragment of the path the error must name
    what: str


CONFIG_FAULTS = (
    ConfigFault("CSV column renamed", "ptbxl_database.csv", "`scp_codes` renamed `scp_code`"),
    ConfigFault("CSV column missing", "record_list.csv", "no `path` column"),
    ConfigFault("CSV without report columns", "machine_measurements.csv",
                "no `report_0..17` columns"),
    ConfigFault("metadata CSV missing", "record_list.csv", "file deleted"),
    ConfigFault("metadata CSV empty", "ptbxl_database.csv", "zero bytes"),
    ConfigFault("recipe unknown key", "recipe.yaml", "`shard_sise: 4`"),
    ConfigFault("recipe wrong type", "recipe.yaml", "`signals.fs: fast`"),
    ConfigFault("recipe bad value", "recipe.yaml", "`signals.dtype: float64`"),
    ConfigFault("recipe not YAML", "recipe.yaml", "unbalanced brackets"),
    ConfigFault("recipe not a mapping", "recipe.yaml", "a YAML list"),
    ConfigFault("recipe not UTF-8", "recipe.yaml", "Latin-1 bytes"),
    ConfigFault("recipe unknown source", "recipe.yaml", "`sources.enabled: [ptbxl, ecgdb]`"),
    *(ConfigFault(name, "recipe.yaml", what) for name, what in (
        ("recipe rows_per_file 0", "`publish.rows_per_file: 0`"),
        ("recipe row_group_rows 0", "`publish.row_group_rows: 0`"),
        ("recipe without sources", "`sources.enabled: []`"),
        ("recipe source listed twice", "`sources.enabled: [ptbxl, ptbxl]`"),
        ("recipe fold in two splits", "fold 9 in train and in validation"),
        ("recipe fold in no split", "`test: []`, so fold 10 has no split"),
        ("recipe fold out of range", "`test: [10, 11]` (PTB-XL has folds 1..10)"),
        ("recipe unknown split name", "`ptbxl_folds: {train, valid, test}`"),
        ("recipe negative shard_size", "`shard_size: -4`"),
        ("recipe fs 0", "`signals.fs: 0`"),
        ("recipe fs absurd", "`signals.fs: 5000000`"),
        ("recipe under one sample", "`fs: 1, duration_s: 0.1`"),
        ("recipe min_coverage as a percentage", "`reports.min_coverage: 80`"),
    )),
    ConfigFault("template undefined variable", "typo.j2", "`{{ ecg }} {{ patient_age }}`"),
    ConfigFault("template fails on a missing field", "arith.j2",
                "`{{ age + 1 }}` (age is missing for some records)"),
    ConfigFault("template without the ECG placeholder", "noecg.j2", "no `{{ ecg }}`"),
    ConfigFault("template escaping the sandbox", "escape.j2",
                "`{{ ''.__class__.__mro__[1].__subclasses__() }}`"),
    ConfigFault("template syntax error", "syntax.j2", "`{% if %}`"),
    ConfigFault("template looping for minutes", "loop.j2",
                "two nested `range(100000)` loops (10^10 steps)"),
    ConfigFault("template emitting megabytes", "long.j2",
                "`{% for i in range(100000) %}{{ report }}{% endfor %}` (2.5 MB per prompt)"),
    ConfigFault("template multiplying a string to 50 MB", "times.j2", "`{{ 'x' * 50000000 }}`"),
    ConfigFault("template without front matter", "nofront.j2", "no `{#--- ... ---#}` block"),
    ConfigFault("template not UTF-8", "latin.j2", "Latin-1 bytes"),
    ConfigFault("--out is a folder of other files", "notes", "`--out` holds a user's files"),
    ConfigFault("--out inside the raw mirror", "ptb-xl", "`--out RAW/ptb-xl/out`"),
)
