"""The published columns as Hugging Face `Features` (what `load_dataset` returns)."""

from __future__ import annotations

from typing import Any

from datasets import Array2D, DatasetInfo, Features, List, Value

from ecg_instruct.schema import MEASUREMENT_FIELDS

N_LEADS = 12


def published_features(n_samples: int, signal_dtype: str = "float32") -> Features:
    """Features of one published row; identical for every source so configs can be mixed."""
    columns = {
        "id": Value("string"),
        "source": Value("string"),
        "patient_id": Value("string"),
        "split": Value("string"),
        "signal": Array2D(shape=(N_LEADS, n_samples), dtype=signal_dtype),
    }
    if signal_dtype == "int16":
        columns["adc_gain"] = Value("float32")
    columns.update(
        {
            "fs": Value("int32"),
            "leads": List(Value("string")),
            "report": Value("string"),
            "report_original": Value("string"),
            "report_language": Value("string"),
            "translation_coverage": Value("float32"),
            "messages": List({"role": Value("string"), "content": Value("string")}),
            "task": Value("string"),
            "template_id": Value("string"),
            "labels": List(Value("string")),
            "scp_codes": Value("string"),
            "measurements": {name: Value("float32") for name in MEASUREMENT_FIELDS},
            "age": Value("float32"),
            "sex": Value("string"),
            "signal_repairs": List(Value("string")),
        }
    )
    return Features(columns)


def declare_config(header: dict[str, Any], name: str, features: Features,
                   splits: list[tuple[str, int, int]]) -> None:
    """Add a derived config (never the default) to the card's YAML header: its data files and
    its `dataset_info`; `splits` is (split, bytes, examples) in publishing order. One place, so
    the `instructions` and `ecgqa` configs are declared alike."""
    header["configs"].append({
        "config_name": name,
        "data_files": [{"split": s, "path": f"data/{name}/{s}-*.parquet"} for s, _, _ in splits],
    })
    header["dataset_info"].append({
        "config_name": name,
        **DatasetInfo(features=features)._to_yaml_dict(),
        "splits": [{"name": s, "num_bytes": size, "num_examples": n} for s, size, n in splits],
    })
