"""Splits: PTB-XL by strat_fold, MIMIC by patient hash, never leaking a patient."""

from __future__ import annotations

from collections import Counter

import pytest

from ecg_instruct.index.split import mimic_split, ptbxl_split


@pytest.mark.parametrize(("fold", "split"), [(1, "train"), (8, "train"), (9, "validation"),
                                             (10, "test")])
def test_ptbxl_folds(fold: int, split: str) -> None:
    assert ptbxl_split(fold) == split


def test_ptbxl_unknown_fold() -> None:
    with pytest.raises(ValueError):
        ptbxl_split(11)


def test_mimic_split_is_per_patient_deterministic_and_proportional() -> None:
    subjects = range(10_000_000, 10_020_000)
    first = [mimic_split(s) for s in subjects]
    assert first == [mimic_split(str(s)) for s in subjects]  # int or str id, same answer
    shares = Counter(first)
    assert abs(shares["train"] / len(first) - 0.9) < 0.01
    assert abs(shares["test"] / len(first) - 0.05) < 0.01
    assert [mimic_split(s, seed=1) for s in subjects] != first  # the split seed matters


def test_mimic_split_fractions() -> None:
    assert {mimic_split(s, fractions=(0, 0, 1)) for s in range(100)} == {"test"}
