"""Challenge 2021 reader (issue 18): header comments -> index rows, PTB-XL part -> PTB-XL ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from ecg_instruct.build.recipe import recipe_path
from ecg_instruct.sources.cinc2021 import ptbxl_id_of, read_index
from ecg_instruct.sources.cinc2021_layout import write_challenge_record
from tests.duplicate_mirror import shared_simulator


def _counts(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(-900, 900, size=(12, n)).astype(np.int16)


def test_ptbxl_copies_map_to_ptbxl_ids():
    assert ptbxl_id_of("cinc2021/HR06000") == "ptbxl/06000"
    assert ptbxl_id_of("cinc2021/E06000") is None
    assert ptbxl_id_of("ptbxl/06000") is None


def test_index_reads_age_sex_and_codes_from_header_comments(tmp_path):
    root = tmp_path / "challenge-2021"
    write_challenge_record(root / "training" / "georgia" / "g1", "E00001", _counts(5000), 500,
                           age=59, sex="Female", dx=["164934002", "426783006"])
    write_challenge_record(root / "training" / "st_petersburg_incart" / "g1", "I0001",
                           _counts(2570), 257, sex="Male", dx=["55827005"])
    (root / "training" / "ptb" / "g1").mkdir(parents=True)
    (root / "training" / "ptb" / "g1" / "S0001.hea").write_text("S0001 twelve 1000\n")
    rows, rejects = read_index(root)
    by_id = rows.set_index("id")
    assert by_id.loc["cinc2021/E00001", ["age", "sex", "fs", "n_samples"]].tolist() == \
        [59.0, "female", 500, 5000]
    assert by_id.loc["cinc2021/E00001", "labels"] == ["164934002", "426783006"]
    assert by_id.loc["cinc2021/E00001", "report_raw"] == "Dx: 164934002,426783006"
    assert by_id.loc["cinc2021/I0001", "path"] == "training/st_petersburg_incart/g1/I0001"
    assert pd.isna(by_id.loc["cinc2021/I0001", "age"]) and by_id.loc["cinc2021/I0001", "fs"] == 257
    assert rejects[["id", "reason"]].values.tolist() == [["cinc2021/S0001", "bad_header"]]


def test_ptbxl_part_follows_strat_fold_only_with_the_ptbxl_csv(tmp_path):
    from ecg_instruct.build.recipe import load_recipe
    from ecg_instruct.index.table import read_source

    recipe = load_recipe(recipe_path("meit"))
    write_challenge_record(tmp_path / "challenge-2021" / "training" / "ptb-xl" / "g7", "HR06000",
                           _counts(5000), 500, dx=["426783006"])
    rows, _ = read_source(tmp_path, "cinc2021", recipe)
    assert rows["fold"].tolist() == [-1]  # no ptbxl_database.csv: a hash decides
    (tmp_path / "ptb-xl").mkdir()
    (tmp_path / "ptb-xl" / "ptbxl_database.csv").write_text(
        "ecg_id,patient_id,strat_fold\n6000,123.0,10\n", encoding="utf-8")
    rows, _ = read_source(tmp_path, "cinc2021", recipe)
    assert rows[["fold", "split", "patient_id"]].values.tolist() == [[10, "test", "ptbxl-123"]]


def test_sample_layout_builds_every_rate_to_the_recipe(tmp_path):
    """Georgia 500 Hz, PTB 1000 Hz, INCART 257 Hz x 15 s -> 500 Hz x 10 s (policy `crop`)."""
    from ecg_instruct.build.pipeline import BuildOptions, build
    from ecg_instruct.build.recipe import load_recipe
    from ecg_instruct.sample.cinc2021 import write_cinc2021

    raw = tmp_path / "raw"
    write_cinc2021(raw, n_per_database=2, simulator=shared_simulator())
    data = yaml.safe_load((recipe_path("meit")).read_text(encoding="utf-8"))
    data["sources"]["enabled"] = ["cinc2021"]
    data["signals"]["length_policy"] = "crop"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data), encoding="utf-8")
    summary = build(BuildOptions(raw_dir=raw, out=tmp_path / "out", recipe=load_recipe(recipe),
                                 sources=["cinc2021"], workers=1, progress=False))
    assert summary.totals["input"] == 6 == summary.totals["published"] + summary.totals["rejected"]
    rows = pd.concat([pd.read_parquet(f)
                      for f in sorted((tmp_path / "out" / "data" / "cinc2021").glob("*.parquet"))])
    prefixes = {i.split("/")[1][0] for i in rows["id"]}
    assert prefixes == {"E", "S", "I"}
    assert {np.stack(s).shape for s in rows["signal"]} == {(12, 5000)}
    assert all(r and r.endswith(".") for r in rows["report"])


def test_multisource_recipe_enables_the_four_sources():
    from ecg_instruct.build.recipe import load_recipe

    recipe = load_recipe(recipe_path("meit-multisource"))
    assert recipe.sources.enabled == ["ptbxl", "mimic", "cinc2021", "code15"]
    assert (recipe.signals.fs, recipe.signals.n_samples, recipe.signals.length_policy) == \
        (500, 5000, "crop")
