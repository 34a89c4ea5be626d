"""The build: index -> reports -> instruct -> signals -> publish, resumable and atomic.

This module only orders the stages and decides what work is done; the stages live in their
packages (`reports/`, `instruct/`, `signals/`, `publish/`) and every parallel step runs through
one executor (`ecg_instruct.build.executor`).

Work happens in `<out>.work/<key>/`, where `key` hashes everything that determines the output
(recipe, sources, split filter, seed, raw folder, templates, the index), so a rerun of the same
build resumes it and a different build never picks up stale shards. A signals shard's file name
also carries a digest of its records' `.hea`/`.dat` sizes and mtimes, so a rerun redoes exactly
the shards whose signal files changed. Each stage output appears under its final name only when
fully written. The dataset itself is assembled in `<out>.tmp/` and swapped into place, so `<out>`
always holds either the previous dataset or the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ecg_instruct import __version__
from ecg_instruct.build.accounting import AccountingError
from ecg_instruct.build.executor import run_tasks
from ecg_instruct.build.options import BuildOptions, BuildSummary
from ecg_instruct.build.validate import validate_build
from ecg_instruct.build.workio import (
    atomic_parquet,
    atomic_write,
    disk_full,
    is_disk_full,
    writing,
)
from ecg_instruct.errors import UserError
from ecg_instruct.index.split import SPLITS
from ecg_instruct.index.stored import stored_index_bytes
from ecg_instruct.index.table import build_index
from ecg_instruct.index.windows import split_window
from ecg_instruct.instruct.fields import load_statement_tables
from ecg_instruct.instruct.stage import write_instruct_stage
from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.paths import UnsafePath, recover_interrupted_swap, safe_join_str
from ecg_instruct.publish.stage import SignalShard, publish, read_rejects
from ecg_instruct.reports.stage import REPORT_COLUMNS, run_reports
from ecg_instruct.schema import REJECT_SCHEMA, rejects_frame
from ecg_instruct.signals.curate import (
    WORK_SHARD_SUFFIX,
    process_shard,
    work_shard_fingerprints,
    work_shard_ids,
)
from ecg_instruct.sources import source_root
from ecg_instruct.sources.code15 import ROW_SEPARATOR as CODE15_ROW_SEPARATOR

__all__ = ["AccountingError", "BuildOptions", "BuildSummary", "build", "work_key"]

#: Work folders of other builds into the same `--out` kept after a build (newest first): a
#: switch between a few seeds or filters stays cheap, and the disk holds a bounded number.
KEEP_OTHER_WORK = 2
#: In `<out>.work/`: which sources and splits the dataset now in `<out>` was built from.
PUBLISHED_MARKER = "published.json"
#: In the work folder: wall seconds per stage of the last run (not part of the dataset).
TIMINGS_FILE = "timings.json"


def _templates_fingerprint(library: TemplateLibrary) -> str:
    digest = hashlib.sha256()
    for template_id, template in sorted(library.templates.items()):
        digest.update(template_id.encode() + b"\0" + template.source.encode() + b"\0")
    return digest.hexdigest()[:16]


def work_key(options: BuildOptions, library: TemplateLibrary, content: str = "") -> str:
    """What determines the work folder: a different build never resumes another's shards.

    `content` is a digest of the index the build starts from, so that editing the metadata of a
    mirror (not only moving it) starts a fresh work folder instead of mixing old and new shards.
    The signal files are not in it (hashing 800k of them would cost minutes): each signals
    shard carries its own inputs' digest instead (`inputs_digest`).
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


def inputs_digest(records: Sequence[dict], roots: dict[str, str]) -> str:
    """Size and mtime (ns) of each record's signal files: a cheap identity of a shard's signal
    inputs (a few `stat` calls per record, no reading), so a re-downloaded or damaged file makes
    its shard be done again. WFDB records: the `.hea` and the same-named `.dat` (PTB-XL,
    MIMIC-IV-ECG) or `.mat` (Challenge 2021); a window (`<path>@wNNN`) is its record's files;
    CODE-15% (`<part>.hdf5#<row>`): the part file. A signal file a header names otherwise is not
    covered (no record of these releases has one)."""
    digest = hashlib.blake2b(digest_size=8)
    for record in records:
        path, _ = split_window(record["path"])
        if record["source"] == "code15":
            path, suffixes = path.partition(CODE15_ROW_SEPARATOR)[0], ("",)
        else:
            suffixes = (".hea", ".mat" if record["source"] == "cinc2021" else ".dat")
        try:
            base = safe_join_str(roots[record["source"]], path)
        except UnsafePath:
            digest.update(b"unsafe\0")
            continue
        for suffix in suffixes:
            try:
                status = os.stat(base + suffix)
            except OSError:
                digest.update(b"-\0")
            else:
                digest.update(b"%d:%d\0" % (status.st_size, status.st_mtime_ns))
    return digest.hexdigest()


def _shards(
    index: pd.DataFrame, shard_size: int, columns: Sequence[str] = ("id", "source", "path"),
) -> list[tuple[str, pd.DataFrame]]:
    """Deterministic shards: per (source, split), in id order, `shard_size` records each.

    Frames (a few columns), not dicts: a stage turns a shard into records only when its task is
    queued, so this process never holds every record as a dict."""
    shards = []
    for (source, split), group in index.groupby(["source", "split"], sort=True):
        group = group.sort_values("id")[list(columns)]
        for number, start in enumerate(range(0, len(group), shard_size)):
            shards.append((f"{source}-{split}-{number:05d}", group.iloc[start:start + shard_size]))
    return shards


def signals_shard(records: list[dict], roots: dict[str, str], cfg, output: str) -> None:
    """The signals stage for one shard (a task of the executor); a full disk names the shard."""
    with writing(output):
        process_shard(records, roots, cfg, output)


def _run_signals(options: BuildOptions, index: pd.DataFrame, work: Path) -> list[SignalShard]:
    """Curate every shard not yet done for its current inputs; returns all shards in order."""
    folder = work / "signals"
    folder.mkdir(exist_ok=True)
    roots = {source: str(source_root(options.raw_dir, source)) for source in options.sources}
    cfg = options.recipe.signals
    shards, todo = [], []
    for name, frame in _shards(index, options.recipe.shard_size):
        records = frame.to_dict("records")
        path = folder / f"{name}.{inputs_digest(records, roots)}{WORK_SHARD_SUFFIX}"
        source, split = records[0]["source"], name[len(records[0]["source"]) + 1:].split("-")[0]
        shards.append(SignalShard(source, split, path))
        if not _signal_shard_done(path):
            todo.append((frame, path))
    _remove_outdated_shards(folder, {shard.path.name for shard in shards})
    if todo:
        _prepare_kernels(options)
    tasks = (((frame.to_dict("records"), roots, cfg, str(path)), len(frame))
             for frame, path in todo)
    run_tasks(signals_shard, tasks, min(options.workers, len(todo)), "signals", options.progress,
              retain_heap=True, total=sum(len(frame) for frame, _ in todo))
    return shards


def _remove_outdated_shards(folder: Path, current: set[str]) -> None:
    """Shards of inputs that have changed since (or of another sharding): never read again."""
    for path in folder.iterdir():
        shard = path.name.removesuffix(".rejects")
        if shard.endswith(WORK_SHARD_SUFFIX) and shard not in current:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


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
        work_shard_ids(path)
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
    atomic_parquet(rejects_frame(rejects), Path(output + ".rejects"))
    atomic_parquet(reports, Path(output))


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
    todo = [(frame, str(folder / f"{name}.parquet")) for name, frame in shards
            if not (folder / f"{name}.parquet").exists()]
    tasks = (((frame.to_dict("records"), options.recipe.reports, statements, path), len(frame))
             for frame, path in todo)
    run_tasks(reports_shard, tasks, min(options.workers, len(todo)), "reports", options.progress,
              total=sum(len(frame) for frame, _ in todo))
    names = [folder / f"{name}.parquet" for name, _ in shards]
    del shards, todo
    rejects = pa.concat_tables([REJECT_SCHEMA.empty_table(),
                                *(read_rejects(Path(f"{name}.rejects")) for name in names)])
    atomic_parquet(rejects, work / "reports_rejects.parquet")
    atomic_parquet(_sorted_reports(names), work / "reports.parquet",
                   row_group_size=REPORT_ROW_GROUP_ROWS)


#: Rows per row group of `reports.parquet` (in id order): a publish task reads the row groups
#: of its own ids only.
REPORT_ROW_GROUP_ROWS = 1024


def _sorted_reports(shards: Sequence[Path]) -> pa.Table | pd.DataFrame:
    """`reports.parquet`'s rows: every shard's reports, in id order.

    Concatenated and sorted in Arrow, not pandas: the texts stay in compact buffers (a few
    hundred bytes a record), not a Python string each, and are freed when written."""
    tables = [table.replace_schema_metadata(None) for table in map(pq.read_table, shards)
              if table.num_rows]
    if not tables:
        return pd.DataFrame(columns=list(REPORT_COLUMNS))
    return pa.concat_tables(tables, promote_options="default").sort_by("id")


def _with_reports(index: pd.DataFrame, reports: Path, batch_rows: int = 4096) -> Iterator[dict]:
    """Index rows joined with their reports (the records that have one), in id order, as
    dicts, one batch at a time: what `index.merge(reports).to_dict("records")` gives, without
    either the merged frame or every record's dict in this process at once. Both files are in
    id order, so a batch's index rows are found by binary search."""
    ids = index["id"]
    for batch in pq.ParquetFile(reports).iter_batches(batch_size=batch_rows):
        rows = batch.to_pandas()
        positions = ids.searchsorted(rows["id"])
        yield from (index.iloc[positions].reset_index(drop=True)
                    .merge(rows, on="id", how="inner").to_dict("records"))


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


def _work_root(out: Path) -> Path:
    return out.with_name(out.name + ".work")


def _filter_of(options: BuildOptions) -> dict:
    return {"sources": sorted(options.sources),
            "splits": sorted(options.splits) if options.splits else None}


def _describe(selection: dict) -> str:
    splits = ", ".join(selection.get("splits") or []) or "all splits"
    return f"{', '.join(selection.get('sources') or [])}: {splits}"


def _check_replacement(options: BuildOptions) -> None:
    """A build with another source/split filter must not silently replace the dataset in
    `--out` (e.g. `--source mimic --split test` over a full build): refuse without
    `--overwrite`. Same filter (another seed or recipe): replaced, as a rebuild is."""
    if options.overwrite or not options.out.is_dir():
        return
    try:
        previous = json.loads((_work_root(options.out) / PUBLISHED_MARKER).read_text())
    except (OSError, ValueError):
        # built before the marker existed, or its work folder removed: what the folder holds
        previous = _published_selection(options.out)
        if previous is None:
            return
        covered = {(source, split) for source in options.sources
                   for split in (options.splits or SPLITS)}
        held = {(source, split) for source in previous["sources"] for split in previous["splits"]}
        if held <= covered:
            return
    mine = _filter_of(options)
    if previous != mine:
        raise UserError(
            f"holds a dataset built from {_describe(previous)}; this build "
            f"({_describe(mine)}) would replace it", path=options.out,
            fix="choose another --out (a filtered build's default is out/meit-<source>-<split>), "
                "or pass --overwrite to replace it")


def _published_selection(out: Path) -> dict | None:
    """Sources and splits of a published dataset, read from its file names
    (`data/<source>/<split>-NNNNN-of-NNNNN.parquet`); None when `out` holds none."""
    held: dict[str, set[str]] = {}
    for path in out.glob("data/*/*-*-of-*.parquet"):
        split = path.name.split("-", 1)[0]
        if path.parent.name != "instructions" and split in SPLITS:
            held.setdefault(path.parent.name, set()).add(split)
    if not held:
        return None
    return {"sources": sorted(held), "splits": sorted(set().union(*held.values()))}


def _discard_work(root: Path) -> None:
    """`--fresh`: every work folder of this `--out` goes; nothing is resumed."""
    for folder in root.iterdir():
        if folder.is_dir():
            shutil.rmtree(folder)


def build(options: BuildOptions) -> BuildSummary:
    """Run (or resume) a build and publish it; returns the accounting summary."""
    try:
        return _build(options)
    except OSError as error:  # a full disk where no stage named the file: name the folder
        if not is_disk_full(error) or error.filename:
            raise
        raise disk_full(options.out) from None


def _build(options: BuildOptions) -> BuildSummary:
    if options.out.is_symlink():  # publish where it points: swapping would replace the link
        options = dataclasses.replace(options, out=options.out.resolve())
    library = validate_build(options)
    _check_replacement(options)
    recipe = options.recipe
    statements = None
    if recipe.reports.report_style == "labels" and "ptbxl" in options.sources:
        from ecg_instruct.sources.ptbxl import read_statements

        statements = read_statements(source_root(options.raw_dir, "ptbxl"))
    timer = _StageTimer()
    with timer("index"):
        index, index_rejects = build_index(options.raw_dir, recipe, options.sources,
                                           options.splits)
        index_bytes, rejects_bytes = stored_index_bytes(index, index_rejects)
    content = hashlib.sha256(index_bytes + b"\0" + rejects_bytes).hexdigest()[:16]
    key = work_key(options, library, content)
    root = _work_root(options.out)
    recover_interrupted_swap(options.out)
    with _build_lock(root):
        if options.fresh:
            _discard_work(root)
        work = root / key
        work.mkdir(parents=True, exist_ok=True)
        os.utime(work)  # the most recently used work folder: kept longest
        _remove_partial_files(work)
        if not (work / "index.parquet").exists():
            atomic_write(rejects_bytes, work / "index_rejects.parquet")
            atomic_write(index_bytes, work / "index.parquet")
        # the index stage's frames and bytes are on disk now: not held through the build
        del index_bytes, rejects_bytes, index_rejects
        index = pd.read_parquet(work / "index.parquet")

        with timer("reports"):
            if not (work / "reports.parquet").exists():
                _run_reports(options, index, statements, work)

        with timer("instruct"):
            if not (work / "instruct.parquet").exists():
                reports = work / "reports.parquet"
                write_instruct_stage(_with_reports(index, reports), library, recipe.instruct,
                                     options.seed,
                                     load_statement_tables(options.raw_dir, options.sources),
                                     work, workers=options.workers, progress=options.progress,
                                     total=pq.ParquetFile(reports).metadata.num_rows)
            instructed = pq.read_table(work / "instruct.parquet", columns=["id"]).column("id")

        with timer("signals"):
            shards = _run_signals(options, index[index["id"].isin(instructed.to_numpy(
                zero_copy_only=False))], work)
            del instructed
        with timer("publish"):
            # the marker goes first: killed between the two, `<out>` still holds the old
            # dataset and a rerun of this build (same filter) goes ahead and replaces it
            summary = publish(options, index, work, library, shards, before_swap=lambda: (
                atomic_write(json.dumps(_filter_of(options)).encode(), root / PUBLISHED_MARKER)))
        summary.timings = timer.seconds
        # informational, read by nothing in the build: a plain write, so that the swap stays
        # the build's last step (the kill tests count on it)
        (work / TIMINGS_FILE).write_text(json.dumps(timer.seconds, indent=1), encoding="utf-8")
        _remove_stale_work(root, keep=key)
        return summary


class _StageTimer:
    """Wall seconds per stage of this run (resumed work costs ~0): the summary and
    `<out>.work/<key>/timings.json` carry them, for users and for `make bench`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - started, 3)


def _remove_stale_work(root: Path, keep: str, keep_others: int = KEEP_OTHER_WORK) -> None:
    """Work folders of other builds into this `--out` (another seed, recipe or split filter):
    the `keep_others` most recently used stay (switching back is then cheap), older ones go, so
    the disk holds at most `1 + keep_others` builds' work (each about a dataset's size)."""
    others = [folder for folder in root.iterdir() if folder.is_dir() and folder.name != keep]
    others.sort(key=lambda folder: folder.stat().st_mtime_ns, reverse=True)
    for folder in others[keep_others:]:
        shutil.rmtree(folder, ignore_errors=True)
