"""Stage 1 (index): every source's metadata -> one canonical table with a split per record."""

from __future__ import annotations

import posixpath
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ecg_instruct.errors import UserError
from ecg_instruct.recipe import Recipe
from ecg_instruct.schema import INDEX_COLUMNS, rejects_frame
from ecg_instruct.sources import SOURCE_DIRS, reader_for, source_root
from ecg_instruct.sources.subset import read_subset
from ecg_instruct.split import hashed_split, mimic_split, ptbxl_split
from ecg_instruct.windows import expand_windows


def read_source(raw_dir: Path, source: str, recipe: Recipe) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index rows (with `split`) and index rejects of one source."""
    root = source_root(raw_dir, source)
    if not root.is_dir():
        raise UserError(
            f"no {SOURCE_DIRS[source]}/ folder",
            path=root,
            fix=f"download it (`ecg-instruct download {source} --out {raw_dir}`), copy a mirror "
            f"there, or build another source with --source",
        )
    options: dict = {}
    if source == "ptbxl":
        options = {"records": recipe.sources.ptbxl.records}
    elif source == "cinc2021":  # its PTB-XL part takes PTB-XL's folds when the CSV is there
        options = {"ptbxl_root": source_root(raw_dir, "ptbxl")}
    rows, rejects = reader_for(source)(root, **options)
    subset = read_subset(root)
    if subset is not None:  # a subset download: records never fetched are not inputs
        rows = rows[rows["id"].isin(subset)] if len(rows) else rows
        if len(rejects):
            rejects = rejects[rejects["id"].str.split("#").str[0].isin(subset)]
    if rows.empty:
        rows = pd.DataFrame(columns=[*INDEX_COLUMNS, "fold"])
    rows, shared = _drop_shared_files(rows, source)
    if len(shared):
        rejects = pd.concat([rejects, shared], ignore_index=True)
    if source == "ptbxl":
        folds = recipe.split.ptbxl_folds
        rows["split"] = [ptbxl_split(int(fold), folds) for fold in rows["fold"]]
    elif source in ("cinc2021", "code15"):
        rows["split"] = [
            ptbxl_split(int(fold), recipe.split.ptbxl_folds) if int(fold) > 0
            else hashed_split(source, patient, recipe.split.mimic_seed,
                              recipe.split.mimic_fractions)
            for fold, patient in zip(rows["fold"], rows["patient_id"], strict=True)
        ]
    else:
        rows["split"] = [
            mimic_split(patient, recipe.split.mimic_seed, recipe.split.mimic_fractions)
            for patient in rows["patient_id"]
        ]
    return rows, rejects_frame(rejects.to_dict("records"))


def _drop_shared_files(rows: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows whose record files another row already uses become `duplicate_path` rejects.

    Two ids for one recording would publish the same ECG twice (and possibly in two splits,
    a leak): the first row in the metadata keeps it.
    """
    if rows.empty:
        return rows, pd.DataFrame()
    paths = rows["path"].map(lambda p: posixpath.normpath(str(p).replace("\\", "/")))
    repeated = paths.duplicated(keep="first")
    if not repeated.any():
        return rows, pd.DataFrame()
    first = dict(zip(paths[~repeated], rows["id"][~repeated], strict=True))
    shared = pd.DataFrame({
        "id": rows["id"][repeated].to_numpy(), "source": source, "stage": "index",
        "reason": "duplicate_path",
        "detail": [f"uses the files of {first[p]} ({p}); kept the first"
                   for p in paths[repeated]],
    })
    return rows[~repeated].reset_index(drop=True), shared


def build_index(
    raw_dir: Path, recipe: Recipe, sources: Sequence[str], splits: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The canonical index of the selected sources, sorted by id, and its rejects.

    With `splits`, records of other splits are left out entirely (they are not inputs of this
    build), which is what `--split test` means. Index rejects cannot always be assigned a split
    (their metadata is broken), so they are kept whatever the split filter.
    """
    frames, reject_frames = [], []
    for source in sources:
        rows, rejects = read_source(raw_dir, source, recipe)
        frames.append(rows)
        reject_frames.append(rejects)
    frames = [frame for frame in frames if len(frame)]
    columns = [*INDEX_COLUMNS, "fold"]
    with warnings.catch_warnings():
        # Sources leave different columns all-missing (MIMIC has no age); the result's dtypes
        # are fixed when the index is written, so pandas' upcoming dtype change does not matter.
        warnings.simplefilter("ignore", FutureWarning)
        index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    if splits:
        index = index[index["split"].isin(list(splits))]
    if recipe.signals.length_policy == "window":  # long records -> one row per window
        index = expand_windows(index, recipe.signals.duration_s)
    index = index.sort_values("id", kind="stable").reset_index(drop=True)
    rejects = pd.concat(reject_frames, ignore_index=True)
    return index[columns], rejects.sort_values(["id", "stage"], kind="stable")
