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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets import DatasetInfo, Features, List, Value

from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.publish.features import published_features
from ecg_instruct.publish.parquet import write_parquet
from ecg_instruct.recipe import Recipe
from ecg_instruct.split import SPLITS

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
            if path.parent.name == CONFIG_NAME:
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
    """Write `data/instructions/` into the staging folder; return its accounting."""
    cfg = recipe.instruct
    tasks = list(cfg.tasks)
    info = InstructionsInfo(layout=cfg.layout, ecg_token=cfg.ecg_token, tasks=tasks,
                            n_templates={t: len(library.for_task(t)) for t in tasks})
    examples = pq.read_table(work / "instruct_examples.parquet")
    keep = pc.is_in(examples.column("id"), value_set=pa.array(sorted(set(published_ids)),
                                                              pa.string()))
    table_all = _order(examples.filter(keep), tasks)
    signal_dtype = recipe.signals.dtype
    info.features = instruction_features(cfg.layout, recipe.signals.n_samples, signal_dtype)
    base = instruction_features("records", recipe.signals.n_samples, signal_dtype)
    table_all = table_all.cast(base.arrow_schema.remove_metadata())
    signal_columns = ["signal"] + (["adc_gain"] if signal_dtype == "int16" else [])
    folder = staging / "data" / CONFIG_NAME
    for split in SPLITS:
        table = table_all.filter(pc.equal(table_all.column("split"), split))
        if table.num_rows == 0:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        lookup = _SignalLookup(staging, split, ["id", *signal_columns]) \
            if cfg.layout == "flat" else None
        rows_per_file = recipe.publish.rows_per_file
        n_files = max(1, math.ceil(table.num_rows / rows_per_file))
        n_bytes = 0
        for number in range(n_files):
            chunk = table.slice(number * rows_per_file, rows_per_file)
            if lookup is not None:
                signals = lookup.take(chunk.column("id").to_pylist())
                for name in signal_columns:
                    chunk = chunk.append_column(name, signals.column(name))
            path = folder / f"{split}-{number:05d}-of-{n_files:05d}.parquet"
            write_parquet(chunk, path, signal_dtype, recipe.publish.row_group_rows)
            n_bytes += path.stat().st_size
        info.split_bytes[split] = n_bytes
        info.files[split] = n_files
        counts = pc.value_counts(table.column("task")).to_pylist()
        info.counts[split] = {c["values"]: int(c["counts"]) for c in counts}
        info.records[split] = len(pc.unique(table.column("id")))
    skips = pd.read_parquet(work / "instruct_skips.parquet")
    if len(skips):
        skips = skips.assign(missing=skips["missing"].where(
            skips["template_id"] != "(none applicable)", "(no applicable template)"))
        grouped = skips.groupby(["task", "missing"], sort=True)["count"].sum()
        info.skips = [{"task": t, "missing": m, "count": int(c)} for (t, m), c in grouped.items()]
    info.examples = _card_examples(table_all, tasks)
    return info


def _card_examples(table: pa.Table, tasks: list[str]) -> list[dict[str, Any]]:
    """Three examples for the card: the first of as many different tasks as there are."""
    chosen: list[int] = []
    task_column = table.column("task")
    for task in tasks:
        positions = pc.indices_nonzero(pc.equal(task_column, task))
        if len(positions):
            chosen.append(positions[0].as_py())
        if len(chosen) == N_CARD_EXAMPLES:
            break
    for row in range(min(table.num_rows, 2 * N_CARD_EXAMPLES)):
        if len(chosen) >= N_CARD_EXAMPLES:
            break
        if row not in chosen:
            chosen.append(row)
    rows = table.take(pa.array(chosen, pa.int64())).to_pylist() if chosen else []
    return [{"example_id": r["example_id"], "task": r["task"], "template_id": r["template_id"],
             "messages": r["messages"]} for r in rows]


def add_instructions_config(header: dict[str, Any], info: InstructionsInfo) -> None:
    """Declare the `instructions` config (never the default) in the card's YAML header, and
    record the placeholder token so exports can find it (`ecg_instruct.ecg_token`)."""
    header["ecg_instruct"] = {"ecg_token": info.ecg_token, "instructions_layout": info.layout}
    splits = [s for s in SPLITS if s in info.counts]
    if not splits or info.features is None:
        return
    header["configs"].append({
        "config_name": CONFIG_NAME,
        "data_files": [{"split": s, "path": f"data/{CONFIG_NAME}/{s}-*.parquet"} for s in splits],
    })
    header["dataset_info"].append({
        "config_name": CONFIG_NAME,
        **DatasetInfo(features=info.features)._to_yaml_dict(),
        "splits": [{"name": s, "num_bytes": info.split_bytes[s],
                    "num_examples": sum(info.counts[s].values())} for s in splits],
    })
