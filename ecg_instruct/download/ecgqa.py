"""`ecg-instruct download ecgqa`: the ECG-QA release files from its public repository.

ECG-QA (github.com/Jwoo5/ecg-qa, CC BY 4.0) lives in a git repository, not on PhysioNet: there
is no SHA256SUMS.txt and no file listing to read. Its question files are chunks named by their
first `sample_id` in steps of 10,000 (`ecgqa/ptbxl/template/test/80000.json`), so the files of a
split are found by asking for `0.json`, `10000.json`, ... until the server answers 404 — after
the first chunk that exists (a split's numbering may start above 0, but never has a gap).

Each file goes through the PhysioNet fetcher's machinery (`download.fetch.Fetcher`): bytes go to
`<name>.part`, an interrupted transfer continues with `Range:`, retries back off. With no
published checksum a question file is verified by its content instead (a JSON list of samples
whose first `sample_id` is the one its name says) before it is renamed into place; a file
already in place that passes the same check is skipped, so re-running the command resumes it.
The small files (`answers.csv`, `answers_for_each_template.csv`, `{train,valid,test}_ecgs.tsv`)
are kept when the server has them.

The default URL is the repository's `master`: its README lists the releases (1.0.0, 1.0.1, 1.0.2,
the last republished in place on 2024-04-11 under the same number) but no git tag names them.
So a complete download writes `<out>/ecg-qa/SOURCE.json` (`SOURCE_FILE`): the base URL, the
release this version of ecg-instruct was written against, when, and the size and sha256 of every
file in place, so what a build read can be named and compared later.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from ecg_instruct.download.fetch import (
    FetchConfig,
    Fetcher,
    FileResult,
    Interrupted,
    Unreachable,
    _Permanent,
    part_path,
    sha256_file,
)
from ecg_instruct.download.progress import Progress
from ecg_instruct.download.run import Summary, _exclusive
from ecg_instruct.errors import UserError
from ecg_instruct.sources.ecgqa import ECGQA_DIR, EDITIONS, RELEASE_FOLDER, RELEASE_SPLITS, VARIANTS

#: The repository's files as served raw (`--base-url` points at another ref or a mirror).
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/Jwoo5/ecg-qa/master"
#: The release `sources.ecgqa` reads (its layout and fields); `master` serves it today.
EXPECTED_RELEASE = "1.0.2"
#: In `<out>/ecg-qa/`, written by a complete download (see the module docstring).
SOURCE_FILE = "SOURCE.json"
CHUNK_STEP = 10_000
#: Chunks probed past the first missing one before a split counts as empty (its numbering may
#: start above 0): 100 probes cover a split starting below 1,000,000.
MAX_LEADING_GAP = 100
SMALL_FILES = ("answers.csv", "answers_for_each_template.csv", "train_ecgs.tsv",
               "valid_ecgs.tsv", "test_ecgs.tsv")


def question_file_ok(path: Path, first_sample_id: int) -> bool:
    """A complete question chunk: a JSON list whose first sample has the id its name says."""
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return (isinstance(data, list) and bool(data) and isinstance(data[0], dict)
            and data[0].get("sample_id") == first_sample_id)


def _any_file_ok(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


class _Getter:
    """One file: skip it if present and valid, else fetch to `.part` (resuming), check, rename."""

    def __init__(self, fetcher: Fetcher, base: str, root: Path, summary: Summary,
                 progress: Progress):
        self.fetcher, self.base, self.root = fetcher, base.rstrip("/"), root
        self.summary, self.progress = summary, progress
        self.in_place: list[str] = []  # fetched or skipped as verified, in the order asked

    def get(self, relpath: str, check: Callable[[Path], bool]) -> str:
        """`fetched`, `skipped`, `absent` (HTTP 404) or `failed`."""
        dest = self.root / relpath
        if dest.is_file() and check(dest):
            self.summary.add(FileResult(relpath, "skipped"))
            self.in_place.append(relpath)
            return "skipped"
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = part_path(dest)
        url = f"{self.base}/{relpath}"
        fetched = [0]
        for fresh in (False, True):  # a .part that fails the check gets one fresh try
            if fresh:
                part.unlink(missing_ok=True)
            try:
                self.fetcher._with_retries(
                    url, lambda: self.fetcher._download_once(url, part, fetched),
                    connect_retries=2)
            except _Permanent as exc:
                part.unlink(missing_ok=True)
                if str(exc) == "HTTP 404":
                    return "absent"
                self.summary.add(FileResult(relpath, "failed", fetched[0], str(exc)))
                return "failed"
            if check(part):
                os.replace(part, dest)
                self.summary.add(FileResult(relpath, "fetched", fetched[0]))
                self.in_place.append(relpath)
                self.progress.file_done()
                return "fetched"
        part.unlink(missing_ok=True)
        self.summary.add(FileResult(relpath, "failed", fetched[0],
                                    "content check failed twice (not a question file whose "
                                    "first sample_id matches its name)"))
        return "failed"


def _split_files(getter: _Getter, prefix: str) -> None:
    """Every chunk of one split folder: from the first that exists to the first missing."""
    started = False
    for number in range(10**6):
        first = number * CHUNK_STEP
        status = getter.get(f"{prefix}/{first}.json",
                            lambda path, first=first: question_file_ok(path, first))
        if status == "absent":
            if started or number >= MAX_LEADING_GAP:
                return
            continue
        started = True


def download_ecgqa(
    out: Path, base_url: str | None = None, sources: Sequence[str] = ("ptbxl", "mimic"),
    variants: Sequence[str] = VARIANTS, progress: bool | None = None,
    config: FetchConfig | None = None,
) -> Summary:
    """Fetch the ECG-QA release into `out/ecg-qa/ecgqa/`; returns what was done."""
    root = Path(out) / ECGQA_DIR
    root.mkdir(parents=True, exist_ok=True)
    summary = Summary("ecgqa", root)
    started = time.perf_counter()
    bar = Progress(progress, "ecgqa")
    fetcher = Fetcher(config, on_bytes=bar.add_bytes)
    getter = _Getter(fetcher, base_url or DEFAULT_BASE_URL, root, summary, bar)
    try:
        with _exclusive(root):
            # the files are about to change: a provenance file is only ever a complete run's
            (root / SOURCE_FILE).unlink(missing_ok=True)
            for edition, source in EDITIONS.items():
                if source not in sources:
                    continue
                folder = f"{RELEASE_FOLDER}/{edition}"
                for name in SMALL_FILES:
                    getter.get(f"{folder}/{name}", _any_file_ok)
                for variant in variants:
                    for split in RELEASE_SPLITS:
                        _split_files(getter, f"{folder}/{variant}/{split}")
            if summary.ok and getter.in_place:
                write_source(root, getter.base, getter.in_place)
    except Unreachable as exc:
        raise UserError(f"cannot reach the ECG-QA repository ({exc})", path=base_url
                        or DEFAULT_BASE_URL, fix="check the network, or pass --base-url "
                        "pointing at a copy of the repository's files") from None
    except Interrupted as exc:
        exc.summary = summary
        raise
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - started
    if not summary.fetched and not summary.skipped and not summary.failed:
        raise UserError("no ECG-QA question files found there", path=base_url or DEFAULT_BASE_URL,
                        fix="pass --base-url pointing at the repository root (the folder that "
                            "holds ecgqa/)")
    return summary


def write_source(root: Path, base_url: str, relpaths: Sequence[str],
                 now: datetime | None = None) -> None:
    """`root/SOURCE.json`: where the files came from and each file's size and sha256 (sorted by
    path), written to a temporary name and renamed."""
    now = now or datetime.now(timezone.utc)
    data = {
        "repository": "https://github.com/Jwoo5/ecg-qa",
        "base_url": base_url,
        "expected_release": EXPECTED_RELEASE,
        "downloaded_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": {relpath: {"bytes": (root / relpath).stat().st_size,
                            "sha256": sha256_file(root / relpath)}
                  for relpath in sorted(relpaths)},
    }
    tmp = root / f"{SOURCE_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, root / SOURCE_FILE)
