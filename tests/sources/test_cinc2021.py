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


def test_sample_records_carry_unscored_codes_at_the_release_rates(tmp_path):
    """Rates from the mapping files' per-database counts: LVH in Georgia (1,232 of 10,344
    records), MI in PTB (368 of 516), ventricular ectopics in INCART (49 of 74), and the share
    of unscored codes among each database's codes; 4,000 drawn records per database."""
    from ecg_instruct.reports.code_reports import challenge_mapping, code_table
    from ecg_instruct.sample.cinc2021 import DX_COLUMNS, UNMAPPED_CODE, draw_dx, write_cinc2021

    rng = np.random.default_rng(7)
    mapping = challenge_mapping()
    unscored = {row.code for row in mapping if not row.scored}
    for database, code, rate in (("georgia", "164873001", 1232 / 10344),
                                 ("ptb", "164865005", 368 / 516),
                                 ("st_petersburg_incart", "164884008", 49 / 74)):
        draws = [draw_dx(database, rng) for _ in range(4000)]
        assert all(draws)  # every record carries at least one code, as released
        share = sum(code in dx for dx in draws) / len(draws)
        assert abs(share - rate) < 0.25 * rate, (database, code, share, rate)
        column = DX_COLUMNS[database]
        released = (sum(r.counts[column] for r in mapping if r.code in unscored)
                    / sum(r.counts[column] for r in mapping))
        drawn = sum(c in unscored for dx in draws for c in dx) / sum(len(dx) for dx in draws)
        assert abs(drawn - released) < 0.03, (database, drawn, released)
    unscored = {row.code for row in challenge_mapping() if not row.scored}
    root = write_cinc2021(tmp_path, simulator=shared_simulator())
    dx = {hea.stem: yaml.safe_load(next(line for line in hea.read_text().splitlines()
                                        if line.startswith("#Dx:"))[1:])["Dx"]
          for hea in sorted(root.glob("training/*/g1/*.hea"))}
    codes = {str(c) for value in dx.values() for c in str(value).split(",")}
    assert codes & unscored and UNMAPPED_CODE in codes
    assert codes - {UNMAPPED_CODE} <= set(code_table("cinc2021").codes)


def _simulated_counts(k: int) -> np.ndarray:
    mv = shared_simulator().record((58, 66, 74, 82, 90, 98)[k % 6], np.random.default_rng(100 + k))
    return np.clip(np.rint(mv * 1000.0), -32767, 32767).astype(np.int16)


def test_build_publishes_every_record_with_a_mapped_code_and_counts_unmapped_ones(tmp_path):
    """Issue 26's done-when: real-layout records whose codes come from both mapping files."""
    from ecg_instruct.build.pipeline import BuildOptions, build
    from ecg_instruct.build.recipe import load_recipe

    lvh, lvhv, rbbb, crbbb, unmapped = "164873001", "55827005", "59118001", "713427006", "3424008"
    records = {  # database, name, codes as in the `#Dx:` line
        "E00001": ("georgia", [lvh]),
        "E00002": ("georgia", [lvh]),
        "JS10647": ("ningbo", ["426177001", lvhv, lvh]),
        "JS10648": ("ningbo", [crbbb, rbbb, "426783006"]),
        "E00003": ("georgia", [unmapped]),
        "E00004": ("georgia", ["426783006", "164934002", "428750005", "67741000119109", unmapped]),
    }
    training = tmp_path / "raw" / "challenge-2021" / "training"
    for k, (name, (database, dx)) in enumerate(records.items()):
        write_challenge_record(training / database / "g1", name, _simulated_counts(k), 500,
                               age=60 + k, sex="Male", dx=dx)
    data = yaml.safe_load(recipe_path("meit").read_text(encoding="utf-8"))
    data["sources"]["enabled"] = ["cinc2021"]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "out"
    summary = build(BuildOptions(raw_dir=tmp_path / "raw", out=out, recipe=load_recipe(recipe),
                                 sources=["cinc2021"], workers=1, progress=False))
    assert (summary.totals["input"], summary.totals["published"]) == (6, 5)
    rows = pd.concat([pd.read_parquet(f) for f in sorted((out / "data" / "cinc2021").glob("*"))])
    reports = dict(zip(rows["id"].str.split("/").str[1], rows["report"], strict=True))
    assert reports == {
        "E00001": "Left ventricular hypertrophy.",
        "E00002": "Left ventricular hypertrophy.",
        "JS10647": "Sinus bradycardia. Left ventricular hypertrophy by voltage criteria.",
        "JS10648": "Sinus rhythm. Complete right bundle branch block.",
        "E00004": "Sinus rhythm. Left atrial enlargement. Non-specific ST-T abnormality. "
                  "T wave abnormality.",
    }
    labels = {i.split("/")[1]: list(v) for i, v in zip(rows["id"], rows["labels"], strict=True)}
    assert labels["E00004"] == records["E00004"][1]  # the unmapped code stays a label
    from ecg_instruct.reports.fidelity import challenge_label_agreement

    agreement = challenge_label_agreement([reports[n] for n in reports],
                                          [labels[n] for n in reports])
    assert agreement["agreement"].eq(1.0).all() and agreement["n_records"].sum() == 12
    rejects = pd.read_parquet(out / "rejects.parquet")
    assert rejects[["id", "reason"]].values.tolist() == [["cinc2021/E00003", "empty_report"]]
    assert unmapped in rejects["detail"].iloc[0]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"cinc2021 `{unmapped}` (2, 1 published)" in card
