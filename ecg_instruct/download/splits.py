"""Which split a record belongs to, so `--split test` fetches exactly the builder's test records.

The builder's `ecg_instruct.split` is the single source of truth. Until it is importable this
module falls back to the same rules written down in docs/ARCHITECTURE.md (PTB-XL `strat_fold`
9/10 = validation/test; MIMIC a salted hash of subject_id, so every study of a patient lands in
the same split). Once `ecg_instruct.split` exists, its functions are used unchanged.
"""

from __future__ import annotations

from ecg_instruct.rng import stable_hash

SPLITS = ("train", "validation", "test")


def _fallback_mimic_split(subject_id: int | str, seed: int = 0) -> str:
    """Patient-level 90/9/1 split by a salted hash of subject_id (MEIT's proportions)."""
    bucket = stable_hash("mimic-split", seed, int(subject_id)) % 100
    if bucket < 90:
        return "train"
    return "validation" if bucket < 99 else "test"


def _fallback_ptbxl_split(strat_fold: int | str) -> str:
    """PTB-XL's recommended split: folds 1-8 train, 9 validation, 10 test."""
    fold = int(float(strat_fold))
    return "test" if fold == 10 else "validation" if fold == 9 else "train"


try:  # pragma: no cover - depends on whether the builder's split module has landed
    from ecg_instruct.split import mimic_split  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    mimic_split = _fallback_mimic_split

try:  # pragma: no cover
    from ecg_instruct.split import ptbxl_split  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    ptbxl_split = _fallback_ptbxl_split
