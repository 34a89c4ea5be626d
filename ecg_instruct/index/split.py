"""Leakage-free splits.

PTB-XL ships `strat_fold` (1-10), stratified and grouped by patient: folds 1-8 train, 9
validation, 10 test is the benchmark convention of its authors. MIMIC-IV-ECG has no official split,
so patients are assigned by a salted hash of `subject_id`: no patient is in two splits, the
assignment never depends on record order, on which subset was downloaded, or on the instruction
seed (`--seed`), and adding records later never moves an existing patient.
"""

from __future__ import annotations

from collections.abc import Sequence

from ecg_instruct.rng import stable_hash

SPLITS: tuple[str, ...] = ("train", "validation", "test")
DEFAULT_MIMIC_FRACTIONS: tuple[float, float, float] = (0.9, 0.05, 0.05)
DEFAULT_PTBXL_FOLDS: dict[str, tuple[int, ...]] = {
    "train": (1, 2, 3, 4, 5, 6, 7, 8),
    "validation": (9,),
    "test": (10,),
}


def ptbxl_split(fold: int, folds: dict[str, Sequence[int]] | None = None) -> str:
    """The split of a PTB-XL record from its `strat_fold`."""
    for split, members in (folds or DEFAULT_PTBXL_FOLDS).items():
        if fold in members:
            return split
    raise ValueError(f"strat_fold {fold} is not assigned to any split")


def mimic_split(
    subject_id: int | str,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_MIMIC_FRACTIONS,
) -> str:
    """The split of a MIMIC-IV-ECG patient: a deterministic hash of subject_id into [0, 1)."""
    position = stable_hash("mimic-split-v1", seed, str(subject_id)) / 2**64
    return _split_at(position, fractions)


def hashed_split(
    source: str, patient: str, seed: int = 0, fractions: Sequence[float] = DEFAULT_MIMIC_FRACTIONS,
) -> str:
    """The split of a patient of a source without an official split (Challenge 2021 outside
    its PTB-XL part, CODE-15%): a salted hash of (source, patient id), like `mimic_split`.

    A Challenge 2021 copy of a PTB-XL record whose fold is unknown (no `ptbxl_database.csv`)
    hashes its patient key `HR<ecg_id>`; the duplicate check still names the PTB-XL record.
    """
    position = stable_hash(f"{source}-split-v1", seed, str(patient)) / 2**64
    return _split_at(position, fractions)


def _split_at(position: float, fractions: Sequence[float]) -> str:
    """The split whose cumulative fraction first exceeds ``position`` (a hash in [0, 1))."""
    cumulative = 0.0
    for split, fraction in zip(SPLITS, fractions, strict=True):
        cumulative += fraction
        if position < cumulative:
            return split
    return SPLITS[-1]
