"""A release's `SHA256SUMS.txt`: the list of files we may write and the digest each must have.

The checksum file is the only thing that decides which paths a download writes, so it is parsed
strictly: a path that could land outside the target folder (absolute, `..`, backslashes, control
characters) makes the whole file untrusted and is refused before anything is fetched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ecg_instruct.errors import UserError

# `sha256sum` writes "<digest>  <path>" (two spaces; "*" before the path in binary mode).
# PhysioNet uses two spaces; hand-made mirrors often use one. Accept any run of blanks.
_LINE = re.compile(r"^([0-9A-Fa-f]{64})[ \t]+\*?(.+?)[ \t]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_relpath(raw: str) -> str:
    """Return `raw` as a normalised relative POSIX path, or raise ValueError saying why not.

    Lexical on purpose: it never resolves symlinks, so a user who points `records500/` at another
    disk keeps that choice, while no text in a remote file can reach outside the target folder.
    """
    if not raw or not raw.strip():
        raise ValueError("empty path")
    if _CONTROL.search(raw):
        raise ValueError("control character in path")
    if "\\" in raw:
        raise ValueError("backslash in path")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise ValueError("absolute path")
    parts = [p for p in PurePosixPath(raw).parts if p != "."]
    if not parts:
        raise ValueError("path names the folder itself")
    if any(p == ".." for p in parts):
        raise ValueError("path leaves the target folder ('..')")
    return "/".join(parts)


def join_under(root: Path, relpath: str) -> Path:
    """`root / relpath` for a path that `safe_relpath` accepted, re-checked lexically."""
    rel = safe_relpath(relpath)
    return root.joinpath(*rel.split("/"))


@dataclass(frozen=True)
class Entry:
    """One file of a release: where it goes (relative to the release folder) and its digest."""

    path: str
    sha256: str


class Manifest:
    """Parsed checksum file: ordered entries, looked up by path or by record stem."""

    def __init__(self, entries: Iterable[Entry]):
        self.entries: list[Entry] = list(entries)
        self.by_path: dict[str, Entry] = {e.path: e for e in self.entries}
        self._by_stem: dict[str, list[Entry]] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def files_for_stem(self, stem: str) -> list[Entry]:
        """Every file of one WFDB record (`records500/00000/00001_hr` -> .hea and .dat)."""
        if self._by_stem is None:
            index: dict[str, list[Entry]] = {}
            for entry in self.entries:
                dot = entry.path.rfind(".")
                if dot > entry.path.rfind("/"):
                    index.setdefault(entry.path[:dot], []).append(entry)
            self._by_stem = index
        return self._by_stem.get(stem, [])


def parse_manifest(text: str, source: str) -> Manifest:
    """Parse checksum-file text; `source` (URL or path) names the file in every error."""
    entries: dict[str, Entry] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise UserError(
                f"line {lineno} is not '<sha256> <path>': {line[:80]!r}",
                path=source,
                fix="this is not a SHA256SUMS file; check --base-url",
            )
        digest, raw_path = match.group(1).lower(), match.group(2)
        try:
            rel = safe_relpath(raw_path)
        except ValueError as exc:
            raise UserError(
                f"line {lineno} names {raw_path!r} ({exc}); refusing the whole checksum file",
                path=source,
                fix="use a trusted mirror with --base-url",
            ) from None
        previous = entries.get(rel)
        if previous is not None and previous.sha256 != digest:
            raise UserError(
                f"line {lineno} lists {rel!r} twice with different checksums",
                path=source,
                fix="use a trusted mirror with --base-url",
            )
        entries[rel] = Entry(rel, digest)
    if not entries:
        raise UserError("lists no files", path=source, fix="check --base-url")
    return Manifest(entries.values())
