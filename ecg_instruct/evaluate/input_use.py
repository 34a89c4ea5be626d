"""Does the model read its input? Counts that say so before any metric is looked at.

A model that writes the same few reports whatever the ECG can still score near the
majority-report baseline on every text metric (measured: SmolLM2 with 2 distinct reports over
298 records, clinical F1 0.42). So ``evaluate`` counts the distinct generated reports, and with
``--controls`` the share of records whose report changes when the ECG is zeroed or shuffled,
and says so in plain words when either is too small to be reading the ECG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: Warn below these: distinct reports vs distinct references, and outputs a control changes.
MIN_DISTINCT_SHARE = 0.10
MIN_CHANGED_SHARE = 0.05

CONTROL_NAMES = {"zeros": "zeroing the ECG", "shuffle": "shuffling the ECGs between records"}


def input_use(predictions: Mapping[str, Sequence[str]], references: Sequence[str],
              noun: str = "reports") -> dict:
    """``predictions`` maps a condition (``signal``, and with controls ``zeros``/``shuffle``)
    to one output per example, in order. Returns counts, shares and ``warnings``; ``noun``
    names the outputs in them ("answers" for ECG-QA)."""
    real = list(predictions["signal"])
    out: dict = {
        "distinct_predictions": len(set(real)),
        "distinct_references": len(set(references)),
    }
    warnings = []
    if out["distinct_predictions"] < MIN_DISTINCT_SHARE * out["distinct_references"]:
        warnings.append(
            f"the model writes {out['distinct_predictions']} distinct {noun} for "
            f"{out['distinct_references']} distinct references (under "
            f"{MIN_DISTINCT_SHARE:.0%}): it writes a prior, not each ECG's findings"
        )
    for condition, words in CONTROL_NAMES.items():
        if condition not in predictions:
            continue
        other = list(predictions[condition])
        changed = sum(a != b for a, b in zip(real, other, strict=True))
        share = changed / max(1, len(real))
        out[f"changed_by_{condition}"] = changed
        out[f"changed_share_{condition}"] = round(share, 4)
        if share < MIN_CHANGED_SHARE:
            warnings.append(
                f"{words} changes {changed} of {len(real)} {noun} (under {MIN_CHANGED_SHARE:.0%}): "
                "the model ignores its ECG input"
            )
    out["warnings"] = warnings
    return out
