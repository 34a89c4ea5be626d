"""The build: index -> reports -> instruct -> signals -> publish, resumable and atomic.

Work happens in `<out>.work/<key>/`, where `key` hashes everything that determines the output
(recipe, sources, split filter, seed, raw folder, templates), so a rerun of the same build resumes
it and a different build never picks up stale shards. Each stage output appears under its final
name only when fully written. The dataset itself is assembled in `<out>.tmp/` and swapped into
place, so `<out>` always holds either the previous dataset or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ecg_instruct import __version__
from ecg_instruct.errors import UserError
from ecg_instruct.index import build_index
from ecg_instruct.instruct.stage import run_instruct
from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.publish.card import card_yaml, render_card
from ecg_instruct.publish.parquet import plain_schema, write_split_files
from ecg_instruct.recipe import Recipe
from ecg_instruct.reports.stage import run_reports, translator_provenance
from ecg_instruct.schema import MEASUREMENT_FIELDS, REJECT_SCHEMA, rejects_frame
from ecg_instruct.signals.leads import CANONICAL_LEADS
from ecg_instruct.signals.quality import QualityConfig
from ecg_instruct.signals.stage import process_shard
from ecg_instruct.sources import source_root
from ecg_instruct.split import SPLITS


@dataclass
class BuildOptions:
    raw_dir: Path
    out: Path
    recipe: Recipe
    sources: list[str]
    splits: list[str] | None = None
    workers: int = 1
    seed: int = 0
    template_dirs: list[Path] | None = None
    progress: bool = True
    sample: bool = False


@dataclass
class BuildSummary:
    out: Path
    counts: pd.DataFrame  # source, split, input, published, rejected
    reasons: pd.DataFrame  # source, stage, reason, count
    totals: dict[str, int] = field(default_factory=dict)


def _atomic_parquet(frame_or_table: pd.DataFrame | pa.Table, path: Path) -> None:
    table = (
        frame_or_table
        if isinstance(frame_or_table, pa.Table)
        else pa.Table.from_pandas(frame_or_table, preserve_index=False)
    )
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _templates_fingerprint(library: TemplateLibrary) -> str:
    digest = hashlib.sha256()
    for template_id, template in sorted(library.templates.items()):
        digest.update(template_id.encode() + b"\0" + template.source.encode() + b"\0")
    return digest.hexdigest()[:16]


def work_key(options: BuildOptions, library: TemplateLibrary) -> str:
    payload = {
        "recipe": options.recipe.fingerprint(),
        "sources": sorted(options.sources),
        "splits": sorted(options.splits) if options.splits else None,
        "seed": options.seed,
        "raw_dir": str(options.raw_dir.resolve()),
        "templates": _templates_fingerprint(library),
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _validate(options: BuildOptions) -> TemplateLibrary:
    """Every configuration check, before anything is written."""
    QualityConfig.from_dict(options.recipe.signals.quality, source=options.recipe.path)
    translator_provenance(options.recipe.reports)
    library = TemplateLibrary(options.template_dirs)
    for task in options.recipe.instruct.tasks:
        if not library.for_task(task):
            raise UserError(f"no templates for task {task!r}", path=options.recipe.path,
                            fix=f"add templates/{task}/*.j2 or remove it from instruct.tasks")
    if options.recipe.instruct.system_template not in library.templates:
        raise UserError(f"system template {options.recipe.instruct.system_template!r} not found",
                        path=options.recipe.path, fix="fix instruct.system_template")
    if options.workers < 1:
        raise UserError("--workers must be at least 1", fix="e.g. --workers 2")
    return library


def _shards(index: pd.DataFrame, shard_size: int) -> list[tuple[str, list[dict]]]:
    """Deterministic shards: per (source, split), in id order, `shard_size` records each."""
    shards = []
    for (source, split), group in index.groupby(["source", "split"], sort=True):
        records = group.sort_values("id")[["id", "source", "path"]].to_dict("records")
        for number, start in enumerate(range(0, len(records), shard_size)):
            shards.append((f"{source}-{split}-{number:05d}", records[start:start + shard_size]))
    return shards


def _run_signals(options: BuildOptions, index: pd.DataFrame, work: Path) -> None:
    folder = work / "signals"
    folder.mkdir(exist_ok=True)
    roots = {source: str(source_root(options.raw_dir, source)) for source in options.sources}
    todo = [(name, records) for name, records in _shards(index, options.recipe.shard_size)
            if not (folder / f"{name}.parquet").exists()]
    total = sum(len(records) for _, records in todo)
    bar = tqdm(total=total, desc="signals", unit="rec", disable=not options.progress)
    cfg = options.recipe.signals
    if options.workers == 1:
        for name, records in todo:
            process_shard(records, roots, cfg, str(folder / f"{name}.parquet"))
            bar.update(len(records))
    else:
        with ProcessPoolExecutor(max_workers=options.workers) as pool:
            futures = {
                pool.submit(process_shard, records, roots, cfg, str(folder / f"{name}.parquet")):
                len(records)
                for name, records in todo
            }
            for future in futures:  # in submission order; each result re-raises worker errors
                future.result()
                bar.update(futures[future])
    bar.close()


def _measurements_column(values: Sequence[object]) -> list[dict | None]:
    out = []
    for value in values:
        data = json.loads(value) if isinstance(value, str) and value else None
        out.append({name: data.get(name) for name in MEASUREMENT_FIELDS} if data else None)
    return out


def _publish_table(
    options: BuildOptions, signals: pa.Table, meta: pd.DataFrame, schema: pa.Schema
) -> pa.Table:
    """Join curated signals with their metadata, reports and messages, in id order."""
    order = signals.column("id").to_pylist()
    rows = meta.set_index("id").loc[order]
    cfg = options.recipe.signals
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


def _swap_into_place(staging: Path, out: Path) -> None:
    """Replace `out` by `staging` so that `out` is never a mixture of the two."""
    backup = out.with_name(out.name + ".old")
    if backup.exists():
        shutil.rmtree(backup)
    if out.exists():
        os.replace(out, backup)
    os.replace(staging, out)
    if backup.exists():
        shutil.rmtree(backup)


def build(options: BuildOptions) -> BuildSummary:
    """Run (or resume) a build and publish it; returns the accounting summary."""
    library = _validate(options)
    recipe = options.recipe
    index, index_rejects = build_index(options.raw_dir, recipe, options.sources, options.splits)
    key = work_key(options, library)
    work = options.out.with_name(options.out.name + ".work") / key
    work.mkdir(parents=True, exist_ok=True)
    stored_index = index.copy()
    stored_index["measurements"] = [
        json.dumps(v, sort_keys=True) if isinstance(v, dict) else "" for v in index["measurements"]
    ]
    if not (work / "index.parquet").exists():
        _atomic_parquet(index_rejects.astype(str), work / "index_rejects.parquet")
        _atomic_parquet(stored_index, work / "index.parquet")
    index = pd.read_parquet(work / "index.parquet")

    records = index.to_dict("records")
    if not (work / "reports.parquet").exists():
        statements = None
        if recipe.reports.report_style == "labels" and "ptbxl" in options.sources:
            from ecg_instruct.sources.ptbxl import read_statements

            statements = read_statements(source_root(options.raw_dir, "ptbxl"))
        reports, rejects = run_reports(
            tqdm(records, desc="reports", unit="rec", disable=not options.progress),
            recipe.reports, statements,
        )
        _atomic_parquet(rejects_frame(rejects), work / "reports_rejects.parquet")
        _atomic_parquet(reports, work / "reports.parquet")
    reports = pd.read_parquet(work / "reports.parquet")

    with_reports = index.merge(reports, on="id", how="inner")
    if not (work / "instruct.parquet").exists():
        instruct = run_instruct(with_reports.to_dict("records"), library, recipe.instruct,
                                options.seed)
        _atomic_parquet(instruct, work / "instruct.parquet")
    instruct = pd.read_parquet(work / "instruct.parquet")

    _run_signals(options, index[index["id"].isin(reports["id"])], work)
    meta = with_reports.merge(instruct, on="id", how="inner")
    return _publish(options, index, meta, work, library)


def _publish(
    options: BuildOptions, index: pd.DataFrame, meta: pd.DataFrame, work: Path,
    library: TemplateLibrary,
) -> BuildSummary:
    recipe, cfg = options.recipe, options.recipe.signals
    staging = options.out.with_name(options.out.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    reject_tables = [pq.read_table(work / "index_rejects.parquet"),
                     pq.read_table(work / "reports_rejects.parquet")]
    split_counts: dict[str, dict[str, int]] = {}
    published_ids: list[str] = []
    file_counts: dict[tuple[str, str], int] = {}
    split_bytes: dict[str, dict[str, int]] = {}
    total_bytes = 0
    for source in sorted(index["source"].unique()):
        for split in SPLITS:
            names = sorted(p for p in (work / "signals").glob(f"{source}-{split}-*.parquet"))
            if not names:
                continue
            for name in names:
                reject_tables.append(pq.read_table(f"{name}.rejects"))
            signals = pa.concat_tables([pq.read_table(name) for name in names])
            if signals.num_rows == 0:
                continue
            schema = plain_schema(cfg.n_samples, cfg.dtype, signals.schema.field("signal").type)
            table = _publish_table(options, signals, meta, schema)
            paths = write_split_files(table, staging / "data" / source, split,
                                      recipe.publish.rows_per_file, cfg.dtype,
                                      recipe.publish.row_group_rows)
            n_bytes = sum(p.stat().st_size for p in paths)
            total_bytes += n_bytes
            split_bytes.setdefault(source, {})[split] = n_bytes
            file_counts[(source, split)] = len(paths)
            split_counts.setdefault(source, {})[split] = table.num_rows
            published_ids.extend(table.column("id").to_pylist())
    rejects = pa.concat_tables([t.cast(REJECT_SCHEMA) for t in reject_tables]).to_pandas()
    rejects = rejects.sort_values(["id", "stage"], kind="stable").reset_index(drop=True)
    summary = _account(options, index, rejects, published_ids)
    _atomic_parquet(pa.Table.from_pandas(rejects, schema=REJECT_SCHEMA, preserve_index=False),
                    staging / "rejects.parquet")
    if not split_counts:
        raise UserError("no record survived the build; see the rejects summary above",
                        path=options.raw_dir, fix="check the input mirror and the recipe")
    header = card_yaml(split_counts, cfg.n_samples, cfg.dtype, split_bytes)
    context = {
        "recipe": recipe, "fingerprint": recipe.fingerprint(), "seed": options.seed,
        "version": __version__, "out_name": f"./{options.out.name}",
        "n_leads": len(CANONICAL_LEADS), "n_samples": cfg.n_samples, "leads": CANONICAL_LEADS,
        "split_rows": [
            {"source": s, "split": sp, "records": n, "files": file_counts[(s, sp)]}
            for s in sorted(split_counts) for sp, n in split_counts[s].items()
        ],
        "reject_rows": summary.reasons.to_dict("records"),
        "totals": summary.totals,
        "bytes_per_record": round(total_bytes / max(1, len(published_ids))),
        "translation": translator_provenance(recipe.reports),
        "n_templates": len(library.for_task("report")),
        "sample": options.sample,
    }
    (staging / "README.md").write_text(render_card(options.out, context, header),
                                       encoding="utf-8")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    _swap_into_place(staging, options.out)
    return summary


def _account(
    options: BuildOptions, index: pd.DataFrame, rejects: pd.DataFrame, published: list[str]
) -> BuildSummary:
    """records in = published + rejected, per source; anything else is a bug and fails loudly."""
    duplicated = set(rejects["id"][rejects["id"].duplicated()]) | (set(published) & set(rejects["id"]))
    if duplicated or len(set(published)) != len(published):
        raise RuntimeError(f"accounting violation: records both published and rejected or "
                           f"counted twice: {sorted(duplicated)[:5]}")
    index_ids = set(index["id"])
    missing = index_ids - set(published) - set(rejects["id"])
    if missing:
        raise RuntimeError(f"accounting violation: {len(missing)} records neither published nor "
                           f"rejected, e.g. {sorted(missing)[:5]}")
    split_of = dict(zip(index["id"], index["split"], strict=True))
    rows = []
    published_set = set(published)
    for source in sorted(set(index["source"]) | set(rejects["source"])):
        ids = {i for i in index_ids if i.startswith(source + "/")}
        index_rejects = rejects[(rejects["source"] == source) & (rejects["stage"] == "index")]
        for split in [*SPLITS, "(unassigned)"]:
            if split == "(unassigned)":
                n_in, n_pub, n_rej = len(index_rejects), 0, len(index_rejects)
            else:
                in_split = {i for i in ids if split_of[i] == split}
                n_in = len(in_split)
                n_pub = len(in_split & published_set)
                n_rej = n_in - n_pub
            if n_in:
                rows.append({"source": source, "split": split, "input": n_in,
                             "published": n_pub, "rejected": n_rej})
    counts = pd.DataFrame(rows, columns=["source", "split", "input", "published", "rejected"])
    reasons = (
        rejects.groupby(["source", "stage", "reason"]).size().reset_index(name="count")
        if len(rejects) else pd.DataFrame(columns=["source", "stage", "reason", "count"])
    )
    totals = {"input": int(counts["input"].sum()), "published": len(published),
              "rejected": len(rejects)}
    if totals["input"] != totals["published"] + totals["rejected"]:
        raise RuntimeError(f"accounting violation: {totals}")
    return BuildSummary(options.out, counts, reasons, totals)
