"""The build: index -> reports -> instruct -> signals -> publish, resumable and atomic.

Work happens in `<out>.work/<key>/`, where `key` hashes everything that determines the output
(recipe, sources, split filter, seed, raw folder, templates), so a rerun of the same build resumes
it and a different build never picks up stale shards. Each stage output appears under its final
name only when fully written. The dataset itself is assembled in `<out>.tmp/` and swapped into
place, so `<out>` always holds either the previous dataset or the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute in _write_split
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ecg_instruct import __version__
from ecg_instruct.accounting import AccountingError, account, stage_ledger
from ecg_instruct.duplicates import find_duplicates_in_shards
from ecg_instruct.errors import UserError
from ecg_instruct.index import build_index
from ecg_instruct.instruct.fields import load_statement_tables
from ecg_instruct.instruct.stage import write_instruct_stage
from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.paths import recover_interrupted_swap, replace_dir
from ecg_instruct.plot.card import write_card_figures
from ecg_instruct.publish.card import card_yaml, render_card
from ecg_instruct.publish.fidelity import build_fidelity
from ecg_instruct.publish.instructions import add_instructions_config, publish_instructions
from ecg_instruct.publish.parquet import plain_schema, write_parquet
from ecg_instruct.recipe import Recipe
from ecg_instruct.reports.stage import REPORT_COLUMNS, run_reports, translator_provenance
from ecg_instruct.schema import MEASUREMENT_FIELDS, REJECT_SCHEMA, rejects_frame
from ecg_instruct.signals.heap import retain_freed_memory, retained_heap
from ecg_instruct.signals.leads import CANONICAL_LEADS
from ecg_instruct.signals.quality import QualityConfig
from ecg_instruct.signals.stage import (
    WORK_SHARD_SUFFIX,
    process_shard,
    read_work_shard,
    work_shard_fingerprints,
    work_shard_ids,
)
from ecg_instruct.sources import source_root
from ecg_instruct.split import SPLITS
from ecg_instruct.validate import PUBLISHED_NAMES, validate_build


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
    stages: pd.DataFrame | None = None  # source, stage, input, passed, rejected
    instructions: Any = None  # publish.instructions.InstructionsInfo: examples per task/split
    fidelity: Any = None  # publish.fidelity.Fidelity: PTB-XL report vs SCP label agreement


def _parquet_bytes(frame_or_table: pd.DataFrame | pa.Table) -> bytes:
    table = (
        frame_or_table
        if isinstance(frame_or_table, pa.Table)
        else pa.Table.from_pandas(frame_or_table, preserve_index=False)
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _atomic_write(data: bytes, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _atomic_parquet(frame_or_table: pd.DataFrame | pa.Table, path: Path) -> None:
    _atomic_write(_parquet_bytes(frame_or_table), path)


def _templates_fingerprint(library: TemplateLibrary) -> str:
    digest = hashlib.sha256()
    for template_id, template in sorted(library.templates.items()):
        digest.update(template_id.encode() + b"\0" + template.source.encode() + b"\0")
    return digest.hexdigest()[:16]


def work_key(options: BuildOptions, library: TemplateLibrary, content: str = "") -> str:
    """What determines the work folder: a different build never resumes another's shards.

    `content` is a digest of the index the build starts from, so that editing the metadata of a
    mirror (not only moving it) starts a fresh work folder instead of mixing old and new shards.
    """
    payload = {
        "recipe": options.recipe.fingerprint(),
        "sources": sorted(options.sources),
        "splits": sorted(options.splits) if options.splits else None,
        "seed": options.seed,
        "raw_dir": str(options.raw_dir.resolve()),
        "templates": _templates_fingerprint(library),
        "version": __version__,
        "index": content,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _shards(
    index: pd.DataFrame, shard_size: int, columns: Sequence[str] = ("id", "source", "path"),
) -> list[tuple[str, list[dict]]]:
    """Deterministic shards: per (source, split), in id order, `shard_size` records each."""
    shards = []
    for (source, split), group in index.groupby(["source", "split"], sort=True):
        records = group.sort_values("id")[list(columns)].to_dict("records")
        for number, start in enumerate(range(0, len(records), shard_size)):
            shards.append((f"{source}-{split}-{number:05d}", records[start:start + shard_size]))
    return shards


def _worker_init(parent: int, retain_heap: bool = False) -> None:
    """Signals workers: Ctrl-C is the parent's to handle, and a worker outlives no parent.

    Without the watchdog, `kill -9` of the build leaves its workers running to the end of their
    queue; their shards would still be correct (same bytes, atomic renames) but the CPU is not
    theirs to use. ``retain_heap``: keep freed memory for reuse (see ``signals/heap.py``).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if retain_heap:
        retain_freed_memory()

    def watchdog() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            threading.Event().wait(1.0)

    threading.Thread(target=watchdog, daemon=True).start()


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel queued shards and stop running ones now: unfinished shards are never marked done."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(5)
    # Let the executor's manager thread notice and close its pipes now: left running, it races
    # the interpreter's exit hook, which then prints a "Bad file descriptor" traceback.
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(10)
        with contextlib.suppress(Exception):  # CPython internals; harmless if they change
            import concurrent.futures.process as futures_process

            futures_process._threads_wakeups.pop(manager, None)


def _run_shards(
    options: BuildOptions, desc: str, function, tasks: list[tuple[tuple, int]],
    retain_heap: bool = False,
) -> None:
    """Run `function(*args)` for every (args, n_records) task, in worker processes if asked.

    Each task writes its own outputs atomically; on any error (or Ctrl-C) queued tasks are
    cancelled and running ones stopped, so what is on disk is only ever whole shards.
    ``retain_heap``: freed memory stays in the heap of the processes doing the work for the
    duration (see ``signals/heap.py``).
    """
    bar = tqdm(total=sum(n for _, n in tasks), desc=desc, unit="rec",
               disable=not options.progress)
    if options.workers == 1 or len(tasks) <= 1:
        with retained_heap() if retain_heap else contextlib.nullcontext():
            for args, n in tasks:
                function(*args)
                bar.update(n)
    else:
        pool = ProcessPoolExecutor(max_workers=min(options.workers, len(tasks)),
                                   initializer=_worker_init,
                                   initargs=(os.getpid(), retain_heap))
        try:
            futures = {pool.submit(function, *args): n for args, n in tasks}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()  # re-raises a worker's exception here, stopping the pool
                    bar.update(futures[future])
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
    bar.close()


def _run_signals(options: BuildOptions, index: pd.DataFrame, work: Path) -> None:
    folder = work / "signals"
    folder.mkdir(exist_ok=True)
    roots = {source: str(source_root(options.raw_dir, source)) for source in options.sources}
    cfg = options.recipe.signals
    tasks = [((records, roots, cfg, str(folder / f"{name}{WORK_SHARD_SUFFIX}")), len(records))
             for name, records in _shards(index, options.recipe.shard_size)
             if not _signal_shard_done(folder / f"{name}{WORK_SHARD_SUFFIX}")]
    if tasks:
        _prepare_kernels(options)
    _run_shards(options, "signals", process_shard, tasks, retain_heap=True)


def _signal_shard_done(path: Path) -> bool:
    """Whether a signals shard and its rejects are in place and whole.

    Signal shards are not fsynced, unlike the other work files: an fsync per shard cost
    20-45 us per record on the VMs we measured, 10-20 % of the stage. After a power cut a
    renamed shard can therefore be empty or cut short; it is found unreadable here and done
    again, so a resumed build still gives the bytes of an uninterrupted one.
    """
    if not path.exists():
        return False
    try:
        work_shard_fingerprints(path)  # KeyError: written before fingerprints existed
        pq.read_metadata(f"{path}.rejects")
    except (OSError, KeyError, pa.ArrowException):
        return False
    return True


def _prepare_kernels(options: BuildOptions) -> None:
    """Compile the signal kernels here, once, before any worker starts: workers then load
    them from numba's on-disk cache instead of each compiling them at the same time. Only
    the first build after installation compiles (~15 s); it says so, since the progress bar
    would otherwise sit still."""
    import time

    from ecg_instruct.signals.kernels import warm_up

    started = time.perf_counter()
    warm_up()
    elapsed = time.perf_counter() - started
    if elapsed > 3:
        tqdm.write(f"compiled the signal kernels in {elapsed:.0f} s (once: cached for later builds)",
                   file=sys.stderr)


def reports_shard(records: list[dict], cfg, statements: pd.DataFrame | None, output: str) -> None:
    """The reports stage for one shard: `<output>.rejects`, then `<output>` (the done marker)."""
    reports, rejects = run_reports(records, cfg, statements)
    _atomic_parquet(rejects_frame(rejects), Path(output + ".rejects"))
    _atomic_parquet(reports, Path(output))


#: What the reports stage reads of an index row.
REPORT_INPUT_COLUMNS = ("id", "source", "report_raw", "scp_codes")


def _run_reports(
    options: BuildOptions, index: pd.DataFrame, statements: pd.DataFrame | None, work: Path,
) -> None:
    """Reports in resumable, parallel shards, then one `reports.parquet` (id order) + rejects.

    The translator costs about a millisecond per report: 800,000 records are minutes of work
    that a kill must not throw away, so this stage is sharded like the signals.
    """
    folder = work / "reports"
    folder.mkdir(exist_ok=True)
    shards = _shards(index, options.recipe.shard_size, REPORT_INPUT_COLUMNS)
    tasks = [((records, options.recipe.reports, statements, str(folder / f"{name}.parquet")),
              len(records))
             for name, records in shards if not (folder / f"{name}.parquet").exists()]
    _run_shards(options, "reports", reports_shard, tasks)
    names = [folder / f"{name}.parquet" for name, _ in shards]
    frames = [frame for frame in (pd.read_parquet(name) for name in names) if len(frame)]
    reports = (pd.concat(frames, ignore_index=True) if frames
               else pd.DataFrame(columns=list(REPORT_COLUMNS)))
    reports = reports.sort_values("id", kind="stable").reset_index(drop=True)
    rejects = pa.concat_tables([REJECT_SCHEMA.empty_table(),
                                *(_read_rejects(Path(f"{name}.rejects")) for name in names)])
    _atomic_parquet(rejects, work / "reports_rejects.parquet")
    _atomic_parquet(reports, work / "reports.parquet")


def _measurements_column(values: Sequence[object]) -> list[dict | None]:
    out = []
    for value in values:
        data = json.loads(value) if isinstance(value, str) and value else None
        out.append({name: data.get(name) for name in MEASUREMENT_FIELDS} if data else None)
    return out


def _publish_table(
    options: BuildOptions, signals: pa.Table, meta_by_id: pd.DataFrame, schema: pa.Schema
) -> pa.Table:
    """Join curated signals with their metadata, reports and messages, in id order."""
    order = signals.column("id").to_pylist()
    rows = meta_by_id.loc[order]
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
    """Replace `out` by `staging` so that `out` is never a mixture of the two (see paths.py)."""
    replace_dir(staging, out)


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """One build per output folder at a time (released by the kernel even on kill -9)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, builds must not overlap
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError("another build is writing this output folder", path=folder.parent,
                            fix="wait for it to finish, or use another --out") from None
        yield


def _remove_partial_files(folder: Path) -> None:
    """Temporary files of a killed run (`*.tmp-<pid>`): never done, never read."""
    for path in folder.rglob("*.tmp-*"):
        if path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def build(options: BuildOptions) -> BuildSummary:
    """Run (or resume) a build and publish it; returns the accounting summary."""
    if options.out.is_symlink():  # publish where it points: swapping would replace the link
        options = dataclasses.replace(options, out=options.out.resolve())
    library = validate_build(options)
    recipe = options.recipe
    statements = None
    if recipe.reports.report_style == "labels" and "ptbxl" in options.sources:
        from ecg_instruct.sources.ptbxl import read_statements

        statements = read_statements(source_root(options.raw_dir, "ptbxl"))
    index, index_rejects = build_index(options.raw_dir, recipe, options.sources, options.splits)
    stored_index = index.copy()
    stored_index["measurements"] = [
        json.dumps(v, sort_keys=True) if isinstance(v, dict) else "" for v in index["measurements"]
    ]
    index_bytes = _parquet_bytes(stored_index)
    rejects_bytes = _parquet_bytes(index_rejects.astype(str))
    content = hashlib.sha256(index_bytes + b"\0" + rejects_bytes).hexdigest()[:16]
    key = work_key(options, library, content)
    root = options.out.with_name(options.out.name + ".work")
    recover_interrupted_swap(options.out)
    with _build_lock(root):
        work = root / key
        work.mkdir(parents=True, exist_ok=True)
        _remove_partial_files(work)
        if not (work / "index.parquet").exists():
            _atomic_write(rejects_bytes, work / "index_rejects.parquet")
            _atomic_write(index_bytes, work / "index.parquet")
        index = pd.read_parquet(work / "index.parquet")

        if not (work / "reports.parquet").exists():
            _run_reports(options, index, statements, work)
        reports = pd.read_parquet(work / "reports.parquet")

        with_reports = index.merge(reports, on="id", how="inner")
        if not (work / "instruct.parquet").exists():
            write_instruct_stage(with_reports.to_dict("records"), library, recipe.instruct,
                                 options.seed,
                                 load_statement_tables(options.raw_dir, options.sources), work,
                                 workers=options.workers)
        instruct = pd.read_parquet(work / "instruct.parquet")

        _run_signals(options, index[index["id"].isin(instruct["id"])], work)
        meta = with_reports.merge(instruct, on="id", how="inner")
        summary = _publish(options, index, meta, work, library)
        _remove_stale_work(root, keep=key)
        return summary


def _remove_stale_work(root: Path, keep: str) -> None:
    """Work folders of other builds into this `--out` (another seed, recipe or split filter).

    Their output has just been replaced, so their shards (about the size of a dataset each) can
    only waste disk; the current one is kept so that rerunning this build is cheap.
    """
    for folder in root.iterdir():
        if folder.is_dir() and folder.name != keep:
            shutil.rmtree(folder, ignore_errors=True)


def _read_rejects(path: Path) -> pa.Table:
    return pq.read_table(path).cast(REJECT_SCHEMA)


def _write_split(
    options: BuildOptions, shard_paths: list[Path], total: int, meta_by_id: pd.DataFrame,
    folder: Path, split: str, exclude: frozenset[str] = frozenset(),
) -> tuple[list[Path], list[str]]:
    """Stream one split's signal shards (`total` records kept in all) into
    `<split>-NNNNN-of-NNNNN.parquet` files.

    At most one output file's rows (plus one shard) are in memory, whatever the split's size, and
    the files do not depend on how records were sharded (`combine_chunks` before writing).
    """
    recipe, cfg = options.recipe, options.recipe.signals
    if total == 0:
        return [], []
    rows_per_file = recipe.publish.rows_per_file
    n_files = max(1, math.ceil(total / rows_per_file))
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    ids: list[str] = []
    buffer: list[pa.Table] = []
    buffered = 0

    def flush(table: pa.Table) -> None:
        path = folder / f"{split}-{len(paths):05d}-of-{n_files:05d}.parquet"
        write_parquet(table.combine_chunks(), path, cfg.dtype, recipe.publish.row_group_rows)
        paths.append(path)

    schema = None
    for shard_path in shard_paths:
        signals = read_work_shard(shard_path, cfg.dtype)
        if exclude:  # cross-source duplicates: published under the other id
            signals = signals.filter(pa.compute.invert(
                pa.compute.is_in(signals.column("id"), value_set=pa.array(sorted(exclude)))))
        if signals.num_rows == 0:
            continue
        if schema is None:
            schema = plain_schema(cfg.n_samples, cfg.dtype, signals.schema.field("signal").type)
        table = _publish_table(options, signals, meta_by_id, schema)
        ids.extend(table.column("id").to_pylist())
        buffer.append(table)
        buffered += table.num_rows
        while buffered >= rows_per_file:
            joined = pa.concat_tables(buffer)
            flush(joined.slice(0, rows_per_file))
            rest = joined.slice(rows_per_file)
            buffer, buffered = ([rest] if rest.num_rows else []), rest.num_rows
    if buffered:
        flush(pa.concat_tables(buffer))
    if len(paths) != n_files:
        raise AccountingError(f"{folder}: wrote {len(paths)} files for {split}, expected {n_files}")
    return paths, ids


def _publish(
    options: BuildOptions, index: pd.DataFrame, meta: pd.DataFrame, work: Path,
    library: TemplateLibrary,
) -> BuildSummary:
    recipe, cfg = options.recipe, options.recipe.signals
    staging = options.out.with_name(options.out.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    reject_tables = {"index": _read_rejects(work / "index_rejects.parquet"),
                     "reports": _read_rejects(work / "reports_rejects.parquet"),
                     "instruct": _read_rejects(work / "instruct_rejects.parquet")}
    signal_rejects: list[pa.Table] = []
    signal_ids: list[str] = []
    split_counts: dict[str, dict[str, int]] = {}
    published_ids: list[str] = []
    file_counts: dict[tuple[str, str], int] = {}
    split_bytes: dict[str, dict[str, int]] = {}
    total_bytes = 0
    meta_by_id = meta.set_index("id")
    duplicates = find_duplicates_in_shards(sorted((work / "signals").glob(f"*{WORK_SHARD_SUFFIX}")))
    excluded = frozenset(duplicates.kept_for)
    signal_rejects.append(duplicates.rejects())
    for source in sorted(index["source"].unique()):
        for split in SPLITS:
            names = sorted((work / "signals").glob(f"{source}-{split}-*{WORK_SHARD_SUFFIX}"))
            if not names:
                continue
            kept_before = len(signal_ids)
            for name in names:
                signal_rejects.append(_read_rejects(Path(f"{name}.rejects")))
                signal_ids.extend(i for i in work_shard_ids(name) if i not in excluded)
            paths, ids = _write_split(options, names, len(signal_ids) - kept_before, meta_by_id,
                                      staging / "data" / source, split, excluded)
            if not paths:
                continue
            n_bytes = sum(p.stat().st_size for p in paths)
            total_bytes += n_bytes
            split_bytes.setdefault(source, {})[split] = n_bytes
            file_counts[(source, split)] = len(paths)
            split_counts.setdefault(source, {})[split] = len(ids)
            published_ids.extend(ids)
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
    _atomic_parquet(pa.Table.from_pandas(rejects, schema=REJECT_SCHEMA, preserve_index=False),
                    staging / "rejects.parquet")
    if not split_counts:  # the CLI prints no summary on an error: the reasons go in the line
        reasons = ", ".join(f"{reason} {n}" for reason, n in
                            rejects["reason"].value_counts().head(5).items()) or "none"
        raise UserError(f"no record survived the build (rejected: {reasons}; every record with "
                        f"its reason in {staging / 'rejects.parquet'})",
                        path=options.raw_dir, fix="check the input mirror and the recipe")
    header = card_yaml(split_counts, cfg.n_samples, cfg.dtype, split_bytes)
    instructions = publish_instructions(staging, work, published_ids, recipe, library)
    summary.fidelity = build_fidelity(meta, published_ids, options.raw_dir, options.sources)
    add_instructions_config(header, instructions)
    context = {
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
        "unknown_codes": _unknown_codes(meta, published_ids),
    }
    _atomic_write(render_card(options.out, context, header).encode("utf-8"), staging / "README.md")
    unknown = {path.name for path in staging.iterdir()} - PUBLISHED_NAMES
    if unknown:  # a developer guard: `validate._validate_locations` must recognise our own datasets
        raise RuntimeError(f"publish wrote {sorted(unknown)} at the top of the dataset; add them "
                           f"to validate.PUBLISHED_NAMES")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    _swap_into_place(staging, options.out)
    summary.instructions = instructions
    return summary


def _unknown_codes(meta: pd.DataFrame, published_ids: list[str]) -> list[dict[str, object]]:
    """Label codes of published Challenge 2021 / CODE-15% records that no packaged table names."""
    from ecg_instruct.reports.code_reports import unknown_code_counts

    rows = meta[meta["id"].isin(set(published_ids))]
    return unknown_code_counts(rows["source"].tolist(), [list(v) for v in rows["labels"]])


def _ids_of(path: Path) -> list[str]:
    return pq.read_table(path, columns=["id"]).column("id").to_pylist()


