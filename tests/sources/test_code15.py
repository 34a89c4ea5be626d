"""CODE-15% (issue 18): exams.csv + HDF5 parts in the release's structure, padding, patient split."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("h5py")

from ecg_instruct.build.recipe import recipe_path
from ecg_instruct.errors import RecordReject  # noqa: E402
from ecg_instruct.sample.code15 import padded_tracing, write_code15  # noqa: E402
from ecg_instruct.sources.code15 import read_index, strip_padding  # noqa: E402
from tests.duplicate_mirror import shared_simulator  # noqa: E402


def _signal(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.3, size=(12, n)).astype(np.float32)


@pytest.mark.parametrize("n", [2800, 4000])
def test_padding_is_stripped_to_the_recording(n):
    signal = _signal(n)
    signal[:, :5] = 0.0  # a recording may itself start at 0 mV on every lead
    signal[3, -40:] = 0.0
    stored = padded_tracing(signal)
    assert stored.shape == (4096, 12) and not stored[:48].any()
    np.testing.assert_array_equal(strip_padding(stored), signal)


def test_empty_or_misshapen_tracings_are_rejects():
    with pytest.raises(RecordReject, match="flat_lead"):
        strip_padding(np.zeros((4096, 12), np.float32))
    with pytest.raises(RecordReject, match="wrong_length"):
        strip_padding(np.ones((4000, 12), np.float32))


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("code15")
    write_code15(raw, n_exams=40, simulator=shared_simulator())
    return raw


def test_index_keeps_each_patient_in_one_split_and_rejects_missing_exams(mirror, tmp_path):
    from ecg_instruct.build.recipe import load_recipe
    from ecg_instruct.index.table import read_source

    root = mirror / "code-15"
    exams = pd.read_csv(root / "exams.csv", dtype=str, keep_default_na=False)
    extra = exams.iloc[:2].copy()
    extra["exam_id"] = ["999", "998"]
    extra["trace_file"] = ["exams_part0.hdf5", "exams_part9.hdf5"]
    raw = tmp_path / "raw"
    (raw / "code-15").mkdir(parents=True)
    for part in root.glob("*.hdf5"):
        (raw / "code-15" / part.name).symlink_to(part)
    pd.concat([exams, extra]).to_csv(raw / "code-15" / "exams.csv", index=False)

    recipe = load_recipe(recipe_path("meit"))
    recipe = dataclasses.replace(recipe, split=dataclasses.replace(
        recipe.split, mimic_fractions=[0.4, 0.3, 0.3]))  # 20 patients: every split gets some
    rows, rejects = read_source(raw, "code15", recipe)
    assert len(rows) == 40
    assert rows.groupby("patient_id")["split"].nunique().max() == 1
    assert set(rows["split"]) == {"train", "validation", "test"}
    assert rejects.set_index("id")["reason"].to_dict() == {"code15/999": "missing_file",
                                                           "code15/998": "missing_file"}
    again, _ = read_index(raw / "code-15")
    assert again["path"].tolist() == rows["path"].tolist()
    assert again["path"].iloc[0] == "exams_part0.hdf5#0"


def test_build_publishes_the_stripped_samples_with_label_reports(mirror, tmp_path):
    import h5py

    from ecg_instruct.build.pipeline import BuildOptions, build
    from ecg_instruct.build.recipe import load_recipe

    data = yaml.safe_load((recipe_path("meit")).read_text(encoding="utf-8"))
    data["sources"]["enabled"] = ["code15"]
    data["signals"].update(fs=400, duration_s=7, length_policy="crop")  # no resampling
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "out"
    summary = build(BuildOptions(raw_dir=mirror, out=out, recipe=load_recipe(recipe),
                                 sources=["code15"], workers=1, progress=False))
    assert summary.totals["input"] == 40 == summary.totals["published"]
    rows = pd.concat([pd.read_parquet(f) for f in sorted((out / "data" / "code15").glob("*.parquet"))])
    stored = {}
    for part in sorted((mirror / "code-15").glob("*.hdf5")):
        with h5py.File(part, "r") as handle:
            for exam, tracing in zip(handle["exam_id"][:], handle["tracings"][:], strict=True):
                stored[f"code15/{exam}"] = tracing
    for _, row in rows.iterrows():
        signal = np.stack(row["signal"])
        assert signal.shape == (12, 2800)
        expected = strip_padding(stored[row["id"]])[:, :2800].astype(np.float64)
        np.testing.assert_array_equal(signal, (np.rint(expected * 1000) * 0.001).astype(np.float32))
        assert row["report"].endswith(".") and row["report_language"] == "en"


def test_damaged_part_files_become_rejects_not_tracebacks(mirror, tmp_path):
    import h5py

    raw = tmp_path / "code-15"
    raw.mkdir()
    exams = pd.read_csv(mirror / "code-15" / "exams.csv", dtype=str, keep_default_na=False)
    exams.to_csv(raw / "exams.csv", index=False)
    (raw / "exams_part0.hdf5").write_bytes(b"not an HDF5 file")
    with h5py.File(raw / "exams_part1.hdf5", "w") as handle:
        handle.create_dataset("exam_id", data=np.arange(3))  # no tracings
    rows, rejects = read_index(raw)
    assert rows.empty and len(rejects) == 40
    assert set(rejects["reason"]) == {"unsupported_format"}
    assert rejects["detail"].str.contains("exams_part0.hdf5: h5py cannot read it").any()
