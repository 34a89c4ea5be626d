"""The dataset card's figures: one ECG per source and the rejects by reason, in `figures/`."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from PIL import Image

from ecg_instruct.plot.card import write_rejects_figure


def test_the_built_card_shows_one_ecg_per_source(built_dataset: Path):
    card = (built_dataset / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", card)
    assert {"figures/ecg-ptbxl.png", "figures/ecg-mimic.png"} <= set(links)
    for link in links:
        with Image.open(built_dataset / link) as image:
            assert image.format == "PNG" and image.size[0] > 700
    assert sorted(p.name for p in (built_dataset / "figures").iterdir()) == sorted(
        Path(link).name for link in links)
    # the gallery record is the smallest test id of its source, and the card names it
    test_ids = pq.read_table(sorted((built_dataset / "data" / "ptbxl").glob("test-*.parquet"))[0],
                             columns=["id"]).column("id").to_pylist()
    assert f"`{min(test_ids)}` (test split)" in card
    rejects = pq.read_table(built_dataset / "rejects.parquet")
    assert ("figures/rejects-by-reason.png" in links) == (rejects.num_rows > 0)


def test_rejects_figure_is_deterministic_and_absent_without_rejects(tmp_path: Path):
    rejects = pd.DataFrame({
        "id": ["ptbxl/00002", "ptbxl/00003", "mimic/1", "mimic/2"],
        "source": ["ptbxl", "ptbxl", "mimic", "mimic"],
        "stage": ["signals", "signals", "signals", "reports"],
        "reason": ["flat_lead", "nan_values", "flat_lead", "empty_report"],
        "detail": ["", "", "", ""],
    })
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert write_rejects_figure(tmp_path / "a", rejects) == "figures/rejects-by-reason.png"
    write_rejects_figure(tmp_path / "b", rejects)
    one = (tmp_path / "a" / "figures" / "rejects-by-reason.png").read_bytes()
    assert one == (tmp_path / "b" / "figures" / "rejects-by-reason.png").read_bytes()
    assert write_rejects_figure(tmp_path / "c", rejects.iloc[:0]) is None
    assert not (tmp_path / "c").exists()
