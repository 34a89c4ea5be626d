"""`length_policy: window` (issue 18): long records as consecutive recipe-length windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from ecg_instruct.build.recipe import recipe_path
from ecg_instruct.index.windows import expand_windows, split_window, window_count
from tests.duplicate_mirror import shared_simulator


def test_window_arithmetic_and_paths():
    assert window_count(12500, 500, 10.0) == 2 and window_count(9000, 257, 10.0) == 3
    assert window_count(0, 500, 10.0) == 0
    index = pd.DataFrame([
        {"id": "cinc2021/I0001", "source": "cinc2021", "path": "training/x/g1/I0001",
         "fs": 257, "n_samples": 7800, "split": "test"},
        {"id": "ptbxl/00001", "source": "ptbxl", "path": "records500/00000/00001_hr",
         "fs": 500, "n_samples": 5000, "split": "train"},
        {"id": "code15/7", "source": "code15", "path": "exams_part0.hdf5#3",
         "fs": 400, "n_samples": 4096, "split": "train"}])
    out = expand_windows(index, 10.0)
    assert out["id"].tolist() == ["cinc2021/I0001/w000", "cinc2021/I0001/w001",
                                  "cinc2021/I0001/w002", "ptbxl/00001", "code15/7"]
    assert set(out["split"][:3]) == {"test"}
    assert split_window(out["path"][2]) == ("training/x/g1/I0001", 2)
    assert split_window("exams_part0.hdf5#3") == ("exams_part0.hdf5#3", None)


@pytest.fixture(scope="module")
def long_records(tmp_path_factory):
    """Two 500 Hz records (25 s and 8 s) and one 257 Hz x 31 s, from the sample simulator."""
    from scipy.signal import resample_poly

    from ecg_instruct.sources.cinc2021_layout import write_challenge_record

    raw = tmp_path_factory.mktemp("windows")
    simulator, rng = shared_simulator(), np.random.default_rng(0)
    mv = np.concatenate([simulator.record(70, rng) for _ in range(4)], axis=1)  # 40 s, 500 Hz
    training = raw / "challenge-2021" / "training"
    counts = np.rint(mv * 1000).astype(np.int16)
    write_challenge_record(training / "georgia" / "g1", "E0001", counts[:, :12500], 500,
                           dx=["426783006"])
    write_challenge_record(training / "georgia" / "g1", "E0002", counts[:, :4000], 500,
                           dx=["426783006"])
    incart = np.rint(resample_poly(mv[:, :15500], 257, 500, axis=1) * 1000).astype(np.int16)
    write_challenge_record(training / "st_petersburg_incart" / "g1", "I0001", incart, 257,
                           dx=["426783006"])
    return raw


def test_windows_are_published_as_rows_with_the_record_samples(long_records, tmp_path):
    import wfdb

    from ecg_instruct.build.pipeline import BuildOptions, build
    from ecg_instruct.build.recipe import load_recipe

    data = yaml.safe_load((recipe_path("meit")).read_text(encoding="utf-8"))
    data["sources"]["enabled"] = ["cinc2021"]
    data["signals"]["length_policy"] = "window"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data), encoding="utf-8")
    summary = build(BuildOptions(raw_dir=long_records, out=tmp_path / "out",
                                 recipe=load_recipe(recipe), sources=["cinc2021"], workers=1,
                                 progress=False))
    # E0001: 2 windows; I0001 (31 s): 3; E0002 (8 s): one row, rejected as too short
    assert summary.totals["input"] == 6 == summary.totals["published"] + 1
    rows = pd.concat([pd.read_parquet(f) for f in
                      sorted((tmp_path / "out" / "data" / "cinc2021").glob("*.parquet"))])
    rows = rows.set_index("id")
    assert sorted(rows.index) == ["cinc2021/E0001/w000", "cinc2021/E0001/w001",
                                  "cinc2021/I0001/w000", "cinc2021/I0001/w001",
                                  "cinc2021/I0001/w002"]
    samples, _ = wfdb.rdsamp(str(long_records / "challenge-2021" / "training" / "georgia" / "g1"
                                 / "E0001"))
    for k in (0, 1):
        got = np.stack(rows.loc[f"cinc2021/E0001/w{k:03d}", "signal"])
        np.testing.assert_array_equal(got, samples[k * 5000:(k + 1) * 5000].T.astype(np.float32))
    assert {np.stack(s).shape for s in rows["signal"]} == {(12, 5000)}
    rejects = pd.read_parquet(tmp_path / "out" / "rejects.parquet")
    assert rejects[["id", "reason"]].values.tolist() == [["cinc2021/E0002", "wrong_length"]]
