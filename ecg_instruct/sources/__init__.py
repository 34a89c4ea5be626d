"""Readers for the original PhysioNet layouts, each producing canonical index rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

SOURCE_DIRS: dict[str, str] = {
    "ptbxl": "ptb-xl", "mimic": "mimic-iv-ecg", "cinc2021": "challenge-2021", "code15": "code-15",
}
#: Which copy of a record is published when two sources hold the same samples (earlier wins):
#: native releases before collections that redistribute them (PTB-XL before Challenge 2021).
SOURCE_PRIORITY: tuple[str, ...] = ("ptbxl", "mimic", "code15", "cinc2021")


def reader_for(source: str) -> Callable[..., tuple[pd.DataFrame, pd.DataFrame]]:
    """The `read_index(root, **options)` function of a source."""
    if source == "ptbxl":
        from ecg_instruct.sources.ptbxl import read_index
    elif source == "mimic":
        from ecg_instruct.sources.mimic import read_index
    elif source == "cinc2021":
        from ecg_instruct.sources.cinc2021 import read_index
    elif source == "code15":
        from ecg_instruct.sources.code15 import read_index
    else:  # pragma: no cover - guarded by the CLI and the recipe
        raise ValueError(f"unknown source {source!r}")
    return read_index


def source_root(raw_dir: Path, source: str) -> Path:
    return Path(raw_dir) / SOURCE_DIRS[source]
