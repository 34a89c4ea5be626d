"""Stage 5 (publish): curated signal shards + metadata -> the dataset, staged in `<out>.tmp/`.

The per-source split files are the bulk of the bytes; each is one task for the build's executor
(`ecg_instruct.build.executor`), so they are written in parallel, one file's rows in memory per worker.
A file's rows are fixed before any is written (file `k` of a split holds its kept records
`k * rows_per_file ...` in id order), so the bytes do not depend on the number of workers or on
how the records were sharded. Everything else (rejects, instructions, figures) is small and
written here. The dataset is staged, not yet swapped into place: the stages after this one add
to it (`questions.stage`: the `ecgqa` config and its rejects), then `publish.swap` renders the
card and swaps `<out>.tmp/` into `<out>`, so `<out>` always holds either the previous dataset or
the new one. What publish did with each record also goes to the work folder (`PUBLISHED_FILE`,
`RECORD_REJECTS_FILE`), where those later stages read it as they read any earlier stage's work.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecg_instruct import __version__
from ecg_instruct.build.accounting import AccountingError, account, stage_ledger
from ecg_instruct.build.executor import map_ordered
from ecg_instruct.build.options import BuildOptions, BuildSummary
from ecg_instruct.build.recipe import SignalsConfig
from ecg_instruct.build.stage import BuildContext
from ecg_instruct.build.workio import atomic_parquet, temporary, writing
from ecg_instruct.errors import UserError
from ecg_instruct.index.split import SPLITS
from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.paths import staging_path
from ecg_instruct.plot.card import write_card_figures
from ecg_instruct.publish.card import card_yaml, file_sha256
from ecg_instruct.publish.duplicates import find_duplicates_in_shards
from ecg_instruct.publish.fidelity import build_fidelity
from ecg_instruct.publish.instructions import add_instructions_config, publish_instructions
from ecg_instruct.publish.parquet import plain_schema
from ecg_instruct.reports.stage import translator_provenance
from ecg_instruct.schema import MEASUREMENT_FIELDS, REJECT_SCHEMA, read_rejects
from ecg_instruct.signals.curate import WorkRows, read_work_rows, work_shard_ids
from ecg_instruct.signals.leads import CANONICAL_LEADS
from ecg_instruct.signals.quality import QualityConfig
from ecg_instruct.signals.stage import SignalShard
from ecg_instruct.signals.storage import parquet_write_options, signal_arrow_type

#: In the work folder, rewritten by every publish: each published record's id and split, in
#: publishing order, and every record reject (all stages, as in `rejects.parquet`). The stages
#: after publish read what became of each record here (the questions join to them).
PUBLISHED_FILE = "published.parquet"
PUBLISHED_SCHEMA = pa.schema([("id", pa.string()), ("split", pa.string())])
RECORD_REJECTS_FILE = "record_rejects.parquet"

#: The metadata columns a published row takes from the earlier stages.
META_COLUMNS = ("source", "patient_id", "split", "report", "report_original", "report_language",
                "translation_coverage", "messages", "task", "template_id", "labels", "scp_codes",
                "measurements", "age", "sex")


def _measurements_column(values: Sequence[object]) -> list[dict | None]:
    out = []
    for value in values:
        data = json.loads(value) if isinstance(value, str) and value else None
        out.append({name: data.get(name) for name in MEASUREMENT_FIELDS} if data else None)
    return out


def publish_table(
    cfg: SignalsConfig, signals: pa.Table, meta_by_id: pd.DataFrame, schema: pa.Schema
) -> pa.Table:
    """Join curated signals with their metadata, reports and messages, in id order."""
    order = signals.column("id").to_pylist()
    rows = meta_by_id.loc[order]
    columns = {
        "id": order,
        "source": rows["source"].tolist(),
        "patient_id": rows["patient_id"].tolist(),
        "split": rows["split"].tolist(),
        "signal": signals.column("signal"),
    }
    if cfg.dtype == "int16":
        columns["adc_gain"] = signals.column("adc_gain")
    columns.update({
        "fs": [cfg.fs] * len(order),
        "leads": [list(CANONICAL_LEADS)] * len(order),
        "report": rows["report"].tolist(),
        "report_original": rows["report_original"].tolist(),
        "report_language": rows["report_language"].tolist(),
        "translation_coverage": rows["translation_coverage"].tolist(),
        "messages": rows["messages"].tolist(),
        "task": rows["task"].tolist(),
        "template_id": rows["template_id"].tolist(),
        "labels": [list(v) for v in rows["labels"]],
        "scp_codes": rows["scp_codes"].tolist(),
        "measurements": _measurements_column(rows["measurements"].tolist()),
        "age": [None if pd.isna(v) else float(v) for v in rows["age"]],
        "sex": [None if v is None or pd.isna(v) else v for v in rows["sex"]],
        "signal_repairs": signals.column("repairs"),
    })
    arrays = []
    for name in schema.names:
        value = columns[name]
        arrays.append(
            value.cast(schema.field(name).type) if isinstance(value, pa.ChunkedArray)
            else pa.array(value, schema.field(name).type)
        )
    return pa.Table.from_arrays(arrays, schema=schema)


def write_split_file(
    parts: list[tuple[str, int, int]], meta: pd.DataFrame, cfg: SignalsConfig, path: str,
    row_group_rows: int, exclude: frozenset[str] = frozenset(),
) -> int:
    """One published file (a task of the executor): rows `start:stop` of each listed signals
    shard, joined with their metadata (`meta`, indexed by id), written atomically. Returns
    the file's size in bytes. Rows count after leaving out `exclude` (cross-source duplicates,
    published under the other source's id).

    Streamed row group by row group from the memory-mapped work shards: a worker converts and
    holds one row group's signals (1,000 records at 500 Hz are 240 MB of float32 before
    encoding), and only the rows this file takes. The bytes are those of `pq.write_table` on
    the whole table, which writes the same row groups.
    """
    options = dict(parquet_write_options(cfg.dtype))
    options.pop("row_group_size")
    # opened as the row groups reach them: a shard's mapped pages are let go once written
    pieces = (_kept_rows(shard, start, stop, exclude) for shard, start, stop in parts)
    schema = plain_schema(cfg.n_samples, cfg.dtype,
                          signal_arrow_type(len(CANONICAL_LEADS), cfg.n_samples, cfg.dtype))
    with writing(path), temporary(path) as tmp:
        with pq.ParquetWriter(tmp, schema, **options) as writer:
            for group in _row_groups(pieces, row_group_rows):
                signals = group.columns.add_column(1, "signal", group.signal_column(cfg.dtype))
                writer.write_table(publish_table(cfg, signals, meta, schema),
                                   row_group_size=row_group_rows)
        os.replace(tmp, path)
    return Path(path).stat().st_size


def _kept_rows(shard: str, start: int, stop: int, exclude: frozenset[str]) -> WorkRows:
    """Rows `start:stop` of a shard's records once `exclude` is left out (memory-mapped)."""
    rows = read_work_rows(shard)
    if exclude:
        ids = rows.columns.column("id").to_pylist()
        rows = rows.take(np.array([i for i, id_ in enumerate(ids) if id_ not in exclude],
                                  dtype=np.int64))
    return rows.slice(start, stop)


def _row_groups(pieces: Iterable[WorkRows], row_group_rows: int) -> Iterator[WorkRows]:
    """The rows of `pieces`, in order, regrouped `row_group_rows` at a time (the last short)."""
    pending: list[WorkRows] = []
    n_pending = 0
    for piece in pieces:
        at = 0
        while at < piece.num_rows:
            take = min(row_group_rows - n_pending, piece.num_rows - at)
            pending.append(piece.slice(at, at + take))
            n_pending, at = n_pending + take, at + take
            if n_pending == row_group_rows:
                yield WorkRows.concat(pending)
                pending, n_pending = [], 0
    if n_pending:
        yield WorkRows.concat(pending)


#: Columns of the index a published row takes (the rest of `META_COLUMNS` come from the
#: reports and instruct work files).
INDEX_META_COLUMNS = ("id", "source", "patient_id", "split", "labels", "scp_codes",
                      "measurements", "age", "sex")


def file_metadata(index_rows: pd.DataFrame, work: Path) -> pd.DataFrame:
    """`META_COLUMNS` of one published file's records, indexed by id.

    The index rows come with the task (the build holds the index anyway); reports and messages
    are read here from the work files (`reports.parquet`, `instruct.parquet`, both in id order
    with small row groups), only the row groups that hold these ids. So the build's process
    never joins every record's metadata, nor pickles a file's share of it to a worker."""
    ids = pa.array(index_rows["id"].tolist(), pa.string())
    frames = [index_rows.reset_index(drop=True)]
    for name in ("reports.parquet", "instruct.parquet"):
        frames.append(rows_with_ids(work / name, ids).to_pandas())
    meta = frames[0].merge(frames[1], on="id", how="inner").merge(frames[2], on="id", how="inner")
    return meta.set_index("id")[list(META_COLUMNS)]


def rows_with_ids(path: Path, ids: pa.Array) -> pa.Table:
    """The rows of an id-sorted work file whose id is in `ids`, reading only the row groups
    whose id range meets theirs. (A `filters=` read evaluated its expression against every
    row group's statistics: ~0.2 s per task for MIMIC-IV-ECG's 800k records, against ~7 ms.)
    Row groups without statistics are read and filtered like the others."""
    if len(ids) == 0:
        return pq.read_schema(path).empty_table()
    parquet = pq.ParquetFile(path)
    meta = parquet.metadata
    column = meta.schema.names.index("id")
    low, high = pc.min(ids).as_py(), pc.max(ids).as_py()
    groups = []
    for number in range(meta.num_row_groups):
        stats = meta.row_group(number).column(column).statistics
        if stats is None or not stats.has_min_max or (stats.max >= low and stats.min <= high):
            groups.append(number)
    table = parquet.read_row_groups(groups)
    return table.filter(pc.is_in(table.column("id"), value_set=ids))


def publish_file(
    parts: list[tuple[str, int, int]], index_rows: pd.DataFrame, work: str, cfg: SignalsConfig,
    path: str, row_group_rows: int, exclude: frozenset[str] = frozenset(),
) -> tuple[int, bytes]:
    """One published file (a task of the executor): its metadata read here, then
    `write_split_file`. Returns the file's size in bytes and its sha256 (the card's content
    digest, `card.stamp_contents`), taken here while the file is in the page cache."""
    size = write_split_file(parts, file_metadata(index_rows, Path(work)), cfg, path,
                            row_group_rows, exclude)
    return size, file_sha256(Path(path))


def _file_plan(kept: list[list[str]], rows_per_file: int) -> list[list[tuple[int, int, int]]]:
    """For each output file of a split, the (shard number, start, stop) row ranges it takes."""
    total = sum(len(ids) for ids in kept)
    files: list[list[tuple[int, int, int]]] = []
    if total == 0:
        return files
    current: list[tuple[int, int, int]] = []
    room = rows_per_file
    for number, ids in enumerate(kept):
        start = 0
        while start < len(ids):
            take = min(room, len(ids) - start)
            current.append((number, start, start + take))
            start += take
            room -= take
            if room == 0:
                files.append(current)
                current, room = [], rows_per_file
    if current:
        files.append(current)
    if len(files) != max(1, math.ceil(total / rows_per_file)):
        raise AccountingError(f"planned {len(files)} files for {total} records")
    return files


@dataclass
class _SplitPlan:
    source: str
    split: str
    ids: list[str]
    files: list[Path]


@dataclass
class StagedDataset:
    """`<out>.tmp/` between publish and the swap (`publish.swap`): the records' files, rejects,
    instructions and figures are written; what the card will say is held here, so a stage in
    between can add a config (its files, its rejects, its header entry, its card section)."""

    folder: Path
    header: dict[str, Any]  # the card's YAML header: configs, dataset_info
    card: dict[str, Any]  # the card template's context
    rejects: pd.DataFrame  # every record reject, as `folder/rejects.parquet` holds them
    digests: dict[Path, bytes] = field(default_factory=dict)  # sha256 of the files written


def publish(
    options: BuildOptions, index: pd.DataFrame, work: Path,
    library: TemplateLibrary, signal_shards: Sequence[SignalShard],
) -> tuple[BuildSummary, StagedDataset]:
    """Write the records' dataset into `<out>.tmp/` and check its accounting; what publish did
    with each record goes to the work folder (`PUBLISHED_FILE`, `RECORD_REJECTS_FILE`)."""
    recipe, cfg = options.recipe, options.recipe.signals
    staging = staging_path(options.out)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    reject_tables = {"index": read_rejects(work / "index_rejects.parquet"),
                     "reports": read_rejects(work / "reports_rejects.parquet"),
                     "instruct": read_rejects(work / "instruct_rejects.parquet")}
    signal_rejects: list[pa.Table] = []
    signal_ids: list[str] = []
    plans: list[_SplitPlan] = []
    index_ids = index["id"]  # in id order: a file's rows are found by binary search

    duplicates = find_duplicates_in_shards(sorted(s.path for s in signal_shards))
    excluded = frozenset(duplicates.kept_for)
    signal_rejects.append(duplicates.rejects())
    # per shard: the ids it publishes, and the duplicates it holds (left out when written)
    kept_by_split: list[tuple[str, str, list[Path], list[list[str]], list[frozenset[str]]]] = []
    for source in sorted(index["source"].unique()):
        for split in SPLITS:
            shards = [s.path for s in signal_shards if (s.source, s.split) == (source, split)]
            if not shards:
                continue
            kept, dropped = [], []
            for shard in shards:
                signal_rejects.append(read_rejects(Path(f"{shard}.rejects")))
                ids = work_shard_ids(shard)
                kept.append([i for i in ids if i not in excluded])
                dropped.append(excluded.intersection(ids) if excluded else frozenset())
                signal_ids.extend(kept[-1])
            kept_by_split.append((source, split, shards, kept, dropped))

    def tasks():
        """One task per published file; its metadata rows are taken only when it is queued."""
        for source, split, shards, kept, dropped in kept_by_split:
            files = _file_plan(kept, recipe.publish.rows_per_file)
            plan = _SplitPlan(source, split, [i for ids in kept for i in ids], [])
            plans.append(plan)
            folder = staging / "data" / source
            if files:
                folder.mkdir(parents=True, exist_ok=True)
            for number, parts in enumerate(files):
                path = folder / f"{split}-{number:05d}-of-{len(files):05d}.parquet"
                plan.files.append(path)
                ids = [i for n, start, stop in parts for i in kept[n][start:stop]]
                rows = index.iloc[index_ids.searchsorted(ids)][list(INDEX_META_COLUMNS)]
                yield (([(str(shards[n]), start, stop) for n, start, stop in parts],
                        rows, str(work), cfg, str(path), recipe.publish.row_group_rows,
                        frozenset().union(*(dropped[n] for n, _, _ in parts))),
                       len(ids))

    written = list(map_ordered(publish_file, tasks(), options.workers, "publish",
                               options.progress, total=len(signal_ids)))
    sizes = [size for size, _ in written]
    digests = {path: digest for path, (_, digest) in
               zip((f for plan in plans for f in plan.files), written, strict=True)}
    split_counts: dict[str, dict[str, int]] = {}
    split_bytes: dict[str, dict[str, int]] = {}
    file_counts: dict[tuple[str, str], int] = {}
    published_ids: list[str] = []
    file_sizes = iter(sizes)
    for plan in plans:
        if not plan.files:
            continue
        split_bytes.setdefault(plan.source, {})[plan.split] = sum(
            next(file_sizes) for _ in plan.files)
        file_counts[(plan.source, plan.split)] = len(plan.files)
        split_counts.setdefault(plan.source, {})[plan.split] = len(plan.ids)
        published_ids.extend(plan.ids)
    total_bytes = sum(sum(by_split.values()) for by_split in split_bytes.values())

    reject_tables["signals"] = pa.concat_tables([REJECT_SCHEMA.empty_table(), *signal_rejects])
    rejects = pa.concat_tables(list(reject_tables.values())).to_pandas()
    rejects = rejects.sort_values(["id", "stage"], kind="stable").reset_index(drop=True)
    stages = stage_ledger(  # first: it names the stage that lost or duplicated records
        {stage: table.column("id").to_pylist() for stage, table in reject_tables.items()},
        {"index": index["id"].tolist(), "reports": _ids_of(work / "reports.parquet"),
         "instruct": _ids_of(work / "instruct.parquet"), "signals": signal_ids,
         "publish": published_ids},
    )
    summary = BuildSummary(options.out, *account(index, rejects, published_ids))
    summary.stages = stages
    rejects_table = pa.Table.from_pandas(rejects, schema=REJECT_SCHEMA, preserve_index=False)
    atomic_parquet(rejects_table, staging / "rejects.parquet")
    if not split_counts:  # the CLI prints no summary on an error: the reasons go in the line
        reasons = ", ".join(f"{reason} {n}" for reason, n in
                            rejects["reason"].value_counts().head(5).items()) or "none"
        raise UserError(f"no record survived the build (rejected: {reasons}; every record with "
                        f"its reason in {staging / 'rejects.parquet'})",
                        path=options.raw_dir, fix="check the input mirror and the recipe")
    atomic_parquet(rejects_table, work / RECORD_REJECTS_FILE)
    atomic_parquet(pa.table({"id": [i for plan in plans for i in plan.ids],
                             "split": [plan.split for plan in plans for _ in plan.ids]},
                            schema=PUBLISHED_SCHEMA), work / PUBLISHED_FILE)
    header = card_yaml(split_counts, cfg.n_samples, cfg.dtype, split_bytes)
    instructions = publish_instructions(staging, work, published_ids, recipe, library)
    summary.fidelity = build_fidelity(_fidelity_rows(index, work, published_ids),
                                      published_ids, options.raw_dir, options.sources)
    summary.instructions = instructions
    add_instructions_config(header, instructions)
    card = {
        "recipe": recipe, "fingerprint": recipe.fingerprint(), "seed": options.seed,
        # The folder name only: the card's bytes must not depend on where the dataset was built.
        "version": __version__, "out_name": f"./{options.out.name}",
        "n_leads": len(CANONICAL_LEADS), "n_samples": cfg.n_samples, "leads": CANONICAL_LEADS,
        "quality_checks": QualityConfig.from_dict(cfg.quality, source="recipe").describe(),
        "split_rows": [
            {"source": s, "split": sp, "records": n, "files": file_counts[(s, sp)]}
            for s in sorted(split_counts) for sp, n in split_counts[s].items()
        ],
        "reject_rows": summary.reasons.to_dict("records"),
        "totals": summary.totals,
        "bytes_per_record": round(total_bytes / max(1, len(published_ids))),
        "translation": translator_provenance(recipe.reports),
        "n_templates": len(library.for_task("report")),
        "instructions": instructions.card_context(),
        "fidelity": summary.fidelity.card_context() if summary.fidelity else None,
        "sample": options.sample,
        "figures": write_card_figures(staging, rejects),  # figures/: one ECG per source, rejects
        "duplicate_pairs": duplicates.pair_counts(),
        "unknown_codes": _unknown_codes(index, published_ids),
        "questions": None,  # the questions stage's section, when the recipe has `ecgqa`
    }
    return summary, StagedDataset(staging, header, card, rejects, digests)


def _fidelity_rows(index: pd.DataFrame, work: Path, published_ids: list[str]) -> pd.DataFrame:
    """id, source, scp_codes and report of the published PTB-XL records (what
    `build_fidelity` reads), rather than every record's joined metadata."""
    rows = index.loc[(index["source"] == "ptbxl") & index["id"].isin(set(published_ids)),
                     ["id", "source", "scp_codes"]]
    reports = rows_with_ids(work / "reports.parquet", pa.array(rows["id"].tolist(), pa.string()))
    reports = reports.select(["id", "report"]).to_pandas()
    return rows.merge(reports, on="id", how="inner")


def _unknown_codes(meta: pd.DataFrame, published_ids: list[str]) -> list[dict[str, object]]:
    """Label codes of Challenge 2021 / CODE-15% records that no packaged table names, counted
    over every indexed record (records carrying them, and how many of those were published)."""
    from ecg_instruct.reports.code_reports import TABLE_FILES, unknown_code_counts

    rows = meta[meta["source"].isin(list(TABLE_FILES))]
    published = rows["id"].isin(set(published_ids)).tolist()
    return unknown_code_counts(rows["source"].tolist(), [list(v) for v in rows["labels"]],
                               published)


def _ids_of(path: Path) -> list[str]:
    return pq.read_table(path, columns=["id"]).column("id").to_pylist()


class PublishStage:
    """Always runs: the dataset is staged afresh from the work files by every build (so a rerun
    of a finished build costs this and the swap), and the stages after it add to what it
    staged (`context.staged`). A killed or failed build leaves `<out>.tmp/` behind at worst:
    the next one starts it over (a failure on the machine, such as a full disk, removes it:
    `build.pipeline`)."""

    name = "publish"

    def done(self, context: BuildContext) -> bool:
        return False

    def run(self, context: BuildContext) -> None:
        context.summary, context.staged = publish(context.options, context.index, context.work,
                                                  context.library, context.signal_shards)
