"""Stage 4 (signals): every instructed record's signal, curated, in resumable parallel shards.

A shard (per source and split, `shard_size` records in id order) is curated by `curate.py`
into `signals/<shard>.<inputs digest>.parquet` + its `.rejects`. The digest covers its records'
signal files (sizes and mtimes), so a rerun redoes exactly the shards whose files changed, and
the shards of older inputs are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ecg_instruct.build.executor import run_tasks
from ecg_instruct.build.options import BuildOptions
from ecg_instruct.build.shards import shards as cut_shards
from ecg_instruct.build.stage import BuildContext
from ecg_instruct.build.workio import writing
from ecg_instruct.index.windows import split_window
from ecg_instruct.paths import UnsafePath, safe_join_str
from ecg_instruct.signals.curate import (
    WORK_SHARD_SUFFIX,
    process_shard,
    work_shard_fingerprints,
    work_shard_ids,
)
from ecg_instruct.sources import source_root
from ecg_instruct.sources.code15 import ROW_SEPARATOR as CODE15_ROW_SEPARATOR


@dataclass(frozen=True)
class SignalShard:
    """One finished signals work shard of a (source, split), in publishing order."""

    source: str
    split: str
    path: Path


class SignalsStage:
    """Curates the records the instruct stage kept (`instruct.parquet`'s ids); decides per
    shard what is done, so `done()` is always False. Its finished shards, in publishing
    order, go to `context.signal_shards`."""

    name = "signals"

    def done(self, context: BuildContext) -> bool:
        return False

    def run(self, context: BuildContext) -> None:
        instructed = pq.read_table(context.work / "instruct.parquet", columns=["id"]).column("id")
        index = context.index
        kept = index[index["id"].isin(instructed.to_numpy(zero_copy_only=False))]
        del instructed
        context.signal_shards = run_signals(context.options, kept, context.work)


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


def signals_shard(records: list[dict], roots: dict[str, str], cfg, output: str) -> None:
    """The signals stage for one shard (a task of the executor); a full disk names the shard."""
    with writing(output):
        process_shard(records, roots, cfg, output)


def run_signals(options: BuildOptions, index: pd.DataFrame, work: Path) -> list[SignalShard]:
    """Curate every shard not yet done for its current inputs; returns all shards in order."""
    folder = work / "signals"
    folder.mkdir(exist_ok=True)
    roots = {source: str(source_root(options.raw_dir, source)) for source in options.sources}
    cfg = options.recipe.signals
    shards, todo = [], []
    for name, frame in cut_shards(index, options.recipe.shard_size):
        records = frame.to_dict("records")
        path = folder / f"{name}.{inputs_digest(records, roots)}{WORK_SHARD_SUFFIX}"
        source, split = records[0]["source"], name[len(records[0]["source"]) + 1:].split("-")[0]
        shards.append(SignalShard(source, split, path))
        if not shard_done(path):
            todo.append((frame, path))
    _remove_outdated_shards(folder, {shard.path.name for shard in shards})
    if todo:
        _prepare_kernels()
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


def shard_done(path: Path) -> bool:
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


def _prepare_kernels() -> None:
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
