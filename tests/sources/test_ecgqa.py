"""The ECG-QA reader: chunked and single-file layouts, variants, malformed samples, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from questions.ecgqa_files import sample, write_part

from ecg_instruct.errors import UserError
from ecg_instruct.sources.ecgqa import (
    check_release,
    read_questions,
    sample_problem,
    variants_of,
)


def test_chunked_layout_reads_every_file_in_order(tmp_path: Path):
    samples = [sample(i, [i + 1], ["yes"]) for i in range(25)]
    write_part(tmp_path, "ptbxl", "template", "train", samples, chunk=10)
    assert sorted(p.name for p in (tmp_path / "ecg-qa/ecgqa/ptbxl/template/train").iterdir()) \
        == ["0.json", "10.json", "20.json"]
    rows = read_questions(tmp_path, ["ptbxl"], ["template"])
    assert [r["sample_id"] for r in rows] == list(range(25))
    assert rows[17]["id"] == "ecgqa/ptbxl/template/train/17"
    assert rows[17]["ecg_native"] == [18] and rows[17]["problem"] is None
    assert rows[17]["file"] == "ptbxl/template/train/10.json"


def test_chunks_are_read_in_numeric_order(tmp_path: Path):
    write_part(tmp_path, "ptbxl", "template", "test",
               [sample(i, [i + 1], ["no"]) for i in range(100_000, 100_002)])
    write_part(tmp_path, "ptbxl", "template", "test", [sample(i, [i + 1], ["no"])
                                                       for i in range(20_000, 20_002)])
    rows = read_questions(tmp_path, ["ptbxl"], ["template"])
    assert [r["sample_id"] for r in rows] == [20_000, 20_001, 100_000, 100_001]


def test_single_file_layout_and_both_editions(tmp_path: Path):
    write_part(tmp_path, "ptbxl", "template", "test", [sample(80000, [17229, 20344],
                                                             ["qrs duration", "rr interval"])],
               single=True)
    write_part(tmp_path, "mimic-iv-ecg", "template", "valid", [sample(3, [40689238], ["no"])])
    rows = read_questions(tmp_path, ["ptbxl", "mimic"], ["template"])
    assert [r["id"] for r in rows] == ["ecgqa/ptbxl/template/test/80000",
                                       "ecgqa/mimic-iv-ecg/template/valid/3"]
    assert [r["source"] for r in rows] == ["ptbxl", "mimic"]
    assert rows[0]["answer"] == ["qrs duration", "rr interval"]
    # an edition whose source is not built is not read
    assert [r["source"] for r in read_questions(tmp_path, ["mimic"], ["template"])] == ["mimic"]


def test_variant_setting(tmp_path: Path):
    for variant in ("template", "paraphrased"):
        write_part(tmp_path, "ptbxl", variant, "train", [sample(0, [1], ["yes"])])
    assert variants_of("both") == ("template", "paraphrased")
    assert [r["variant"] for r in read_questions(tmp_path, ["ptbxl"], variants_of("both"))] \
        == ["template", "paraphrased"]
    assert len(read_questions(tmp_path, ["ptbxl"], variants_of("paraphrased"))) == 1


@pytest.mark.parametrize(("changes", "expected"), [
    ({"ecg_id": []}, "names 0 ECGs"),
    ({"ecg_id": [0]}, "not a list of positive integers"),
    ({"ecg_id": [1, 2]}, "names 2 ECGs, expected 1"),
    ({"ecg_id": ["1"]}, "not a list of positive integers"),
    ({"answer": []}, "answer is []"),
    ({"answer": "yes"}, "answer is 'yes'"),
    ({"question_type": "single-guess"}, "unknown question_type"),
    ({"template_id": None}, "template_id is None"),
    ({"question": " "}, "question is ' '"),
    ({"attribute": "sinus rhythm"}, "attribute is 'sinus rhythm'"),
])
def test_malformed_samples_are_kept_with_their_problem(changes: dict, expected: str):
    assert expected in sample_problem({**sample(0, [1], ["yes"]), **changes})
    assert sample_problem(sample(0, [1], ["yes"])) is None
    assert "with itself" in sample_problem(sample(0, [5, 5], ["none"]))


def test_malformed_and_duplicate_ids_stay_unique(tmp_path: Path):
    broken = sample(0, [1], ["yes"])
    del broken["sample_id"]
    samples = [sample(0, [1], ["yes"]), sample(0, [2], ["no"]), broken, "not an object"]
    write_part(tmp_path, "ptbxl", "template", "train", samples)
    rows = read_questions(tmp_path, ["ptbxl"], ["template"])
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == 4
    assert [r["problem"] is None for r in rows] == [True, False, False, False]
    assert "appears twice" in rows[1]["problem"] and ids[1] == "ecgqa/ptbxl/template/train/0#0-1"
    assert ids[2] == "ecgqa/ptbxl/template/train/0#2"


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"), ('{"a": 1}', "expected a JSON list"),
])
def test_a_damaged_file_is_one_line_naming_it(tmp_path: Path, content: str, message: str):
    folder = tmp_path / "ecg-qa/ecgqa/ptbxl/template/train"
    folder.mkdir(parents=True)
    (folder / "0.json").write_text(content)
    with pytest.raises(UserError, match=message) as error:
        read_questions(tmp_path, ["ptbxl"], ["template"])
    assert "train/0.json" in str(error.value) and "\n" not in str(error.value)


def test_missing_release_is_named_before_any_work(tmp_path: Path):
    write_part(tmp_path, "ptbxl", "template", "train", [sample(0, [1], ["yes"])])
    check_release(tmp_path, ["ptbxl"], ["template"])
    with pytest.raises(UserError, match="paraphrased.*download ecgqa"):
        check_release(tmp_path, ["ptbxl"], ["paraphrased"])
    with pytest.raises(UserError, match="mimic-iv-ecg"):
        check_release(tmp_path, ["ptbxl", "mimic"], ["template"])
