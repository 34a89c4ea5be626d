"""Record-level bad input: the build goes on, every damaged record is rejected with a named reason
(or published with its text repaired), and every record is accounted for."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest
from buildkit import copy_mirror, quick_recipe, run_build, sample_mirror

from badinput.corpus import CLEAN_ENGLISH, make_record_faults

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def damaged_build(tmp_path_factory):
    base = tmp_path_factory.mktemp("record-faults")
    raw = copy_mirror(sample_mirror(tmp_path_factory), base / "raw")
    faults = make_record_faults(raw)
    out = base / "out" / "meit"
    summary = run_build(raw, out, quick_recipe(base), workers=2)
    rejects = pq.read_table(out / "rejects.parquet").to_pandas()
    published, ages = {}, {}
    for path in sorted([*(out / "data" / "ptbxl").glob("*.parquet"),
                        *(out / "data" / "mimic").glob("*.parquet")]):
        for row in pq.read_table(path, columns=["id", "report", "age"]).to_pylist():
            published[row["id"]] = row["report"]
            ages[row["id"]] = row["age"]
    summary.ages = ages
    return base, faults, summary, rejects, published


def test_every_damaged_record_gets_its_named_reason(damaged_build):
    _, faults, _, rejects, published = damaged_build
    reasons = dict(zip(rejects["id"], rejects["reason"], strict=True))
    for fault in faults:
        if fault.expect:
            assert fault.record_id in reasons, f"{fault.name}: {fault.record_id} not rejected"
            assert reasons[fault.record_id] in fault.expect, (fault.name, reasons[fault.record_id])
            assert fault.record_id not in published


def test_rejects_are_one_line_with_a_detail(damaged_build):
    base, _, _, rejects, _ = damaged_build
    assert not rejects["detail"].str.contains(str(base), regex=False).any()  # no machine paths
    assert (rejects["reason"].str.fullmatch(r"[a-z][a-z0-9_]*")).all()
    assert (rejects["stage"].isin(["index", "reports", "instruct", "signals"])).all()
    assert not rejects["detail"].str.contains("\n").any()
    assert (rejects["detail"].str.len() > 0).all()


def test_control_characters_are_removed_and_the_record_published(damaged_build):
    _, _, _, _, published = damaged_build
    # BEL/ESC/NUL/ZWSP gone, spaces collapsed, then styled like every English report
    assert published["ptbxl/00009"] == "Sinus rhythm. Normal ECG."
    assert published["ptbxl/00009"].lower() == CLEAN_ENGLISH


def test_impossible_ages_are_published_as_missing(damaged_build):
    _, _, summary, _, published = damaged_build
    assert "ptbxl/00009" in published and summary.ages["ptbxl/00009"] is None  # age -5
    assert "ptbxl/00011" in published and summary.ages["ptbxl/00011"] is None  # age 150


def test_rejected_odd_inputs_say_what_is_wrong(damaged_build):
    _, _, _, rejects, _ = damaged_build
    from badinput.corpus import study

    detail = dict(zip(rejects["id"], rejects["detail"], strict=True))
    assert f"{study(10)}.dat is a directory" in detail[f"mimic/{study(10)}"]
    assert "sampling frequency 1e+12 Hz" in detail[f"mimic/{study(11)}"]
    assert re.fullmatch(r"aVR: mean (29|30)\.\d mV away from zero \(> 10 mV\)",
                        detail[f"mimic/{study(12)}"])
    assert detail["ptbxl/00018"] == "II is a sample-for-sample copy of I"
    assert "report has 2,800,0" in detail[f"mimic/{study(13)}"]
    assert f"uses the files of mimic/{study(0)}" in detail[f"mimic/{study(6)}"]
    assert "machine_measurements.csv: CSV line 10 has 33 fields, the header 32" in detail[f"mimic/{study(9)}"]


def test_duplicates_keep_the_first_row(damaged_build):
    _, _, _, _, published = damaged_build
    assert "ptbxl/00011" in published
    assert published["ptbxl/00011"] != "a different report for the same ecg_id"


def test_scp_codes_are_never_evaluated(damaged_build):
    base, _, _, _, _ = damaged_build
    assert not list(base.rglob("PWNED")) and not (base.parent / "PWNED").exists()


def test_every_record_in_is_published_or_rejected(damaged_build):
    _, _, summary, rejects, published = damaged_build
    totals = summary.totals
    assert totals["input"] == totals["published"] + totals["rejected"]
    assert totals["published"] == len(published)
    assert totals["rejected"] == len(rejects)
    assert not set(published) & set(rejects["id"])
    stages = summary.stages
    assert list(stages["stage"].unique()) == ["index", "reports", "instruct", "signals", "publish"]
    assert (stages["input"] == stages["passed"] + stages["rejected"]).all()
    for source, ledger in stages.groupby("source"):
        ledger = ledger.set_index("stage")
        for before, after in zip(ledger.index[:-1], ledger.index[1:], strict=True):
            assert ledger.loc[after, "input"] == ledger.loc[before, "passed"], (source, after)
        assert ledger.loc["publish", "passed"] == sum(i.startswith(source) for i in published)
