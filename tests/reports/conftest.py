"""Fixtures shared by the reports tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ecg_instruct.reports.fidelity import read_scp_statements


@pytest.fixture(scope="module")
def statements(real_ptbxl_dir: Path) -> pd.DataFrame:
    """The real scp_statements.csv, indexed by SCP code."""
    return read_scp_statements(real_ptbxl_dir / "scp_statements.csv")
