"""The published columns as Hugging Face `Features` (what `load_dataset` returns)."""

from __future__ import annotations

from datasets import Array2D, Features, List, Value

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
