"""Shared fixtures for the metric tests: the real PTB-XL reports and pycocoevalcap's Java side."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_reports(real_ptbxl_dir: Path) -> list[dict]:
    """Every row of the real PTB-XL excerpt (ecg_id, report, scp_codes)."""
    with (real_ptbxl_dir / "ptbxl_database_excerpt.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def coco_java():
    """pycocoevalcap with Java: the reference the parity tests compare against.

    CI installs both (`make test` checks `which java`); a missing one FAILS the parity tests
    rather than skipping them, unless ECG_INSTRUCT_SKIP_JAVA_PARITY=1 is set on purpose.
    """
    missing = []
    if shutil.which("java") is None:
        missing.append("java (e.g. apt-get install openjdk-17-jre-headless)")
    try:
        import pycocoevalcap  # noqa: F401
    except ImportError:
        missing.append("pycocoevalcap (pip install -e '.[dev]')")
    if missing:
        message = f"parity with pycocoevalcap needs {' and '.join(missing)}"
        if os.environ.get("ECG_INSTRUCT_SKIP_JAVA_PARITY") == "1":
            pytest.skip(message)
        pytest.fail(message)
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    return PTBTokenizer
