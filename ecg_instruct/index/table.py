"""Stage 1 (index): every source's metadata -> one canonical table with a split per record."""

from __future__ import annotations

import posixpath
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ecg_instruct.build.recipe import Recipe
from ecg_instruct.errors import UserError
from ecg_instruct.index.split import hashed_split, mimic_split, ptbxl_split
from ecg_instruct.index.windows import expand_windows
from ecg_instruct.schema import INDEX_COLUMNS, rejects_frame
from ecg_instruct.sources import SOURCE_DIRS, reader_for, source_root
from ecg_instruct.sources.subset import read_subset


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
    rows["split"] = _splits(rows, source, recipe)
    return rows, rejects_frame(rejects.to_dict("records"))


def _splits(rows: pd.DataFrame, source: str, recipe: Recipe) -> np.ndarray:
    """The split of each row: PTB-XL's fold, a hash of the patient where there is no fold.

    Computed once per distinct (fold, patient): a full MIMIC-IV-ECG release is 800k records of
    ~160k patients, and every record of a patient gets the patient's split anyway.
    """
    folds, seed, fractions = (recipe.split.ptbxl_folds, recipe.split.mimic_seed,
                              recipe.split.mimic_fractions)
    if source == "ptbxl":
        return _per_distinct(lambda fold: ptbxl_split(int(fold), folds), rows["fold"])
    if source in ("cinc2021", "code15"):
        return _per_distinct(
            lambda fold, patient: ptbxl_split(int(fold), folds) if int(fold) > 0
            else hashed_split(source, patient, seed, fractions),
            rows["fold"], rows["patient_id"])
    return _per_distinct(lambda patient: mimic_split(patient, seed, fractions),
                         rows["patient_id"])


def _per_distinct(function: Callable[..., str], *columns: pd.Series) -> np.ndarray:
    """`function(*cells)` of every row (an object array), called once per distinct cells, in
    order of first appearance (an error names the first row's value, as a loop would)."""
    keys = columns[0].to_numpy() if len(columns) == 1 else np.fromiter(
        zip(*columns, strict=True), dtype=object, count=len(columns[0]))
    codes, distinct = pd.factorize(keys, use_na_sentinel=False)
    results = np.empty(len(distinct), dtype=object)
    results[:] = [function(*(key if len(columns) > 1 else (key,))) for key in distinct]
    return results[codes]


def _drop_shared_files(rows: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows whose record files another row already uses become `duplicate_path` rejects.

    Two ids for one recording would publish the same ECG twice (and possibly in two splits,
    a leak): the first row in the metadata keeps it.
    """
    if rows.empty:
        return rows, pd.DataFrame()
    paths = _normalised_paths(rows["path"])
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


#: A path `posixpath.normpath` leaves as it is: no backslash, no empty, `.` or `..` component,
#: no leading or trailing slash (every path of the releases).
_NORMAL_PATH = r"^[^/\\]+(/[^/\\]+)*$"
_DOT_COMPONENT = r"(^|/)\.\.?(/|$)"


def _normalised_paths(paths: pd.Series) -> pd.Series:
    """`posixpath.normpath` of each path with backslashes as slashes, where two spellings of
    one file (`a/./b`, `a//b`) must compare equal; only paths not already normal are
    normalised one by one."""
    def normalise(path: object) -> str:
        return posixpath.normpath(str(path).replace("\\", "/"))

    try:
        column = pa.array(paths, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all strings: str() each, as ever
        return paths.map(normalise)
    normal = pc.and_(pc.match_substring_regex(column, _NORMAL_PATH),
                     pc.invert(pc.match_substring_regex(column, _DOT_COMPONENT)))
    normal = pc.fill_null(normal, False).to_numpy(zero_copy_only=False)
    out = paths.to_numpy(dtype=object, copy=True)
    others = np.flatnonzero(~normal)
    out[others] = [normalise(out[i]) for i in others]
    return pd.Series(out, index=paths.index)


def _sorted_by_id(index: pd.DataFrame) -> pd.DataFrame:
    """`index.sort_values("id", kind="stable")` with a fresh RangeIndex, sorted by Arrow: the
    same order (UTF-8 bytes sort as code points; the sort is stable) at a fraction of the cost
    of comparing 800k Python strings."""
    order = pc.sort_indices(pa.array(index["id"], type=pa.string()))
    index = index.take(order.to_numpy())
    index.index = pd.RangeIndex(len(index))  # reset_index(drop=True), without a copy
    return index


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
    index = _sorted_by_id(index)
    rejects = pd.concat(reject_frames, ignore_index=True)
    return index[columns], rejects.sort_values(["id", "stage"], kind="stable")
