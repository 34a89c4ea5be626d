"""Cross-source duplicates (issue 18): the same ECG in PTB-XL and its Challenge 2021 copy is
published once, under PTB-XL's id; the copy is a `duplicate` reject naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ecg_instruct.build.recipe import recipe_path
from ecg_instruct.publish.duplicates import find_duplicates
from tests.buildkit import tree_digest
from tests.duplicate_mirror import ECG_IDS, write_duplicate_mirror


def test_earlier_priority_source_wins_whatever_the_order():
    entries = [("cinc2021/HR06000", "a"), ("ptbxl/06000", "a"), ("cinc2021/E0001", "b"),
               ("code15/7", "c"), ("cinc2021/HR06001", "c"), ("mimic/1", "")]
    for order in (entries, entries[::-1]):
        found = find_duplicates(order)
        assert found.kept_for == {"cinc2021/HR06000": "ptbxl/06000",
                                  "cinc2021/HR06001": "code15/7"}
    assert found.pair_counts() == [
        {"kept_source": "code15", "rejected_source": "cinc2021", "count": 1},
        {"kept_source": "ptbxl", "rejected_source": "cinc2021", "count": 1}]
    rejects = found.rejects().to_pandas()
    assert rejects["reason"].tolist() == ["duplicate", "duplicate"]
    assert "ptbxl/06000" in rejects.set_index("id").loc["cinc2021/HR06000", "detail"]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    return write_duplicate_mirror(tmp_path_factory.mktemp("dup-mirror"))


def _recipe(folder: Path, sources: list[str]) -> Path:
    data = yaml.safe_load((recipe_path("meit")).read_text(encoding="utf-8"))
    data["sources"]["enabled"] = sources
    path = folder / "recipe.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _build(raw: Path, out: Path, sources: list[str], workers: int = 1):
    from ecg_instruct.build.pipeline import BuildOptions, build
    from ecg_instruct.build.recipe import load_recipe

    return build(BuildOptions(raw_dir=raw, out=out, recipe=load_recipe(_recipe(out.parent, sources)),
                              sources=sources, workers=workers, progress=False))


def _published(out: Path, source: str) -> pd.DataFrame:
    files = sorted((out / "data" / source).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def test_ptbxl_and_its_challenge_copy_publish_each_ecg_once(mirror, tmp_path):
    summary = _build(mirror, tmp_path / "both" / "out", ["ptbxl", "cinc2021"], workers=2)
    out = tmp_path / "both" / "out"
    assert sorted(_published(out, "ptbxl")["id"]) == [f"ptbxl/{i:05d}" for i in ECG_IDS]
    assert not (out / "data" / "cinc2021").exists()
    rejects = pd.read_parquet(out / "rejects.parquet")
    assert len(rejects) == 10
    assert set(rejects["reason"]) == {"duplicate"} and set(rejects["stage"]) == {"signals"}
    for ecg_id in ECG_IDS:
        detail = rejects.set_index("id").loc[f"cinc2021/HR{ecg_id:05d}", "detail"]
        assert f"ptbxl/{ecg_id:05d}" in detail
    totals = summary.totals
    assert totals["input"] == 20 == totals["published"] + totals["rejected"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| ptbxl | cinc2021 | 10 |" in card
    # the same bytes with one worker: which copy is kept never depends on shard or worker order
    _build(mirror, tmp_path / "one" / "out", ["ptbxl", "cinc2021"], workers=1)
    assert tree_digest(tmp_path / "one" / "out") == tree_digest(out)


def test_challenge_copy_alone_publishes_english_label_reports_and_the_samples(mirror, tmp_path):
    import wfdb

    _build(mirror, tmp_path / "alone" / "out", ["cinc2021"])
    rows = _published(tmp_path / "alone" / "out", "cinc2021").set_index("id")
    assert sorted(rows.index) == [f"cinc2021/HR{i:05d}" for i in ECG_IDS]
    folds = {f"cinc2021/HR{i:05d}": k + 1 for k, i in enumerate(ECG_IDS)}
    expected_split = {i: "train" if f <= 8 else "validation" if f == 9 else "test"
                      for i, f in folds.items()}
    assert rows["split"].to_dict() == expected_split  # PTB-XL's strat_fold, not a hash
    for record_id, row in rows.iterrows():
        assert row["report"] == "Sinus rhythm." and row["report_language"] == "en"
        assert list(row["leads"]) == ["I", "II", "III", "aVR", "aVL", "aVF",
                                      "V1", "V2", "V3", "V4", "V5", "V6"]
        ecg_id = record_id.split("HR")[1]
        samples, fields = wfdb.rdsamp(str(mirror / "challenge-2021" / "training" / "ptb-xl" / "g7"
                                          / f"HR{ecg_id}"))
        assert fields["sig_name"] == list(row["leads"])
        signal = np.stack(row["signal"])
        np.testing.assert_array_equal(signal, samples.T.astype(np.float32))
