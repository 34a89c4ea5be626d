"""The work folder's housekeeping: everything a build does to `<out>.work/` besides its stages.

Work happens in `<out>.work/<key>/`, where `key` hashes everything that determines the output
(recipe, sources, split filter, seed, raw folder, templates, the index), so a rerun of the same
build resumes it and a different build never picks up stale work. Here: the key, the lock (one
build per `--out`), removal of a killed run's partial files, `--fresh`, the refusal to replace
a dataset built with another source/split filter, the marker of what `<out>` was built from,
the stage timer, and the cleanup of other builds' work (the 2 most recent are kept).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ecg_instruct import __version__
from ecg_instruct.build.options import BuildOptions
from ecg_instruct.build.workio import atomic_write
from ecg_instruct.errors import UserError
from ecg_instruct.index.split import SPLITS
from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.paths import recover_interrupted_swap
from ecg_instruct.schema import DERIVED_CONFIGS

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
    shard carries its own inputs' digest instead (`signals.stage.inputs_digest`).
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


@dataclass(frozen=True)
class WorkFolder:
    """`<out>.work/` (`root`) and this build's `<key>/` in it (`path`)."""

    options: BuildOptions
    root: Path
    key: str

    @property
    def path(self) -> Path:
        return self.root / self.key

    def mark_published(self) -> None:
        """Record the filter of the dataset about to be swapped into `<out>` (the publish
        stage calls it just before the swap)."""
        atomic_write(json.dumps(filter_of(self.options)).encode(), self.root / PUBLISHED_MARKER)

    def finish(self, timings: dict[str, float]) -> None:
        """After a build: its timings (informational, read by nothing in the build: a plain
        write, so that the swap stays the build's last step, which the kill tests count on),
        then the cleanup of other builds' work."""
        (self.path / TIMINGS_FILE).write_text(json.dumps(timings, indent=1), encoding="utf-8")
        remove_stale_work(self.root, keep=self.key)


@contextlib.contextmanager
def open_work(options: BuildOptions, key: str) -> Iterator[WorkFolder]:
    """This build's work folder, locked, cleared of a killed run's partial files (and of all
    earlier work with `--fresh`), marked most recently used."""
    root = work_root(options.out)
    recover_interrupted_swap(options.out)
    with build_lock(root):
        if options.fresh:
            discard_work(root)
        folder = WorkFolder(options, root, key)
        folder.path.mkdir(parents=True, exist_ok=True)
        os.utime(folder.path)  # the most recently used work folder: kept longest
        remove_partial_files(folder.path)
        yield folder


@contextlib.contextmanager
def build_lock(folder: Path) -> Iterator[None]:
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


def remove_partial_files(folder: Path) -> None:
    """Temporary files of a killed run (`*.tmp-<pid>`): never done, never read."""
    for path in folder.rglob("*.tmp-*"):
        if path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def work_root(out: Path) -> Path:
    return out.with_name(out.name + ".work")


def filter_of(options: BuildOptions) -> dict:
    return {"sources": sorted(options.sources),
            "splits": sorted(options.splits) if options.splits else None}


def _describe(selection: dict) -> str:
    splits = ", ".join(selection.get("splits") or []) or "all splits"
    return f"{', '.join(selection.get('sources') or [])}: {splits}"


def _pairs(selection: dict) -> set[tuple[str, str]]:
    """The (source, split) pairs a filter or a published dataset covers."""
    return {(source, split) for source in selection.get("sources") or []
            for split in (selection.get("splits") or SPLITS)}


def check_replacement(options: BuildOptions) -> None:
    """A build with another source/split filter must not silently replace the dataset in
    `--out` (e.g. `--source mimic --split test` over a full build): refuse without
    `--overwrite`. Same filter (another seed or recipe), or one covering every source and
    split the dataset holds (the full build after a filtered `--overwrite`): replaced, as a
    rebuild is, since nothing the folder holds is lost."""
    if options.overwrite or not options.out.is_dir():
        return
    try:
        previous = json.loads((work_root(options.out) / PUBLISHED_MARKER).read_text())
    except (OSError, ValueError):
        # built before the marker existed, or its work folder removed: what the folder holds
        previous = published_selection(options.out)
        if previous is None:
            return
    mine = filter_of(options)
    if _pairs(previous) <= _pairs(mine):
        return
    raise UserError(
        f"holds a dataset built from {_describe(previous)}; this build "
        f"({_describe(mine)}) would replace it", path=options.out,
        fix="choose another --out (a filtered build's default is out/meit-<source>-<split>), "
            "or pass --overwrite to replace it")


def published_selection(out: Path) -> dict | None:
    """Sources and splits of a published dataset, read from its file names
    (`data/<source>/<split>-NNNNN-of-NNNNN.parquet`); None when `out` holds none."""
    held: dict[str, set[str]] = {}
    for path in out.glob("data/*/*-*-of-*.parquet"):
        split = path.name.split("-", 1)[0]
        if path.parent.name not in DERIVED_CONFIGS and split in SPLITS:
            held.setdefault(path.parent.name, set()).add(split)
    if not held:
        return None
    return {"sources": sorted(held), "splits": sorted(set().union(*held.values()))}


def discard_work(root: Path) -> None:
    """`--fresh`: every work folder of this `--out` goes; nothing is resumed."""
    for folder in root.iterdir():
        if folder.is_dir():
            shutil.rmtree(folder)


def remove_stale_work(root: Path, keep: str, keep_others: int = KEEP_OTHER_WORK) -> None:
    """Work folders of other builds into this `--out` (another seed, recipe or split filter):
    the `keep_others` most recently used stay (switching back is then cheap), older ones go, so
    the disk holds at most `1 + keep_others` builds' work (each about a dataset's size)."""
    others = [folder for folder in root.iterdir() if folder.is_dir() and folder.name != keep]
    others.sort(key=lambda folder: folder.stat().st_mtime_ns, reverse=True)
    for folder in others[keep_others:]:
        shutil.rmtree(folder, ignore_errors=True)


class StageTimer:
    """Wall seconds per stage of this run (resumed work costs ~0): the summary and
    `<out>.work/<key>/timings.json` carry them, for users and for `make bench`. A stage timed
    twice (the index: read before the work folder exists, stored in it) adds up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.seconds[stage] = round(self.seconds.get(stage, 0.0) + elapsed, 3)
