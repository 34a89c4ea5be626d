"""The `instructions` config: every instruction example of the published records.

`data/instructions/<split>-NNNNN-of-NNNNN.parquet` holds one row per example (example_id, id,
source, split, task, template_id, messages). In the default `records` layout an example references
its ECG by `id` (a row of `data/<source>/`), so a signal is stored once however many examples its
record has; recipe `instruct.layout: flat` repeats `signal` in every example row instead, for
trainers that want self-contained rows, at the price of one signal per example on disk.

Only examples of published records are written (a record rejected at the signals stage takes its
examples with it), in (id, task order of the recipe, example number) order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets import Features, List, Value

from ecg_instruct.build.accounting import AccountingError
from ecg_instruct.build.recipe import Recipe
from ecg_instruct.index.split import SPLITS
from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.publish.features import declare_config, published_features
from ecg_instruct.publish.parquet import write_parquet
from ecg_instruct.schema import DERIVED_CONFIGS

CONFIG_NAME = "instructions"
N_CARD_EXAMPLES = 3


def instruction_features(layout: str, n_samples: int, signal_dtype: str) -> Features:
    columns: dict[str, Any] = {
        "example_id": Value("string"),
        "id": Value("string"),
        "source": Value("string"),
        "split": Value("string"),
        "task": Value("string"),
        "template_id": Value("string"),
        "messages": List({"role": Value("string"), "content": Value("string")}),
    }
    if layout == "flat":
        record = published_features(n_samples, signal_dtype)
        columns["signal"] = record["signal"]
        if signal_dtype == "int16":
            columns["adc_gain"] = record["adc_gain"]
    return Features(columns)


@dataclass
class InstructionsInfo:
    """What was written, for the card and the build summary."""

    layout: str
    ecg_token: str = "<ecg>"
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> task -> examples
    records: dict[str, int] = field(default_factory=dict)  # split -> records with examples
    split_bytes: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    n_templates: dict[str, int] = field(default_factory=dict)  # task -> templates
    skips: list[dict[str, Any]] = field(default_factory=list)  # task, missing field, count
    examples: list[dict[str, Any]] = field(default_factory=list)  # rendered, for the card
    features: Features | None = None
    tasks: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(self.split_bytes.values())

    def card_context(self) -> dict[str, Any]:
        splits = [s for s in SPLITS if s in self.counts]
        rows = [{"task": task, "templates": self.n_templates.get(task, 0),
                 **{s: self.counts[s].get(task, 0) for s in splits},
                 "total": sum(self.counts[s].get(task, 0) for s in splits)}
                for task in self.tasks]
        return {"layout": self.layout, "splits": splits, "rows": rows, "skips": self.skips,
                "examples": self.examples, "total_bytes": self.total_bytes,
                "total_examples": sum(r["total"] for r in rows)}


def _order(table: pa.Table, tasks: list[str]) -> pa.Table:
    """Sort by (id, task order of the recipe, example number), in Arrow (millions of rows)."""
    rank = pc.index_in(table.column("task"), value_set=pa.array(tasks, pa.string()))
    rank = pc.fill_null(rank, len(tasks))
    number = pc.struct_field(pc.extract_regex(table.column("example_id"), r"/(?P<n>\d+)$"), [0])
    keyed = table.append_column("_rank", rank).append_column("_n", pc.cast(number, pa.int64()))
    keyed = keyed.sort_by([("id", "ascending"), ("_rank", "ascending"), ("_n", "ascending")])
    return keyed.drop_columns(["_rank", "_n"])


class _SignalLookup:
    """Signals of published records by id, read file by file from the staged per-source data."""

    def __init__(self, staging: Path, split: str, columns: list[str]):
        self.columns = columns
        self.where: dict[str, tuple[Path, int]] = {}
        for path in sorted((staging / "data").glob(f"*/{split}-*.parquet")):
            if path.parent.name in DERIVED_CONFIGS:
                continue
            ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
            self.where.update({rid: (path, row) for row, rid in enumerate(ids)})
        self._path: Path | None = None
        self._table: pa.Table | None = None

    def take(self, ids: list[str]) -> pa.Table:
        parts = []
        start = 0
        while start < len(ids):  # runs of ids from the same file, in order
            path = self.where[ids[start]][0]
            end = start
            while end < len(ids) and self.where[ids[end]][0] == path:
                end += 1
            if path != self._path:
                self._path, self._table = path, pq.read_table(path, columns=self.columns)
            rows = pa.array([self.where[i][1] for i in ids[start:end]], pa.int64())
            parts.append(self._table.take(rows))
            start = end
        return pa.concat_tables(parts)


def publish_instructions(
    staging: Path, work: Path, published_ids: list[str], recipe: Recipe, library: TemplateLibrary,
) -> InstructionsInfo:
    """Write `data/instructions/` into the staging folder; return its accounting.

    Streamed: the examples are read a row group at a time (`instruct_examples.parquet` is in
    id order, written a chunk of records at a time), so the build's process holds one batch and
    at most one output file per split, not every example's messages (~1.5 kB each; a few GB
    for MIMIC-IV-ECG). A first pass over the id, split and task columns counts each split's
    examples, which fixes the file names (`-of-NNNNN`) before any is written."""
    cfg = recipe.instruct
    tasks = list(cfg.tasks)
    info = InstructionsInfo(layout=cfg.layout, ecg_token=cfg.ecg_token, tasks=tasks,
                            n_templates={t: len(library.for_task(t)) for t in tasks})
    examples_path = work / "instruct_examples.parquet"
    published = pa.array(sorted(set(published_ids)), pa.string())
    _count_examples(examples_path, published, info)
    signal_dtype = recipe.signals.dtype
    info.features = instruction_features(cfg.layout, recipe.signals.n_samples, signal_dtype)
    base = instruction_features("records", recipe.signals.n_samples, signal_dtype)
    schema = base.arrow_schema.remove_metadata()
    signal_columns = ["signal"] + (["adc_gain"] if signal_dtype == "int16" else [])
    writers = {split: _SplitFiles(staging / "data" / CONFIG_NAME, split, info, recipe,
                                  _SignalLookup(staging, split, ["id", *signal_columns])
                                  if cfg.layout == "flat" else None, signal_columns)
               for split in SPLITS if split in info.counts}
    card = _CardExamples(tasks)
    for batch in _ordered_batches(examples_path, published, tasks):
        batch = batch.cast(schema)
        card.add(batch)
        for split, writer in writers.items():
            writer.add(batch.filter(pc.equal(batch.column("split"), split)))
    for writer in writers.values():
        writer.close()
    skips = pd.read_parquet(work / "instruct_skips.parquet")
    if len(skips):
        skips = skips.assign(missing=skips["missing"].where(
            skips["template_id"] != "(none applicable)", "(no applicable template)"))
        grouped = skips.groupby(["task", "missing"], sort=True)["count"].sum()
        info.skips = [{"task": t, "missing": m, "count": int(c)} for (t, m), c in grouped.items()]
    info.examples = card.examples()
    return info


def _count_examples(path: Path, published: pa.Array, info: InstructionsInfo) -> None:
    """Per split: examples by task and records with examples (the published ones only)."""
    table = pq.read_table(path, columns=["id", "split", "task"])
    table = table.filter(pc.is_in(table.column("id"), value_set=published))
    for split in SPLITS:
        part = table.filter(pc.equal(table.column("split"), split))
        if part.num_rows == 0:
            continue
        counts = pc.value_counts(part.column("task")).to_pylist()
        info.counts[split] = {c["values"]: int(c["counts"]) for c in counts}
        info.records[split] = len(pc.unique(part.column("id")))


def _ordered_batches(path: Path, published: pa.Array, tasks: list[str]) -> Iterator[pa.Table]:
    """The published records' examples in (id, task order, example number) order, a batch at
    a time. A batch ends at a record boundary (the last record's rows wait for the next row
    group), so sorting each batch orders the whole file, which is in id order."""
    parquet = pq.ParquetFile(path)
    held: pa.Table | None = None
    last_id: str | None = None
    for number in range(parquet.metadata.num_row_groups):
        table = parquet.read_row_group(number)
        table = table.filter(pc.is_in(table.column("id"), value_set=published))
        if table.num_rows == 0:
            continue
        if held is not None:
            table = pa.concat_tables([held, table])
        ids = table.column("id")
        if last_id is not None and pc.min(ids).as_py() < last_id:
            raise AccountingError(f"{path}: examples out of id order at {pc.min(ids).as_py()}")
        last_id = ids[table.num_rows - 1].as_py()
        tail = pc.equal(ids, last_id)
        held = table.filter(tail)
        ready = table.filter(pc.invert(tail))
        if ready.num_rows:
            yield _order(ready, tasks)
    if held is not None and held.num_rows:
        yield _order(held, tasks)


class _SplitFiles:
    """One split's `<split>-NNNNN-of-NNNNN.parquet` files, written `rows_per_file` rows at a
    time as ordered rows arrive (the number of files is known from the counts)."""

    def __init__(self, folder: Path, split: str, info: InstructionsInfo, recipe: Recipe,
                 lookup: _SignalLookup | None, signal_columns: list[str]):
        self.folder, self.split, self.info, self.lookup = folder, split, info, lookup
        self.signal_columns = signal_columns
        self.rows_per_file = recipe.publish.rows_per_file
        self.row_group_rows = recipe.publish.row_group_rows
        self.signal_dtype = recipe.signals.dtype
        total = sum(info.counts[split].values())
        self.n_files = max(1, math.ceil(total / self.rows_per_file))
        self.pending: list[pa.Table] = []
        self.n_pending = 0
        self.number = 0
        self.n_bytes = 0

    def add(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self.pending.append(rows)
            self.n_pending += rows.num_rows
        while self.n_pending >= self.rows_per_file:
            table = pa.concat_tables(self.pending)
            self._write(table.slice(0, self.rows_per_file))
            rest = table.slice(self.rows_per_file)
            self.pending, self.n_pending = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> None:
        if self.n_pending:
            self._write(pa.concat_tables(self.pending))
        if self.number != self.n_files:
            raise AccountingError(f"instructions {self.split}: wrote {self.number} of "
                                  f"{self.n_files} files")
        self.info.split_bytes[self.split] = self.n_bytes
        self.info.files[self.split] = self.n_files

    def _write(self, chunk: pa.Table) -> None:
        chunk = chunk.combine_chunks()
        if self.lookup is not None:
            signals = self.lookup.take(chunk.column("id").to_pylist())
            for name in self.signal_columns:
                chunk = chunk.append_column(name, signals.column(name))
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.split}-{self.number:05d}-of-{self.n_files:05d}.parquet"
        write_parquet(chunk, path, self.signal_dtype, self.row_group_rows)
        self.n_bytes += path.stat().st_size
        self.number += 1


class _CardExamples:
    """The card's examples from the ordered stream: the first example of as many different
    tasks as there are (recipe order), then the first rows, up to `N_CARD_EXAMPLES`."""

    def __init__(self, tasks: list[str]):
        self.tasks = tasks
        self.first: dict[str, tuple[int, dict]] = {}  # task -> (position, row)
        self.head: list[dict] = []  # the first 2 * N_CARD_EXAMPLES rows
        self.seen = 0

    def add(self, batch: pa.Table) -> None:
        columns = ["example_id", "task", "template_id", "messages"]
        if len(self.head) < 2 * N_CARD_EXAMPLES:
            self.head.extend(batch.slice(0, 2 * N_CARD_EXAMPLES - len(self.head))
                             .select(columns).to_pylist())
        for task in self.tasks:
            if task in self.first:
                continue
            positions = pc.indices_nonzero(pc.equal(batch.column("task"), task))
            if len(positions):
                at = positions[0].as_py()
                self.first[task] = (self.seen + at, batch.slice(at, 1).select(columns)
                                    .to_pylist()[0])
        self.seen += batch.num_rows

    def examples(self) -> list[dict[str, Any]]:
        chosen: list[tuple[int, dict]] = []
        for task in self.tasks:
            if task in self.first:
                chosen.append(self.first[task])
            if len(chosen) == N_CARD_EXAMPLES:
                break
        for row, values in enumerate(self.head):
            if len(chosen) >= N_CARD_EXAMPLES:
                break
            if row not in {position for position, _ in chosen}:
                chosen.append((row, values))
        return [dict(values) for _, values in chosen]


def add_instructions_config(header: dict[str, Any], info: InstructionsInfo) -> None:
    """Declare the `instructions` config (never the default) in the card's YAML header, and
    record the placeholder token so exports can find it (`ecg_instruct.ecg_token`)."""
    header["ecg_instruct"] = {"ecg_token": info.ecg_token, "instructions_layout": info.layout}
    splits = [s for s in SPLITS if s in info.counts]
    if not splits or info.features is None:
        return
    declare_config(header, CONFIG_NAME, info.features,
                   [(s, info.split_bytes[s], sum(info.counts[s].values())) for s in splits])
