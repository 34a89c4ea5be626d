"""The build's translation-quality metric: do published PTB-XL reports state their SCP labels?

Computed on exactly the published records, so the number in the card describes the data a user
loads (see `ecg_instruct.reports.fidelity` for the phrase matcher and its definitions).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass
class Fidelity:
    table: pd.DataFrame  # code, description, kind, n_records, n_stated, agreement
    diagnostic: float  # pooled agreement over diagnostic statements
    n_records: int

    markdown: str  # the reports stage's own card section (two headline numbers + table)

    def card_context(self) -> dict:
        return {"diagnostic": f"{self.diagnostic:.1%}", "n_records": self.n_records,
                "markdown": self.markdown}


def build_fidelity(
    meta: pd.DataFrame, published_ids: Sequence[str], raw_dir: Path, sources: Sequence[str]
) -> Fidelity | None:
    """Label agreement of the published PTB-XL reports, or None when none were published."""
    if "ptbxl" not in sources:
        return None
    from ecg_instruct.reports.fidelity import (
        card_section,
        label_agreement,
        overall_agreement,
        read_scp_statements,
    )
    from ecg_instruct.sources import source_root
    from ecg_instruct.sources.ptbxl import STATEMENTS_CSV

    published = meta[meta["id"].isin(set(published_ids)) & (meta["source"] == "ptbxl")]
    if published.empty:
        return None
    published = published.sort_values("id")
    statements = read_scp_statements(source_root(raw_dir, "ptbxl") / STATEMENTS_CSV)
    reports = published["report"].tolist()
    codes = [json.loads(value) for value in published["scp_codes"]]
    table = label_agreement(reports, codes, statements)
    return Fidelity(table, overall_agreement(table), len(published),
                    card_section(reports, codes, statements))
