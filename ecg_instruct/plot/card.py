"""The dataset card's figures: one ECG per source in the paper layout and the rejects by reason.

A reader deciding whether to trust a dataset wants to see what a record looks like and what
was thrown away; both are drawn at publish time into ``figures/`` of the published folder and
referenced from README.md. The figures are part of the build's output, so they are
byte-deterministic: the same records are chosen whatever the sharding (the smallest id of the
test split, else of the first split present) and the files carry no date.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ecg_instruct.plot.load import read_published
from ecg_instruct.plot.paper import render, save
from ecg_instruct.schema import DERIVED_CONFIGS

FIGURES_DIR = "figures"
GALLERY_DPI = 100
REJECTS_FIGURE = "rejects-by-reason.png"
_SPLIT_PREFERENCE = ("test", "validation", "train")


def _gallery_record(source_dir: Path) -> tuple[str, Path] | None:
    """(id, file) of the smallest id of the most preferred split this source has."""
    for split in _SPLIT_PREFERENCE:
        best: tuple[str, Path] | None = None
        for path in sorted(source_dir.glob(f"{split}-*.parquet")):
            ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
            if ids and (best is None or min(ids) < best[0]):
                best = (min(ids), path)
        if best is not None:
            return best
    return None


def write_gallery(staging: Path, sources: list[str], dpi: int = GALLERY_DPI) -> list[dict]:
    """``figures/ecg-<source>.png`` for each source; entries ``{source, id, split, path}``."""
    gallery = []
    for source in sources:
        found = _gallery_record(staging / "data" / source)
        if found is None:
            continue
        record_id, path = found
        split = path.name.split("-", 1)[0]
        view = read_published(path, record_id, f"published, config {source}, split {split}")
        relative = f"{FIGURES_DIR}/ecg-{source}.png"
        (staging / FIGURES_DIR).mkdir(exist_ok=True)
        render(view, staging / relative, dpi)
        gallery.append({"source": source, "id": record_id, "split": split, "path": relative})
    return gallery


def write_rejects_figure(staging: Path, rejects: pd.DataFrame, dpi: int = GALLERY_DPI) -> str | None:
    """A horizontal bar per ``stage: reason``, stacked by source; None when nothing was rejected."""
    if rejects.empty:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    counts = (rejects.assign(what=rejects["stage"] + ": " + rejects["reason"])
              .groupby(["what", "source"]).size().unstack(fill_value=0).sort_index())
    counts = counts.loc[counts.sum(axis=1).sort_values(kind="stable").index]  # largest on top
    fig = Figure(figsize=(7.5, 1.2 + 0.32 * len(counts)), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    left = pd.Series(0, index=counts.index)
    colours = {"ptbxl": "#1f77b4", "mimic": "#ff7f0e"}
    for source in sorted(counts.columns):
        ax.barh(counts.index, counts[source], left=left, label=source,
                color=colours.get(source, "#7f7f7f"))
        left = left + counts[source]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total}", va="center", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("records rejected")
    ax.set_xlim(0, max(1, left.max()) * 1.15)
    ax.set_title(f"Rejected records by stage and reason ({len(rejects)} in all)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="source",
              title_fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    relative = f"{FIGURES_DIR}/{REJECTS_FIGURE}"
    (staging / FIGURES_DIR).mkdir(exist_ok=True)
    save(fig, staging / relative)
    return relative


def write_card_figures(staging: Path, rejects: pd.DataFrame, dpi: int = GALLERY_DPI) -> dict:
    """Both figures into ``staging/figures/``; the card template's ``figures`` context:
    ``{"gallery": [{source, id, split, path}], "rejects": path or None}`` (paths relative to
    the dataset folder, as README.md links them)."""
    sources = sorted(p.name for p in (staging / "data").iterdir()
                     if p.is_dir() and p.name not in DERIVED_CONFIGS)
    return {"gallery": write_gallery(staging, sources, dpi),
            "rejects": write_rejects_figure(staging, rejects, dpi)}
