"""Which split a record belongs to, so `--split test` fetches exactly the build's test records.

The build assigns splits in `ecg_instruct.index.table` with `ecg_instruct.index.split` and the recipe's
`split:` settings; this module makes the very same calls. Pass the recipe the build will use
(`--recipe`), or rely on the defaults, which are those of the bundled `meit` recipe.
"""

from __future__ import annotations

from ecg_instruct.build.recipe import SplitConfig
from ecg_instruct.index.split import SPLITS, hashed_split, mimic_split, ptbxl_split

__all__ = ["SPLITS", "Splitter"]


class Splitter:
    """Split of a PTB-XL record (from strat_fold) or a MIMIC study (from subject_id)."""

    def __init__(self, config: SplitConfig | None = None):
        self.config = config or SplitConfig()

    def ptbxl(self, strat_fold: str) -> str:
        """'' for a fold the recipe assigns to no split (the build rejects those records)."""
        try:
            return ptbxl_split(int(float(strat_fold)), self.config.ptbxl_folds)
        except ValueError:
            return ""

    def mimic(self, subject_id: str) -> str:
        return mimic_split(subject_id, self.config.mimic_seed, self.config.mimic_fractions)

    def hashed(self, source: str, patient: str) -> str:
        """A source split by a salted hash of its patient key (Challenge 2021, CODE-15%)."""
        return hashed_split(source, patient, self.config.mimic_seed, self.config.mimic_fractions)
