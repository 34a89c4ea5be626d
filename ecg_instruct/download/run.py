"""Download one PhysioNet release (or a subset) into `<out>/<release folder>/`, verified.

Order of work, so a user can stop at any point and re-run the same command:
1. `SHA256SUMS.txt` (the only unverifiable file; it defines what may be written where),
2. the metadata files (small; the subset is chosen from them),
3. the record files, in parallel.
Every file is checked against the checksum list; present and verified files are skipped.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from ecg_instruct.build.recipe import SplitConfig
from ecg_instruct.download.fetch import (
    FetchConfig,
    Fetcher,
    FileResult,
    Interrupted,
    Unreachable,
)
from ecg_instruct.download.manifest import Entry, join_under, parse_manifest
from ecg_instruct.download.progress import Progress
from ecg_instruct.download.releases import RELEASES, Release, database_of
from ecg_instruct.download.selection import (
    all_record_entries,
    choose_records,
    metadata_entries,
    read_records_file,
    record_plan,
)
from ecg_instruct.download.splits import SPLITS, Splitter
from ecg_instruct.errors import UserError
from ecg_instruct.sources.subset import add_to_subset, clear_subset

CHECKSUMS = "SHA256SUMS.txt"
LOCK_NAME = ".ecg-instruct-download.lock"
MAX_CONNECTIONS = 16


@dataclass
class Summary:
    """What a run did; `ok` is False when any file failed verification or fetching."""

    release: str
    root: Path
    fetched: int = 0
    skipped: int = 0
    failed: list[FileResult] = field(default_factory=list)
    bytes_fetched: int = 0
    records: int | None = None
    unlisted: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def add(self, result: FileResult) -> None:
        self.bytes_fetched += result.nbytes
        if result.status == "fetched":
            self.fetched += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed.append(result)

    def line(self) -> str:
        """The one-line summary the command prints."""
        mb = self.bytes_fetched / 1e6
        text = (
            f"{self.release}: {self.fetched} fetched ({mb:.1f} MB), "
            f"{self.skipped} skipped as verified, {len(self.failed)} failed "
            f"-> {self.root} ({self.seconds:.1f} s)"
        )
        if self.records is not None:
            text += f"; {self.records} records selected"
        if self.unlisted:
            text += f", {len(self.unlisted)} not listed in {CHECKSUMS}"
        return text


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """Refuse a second download into the same folder: two writers would fight over `.part`s."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking, still correct alone
        yield
        return
    lock_path = root / LOCK_NAME
    while True:
        handle = lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UserError("another download into this folder is running", path=root,
                            fix="wait for it to finish (or stop it), then re-run") from None
        # The holder before us unlinks the file when done; a lock on that old inode is no lock.
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(lock_path).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        handle.close()


def _check_options(
    release: Release, rate: int | None, limit: int | None, split: str | None, connections: int
) -> None:
    if rate is not None:
        if release.name != "ptbxl":
            raise UserError(f"--rate applies to ptbxl only, not {release.name}",
                            fix="drop --rate")
        if rate not in (100, 500):
            raise UserError(f"--rate must be 100 or 500, not {rate}",
                            fix="--rate 100 (records100) or --rate 500 (records500)")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, not {limit}",
                        fix="use --metadata-only for no records")
    if split is not None and split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise UserError(f"--connections must be 1..{MAX_CONNECTIONS}, not {connections}",
                        fix="PhysioNet is a shared service: a few connections are enough")


def _check_databases(release: Release, databases: list[str] | None) -> None:
    if not databases:
        return
    if release.name != "cinc2021":
        raise UserError(f"--database applies to cinc2021 only, not {release.name}",
                        fix="drop --database")
    from ecg_instruct.sources.cinc2021 import DATABASES

    unknown = [d for d in databases if d not in DATABASES]
    if unknown:
        raise UserError(f"--database {unknown[0]!r} is not a Challenge 2021 database",
                        fix=f"use some of {', '.join(DATABASES)}")


def _base(url: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--base-url {url!r} is not an http(s) URL",
                        fix="e.g. --base-url https://physionet.org/files/ptb-xl/1.0.3/")
    return url if url.endswith("/") else url + "/"


def _unreachable(exc: Unreachable, release: Release, out: Path) -> UserError:
    return UserError(
        f"cannot reach the server ({exc.reason})",
        path=exc.url,
        fix=(f"check the network, pass --base-url for a mirror, or copy a mirror into "
             f"{out / release.dirname} and skip the download"),
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class _Batch:
    """Fetch entries with N threads, keeping only a bounded number of futures in flight."""

    def __init__(self, fetcher: Fetcher, base: str, root: Path, connections: int,
                 progress: Progress, summary: Summary):
        self.fetcher, self.base, self.root = fetcher, base, root
        self.connections, self.progress, self.summary = connections, progress, summary

    def run(self, entries: list[Entry]) -> None:
        self.progress.add_files(len(entries))
        pending: set[Future[FileResult]] = set()
        todo = iter(entries)
        with ThreadPoolExecutor(self.connections, thread_name_prefix="download") as pool:
            try:
                while True:
                    while len(pending) < self.connections * 4:
                        entry = next(todo, None)
                        if entry is None:
                            break
                        pending.add(pool.submit(self._one, entry))
                    if not pending:
                        break
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        self.summary.add(future.result())
                        self.progress.file_done()
            except BaseException:
                # Ctrl-C, a lost network, a full disk: let running workers stop at the next
                # chunk (their .part files stay for the next run) and drop the queued ones.
                self.fetcher.stop.set()
                for future in pending:
                    future.cancel()
                raise

    def _one(self, entry: Entry) -> FileResult:
        dest = join_under(self.root, entry.path)
        return self.fetcher.fetch(self.base + entry.path, dest, entry.sha256, entry.path)


def download_release(
    name: str,
    out: Path,
    *,
    base_url: str | None = None,
    rate: int | None = None,
    limit: int | None = None,
    records_file: Path | None = None,
    split: str | None = None,
    metadata_only: bool = False,
    connections: int = 4,
    databases: list[str] | None = None,
    split_config: SplitConfig | None = None,
    progress: bool | None = None,
    config: FetchConfig | None = None,
) -> Summary:
    """Fetch release `name` ("ptbxl", "mimic" or "cinc2021") into `out/<folder>/` and verify every file.

    `split_config` is the recipe's `split:` section (default: the bundled `meit` recipe's), so that
    `split="test"` fetches the records the build will put in test. `databases` (cinc2021):
    fetch only the records of these Challenge databases (e.g. `["ptb-xl", "georgia"]`).
    Raises UserError for bad options, an unreachable server or an untrusted checksum file, and
    `Interrupted` when stopped (everything verified so far stays; `.part` files resume).
    """
    if name not in RELEASES:
        raise UserError(f"unknown dataset {name!r}", fix=f"use one of {', '.join(RELEASES)}")
    release = RELEASES[name]
    _check_options(release, rate, limit, split, connections)
    if metadata_only and (limit is not None or records_file is not None or split is not None):
        raise UserError("--metadata-only fetches no records, so --limit/--records/--split "
                        "would do nothing", fix="drop one or the other")
    _check_databases(release, databases)
    tokens = read_records_file(records_file) if records_file is not None else None
    base = _base(base_url or release.base_url)
    root = out / release.dirname

    started = time.monotonic()
    summary = Summary(release.name, root)
    bar = Progress(progress, release.dirname)
    fetcher = Fetcher(config, threading.Event(), bar.add_bytes)
    batch = _Batch(fetcher, base, root, connections, bar, summary)
    try:
        # The checksum list comes first and into memory: an unreachable server or a bad list
        # leaves no trace on disk (an empty data/raw/ptb-xl/ would look like a started copy).
        checksums_url = base + CHECKSUMS
        raw = fetcher.get_bytes(checksums_url)
        manifest = parse_manifest(raw.decode("utf-8", errors="replace"), checksums_url)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create ({exc.strerror or exc})", path=root,
                            fix="choose a writable --out") from None
        with _exclusive(root):
            _write_atomic(root / CHECKSUMS, raw)
            batch.run(metadata_entries(manifest, release))
            if not metadata_only:
                subset = (tokens is not None or limit is not None or split is not None
                          or bool(databases))
                if subset:
                    index = release.index_file
                    why = next((r.detail for r in summary.failed if r.path == index), None)
                    if why is not None or not (root / index).is_file():
                        raise UserError(
                            f"not fetched and verified ({why or 'missing'}), so no records "
                            "can be chosen", path=base + index, fix="re-run the same command")
                    listed = release.read_records(root, Splitter(split_config))
                    if databases:  # before --limit: "the first N records of these databases"
                        listed = [r for r in listed if database_of(r.stems[0]) in databases]
                    records = choose_records(
                        listed, release, rate=rate,
                        tokens=tokens, tokens_source=records_file, split=split, limit=limit)
                    plan = record_plan(manifest, records)
                    summary.records, summary.unlisted = plan.records, plan.unlisted
                    # marked before fetching: an interrupted subset download still builds as one
                    add_to_subset(root, (f"{release.name}/{r.id}" for r in records))
                    batch.run(plan.entries)
                else:
                    clear_subset(root)
                    batch.run(all_record_entries(manifest, release, rate))
    except Unreachable as exc:
        raise _unreachable(exc, release, out) from None
    except (KeyboardInterrupt, Interrupted):
        stopped = Interrupted()
        stopped.summary = summary
        raise stopped from None
    finally:
        bar.close()
        summary.seconds = time.monotonic() - started
    return summary
