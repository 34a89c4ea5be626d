"""A release's `SHA256SUMS.txt`: the list of files we may write and the digest each must have.

The checksum file is the only thing that decides which paths a download writes, so it is parsed
strictly: a path that could land outside the target folder (absolute, `..`, backslashes, control
characters) makes the whole file untrusted and is refused before anything is fetched.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from ecg_instruct.errors import UserError

# `sha256sum` writes "<digest>  <path>" (two spaces; "*" before the path in binary mode).
# PhysioNet uses two spaces; hand-made mirrors often use one. Accept any run of blanks.
_LINE = re.compile(r"^([0-9A-Fa-f]{64})[ \t]+\*?(.+?)[ \t]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEX = re.compile(r"[0-9A-Fa-f]{64}")
# Fast path: one `<digest> <path>` per line, the path starting with a plain character.
_PAIR = re.compile(r"^([0-9A-Fa-f]{64})[ \t]+([^*\s][^\n]*)$", re.MULTILINE)
# Substrings of "\n"-framed paths that safe_relpath would normalise or refuse (or trailing
# blanks the careful parser strips): any of them sends the file to the line-by-line parser.
_SUSPICIOUS = ("\n/", "/../", "\n../", "/..\n", "\n..\n", "/./", "\n./", "/.\n", "\n.\n",
               "//", "\\", "/\n", " \n", "\r")
_CONTROL_OR_TAB = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_DRIVE = re.compile(r"\n[A-Za-z]:")


def safe_relpath(raw: str) -> str:
    """Return `raw` as a normalised relative POSIX path, or raise ValueError saying why not.

    Lexical on purpose: it never resolves symlinks, so a user who points `records500/` at another
    disk keeps that choice, while no text in a remote file can reach outside the target folder.
    Written with plain string operations: a MIMIC checksum file has 1.6 million paths.
    """
    if not raw or raw.isspace():
        raise ValueError("empty path")
    if _CONTROL.search(raw):
        raise ValueError("control character in path")
    if "\\" in raw:
        raise ValueError("backslash in path")
    if raw[0] == "/" or (len(raw) > 1 and raw[1] == ":" and raw[0].isalpha()):
        raise ValueError("absolute path")
    parts = raw.split("/")
    if "" in parts or "." in parts:
        parts = [p for p in parts if p not in ("", ".")]
        if not parts:
            raise ValueError("path names the folder itself")
    if ".." in parts:
        raise ValueError("path leaves the target folder ('..')")
    return "/".join(parts)


def join_under(root: Path, relpath: str) -> Path:
    """`root / relpath` for a path that `safe_relpath` accepted, re-checked lexically."""
    rel = safe_relpath(relpath)
    return root.joinpath(*rel.split("/"))


class Entry(NamedTuple):
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
                base, dot, suffix = entry.path.rpartition(".")
                if dot and "/" not in suffix:
                    index.setdefault(base, []).append(entry)
            self._by_stem = index
        return self._by_stem.get(stem, [])


def parse_manifest(text: str, source: str) -> Manifest:
    """Parse checksum-file text; `source` (URL or path) names the file in every error.

    MIMIC-IV-ECG lists 1.6 million files, so a clean file is parsed with whole-text regexes
    (a few seconds instead of tens); anything unusual goes through the line-by-line parser,
    which accepts the same files and words the errors.
    """
    fast = _parse_clean(text)
    if fast is not None:
        return fast
    return _parse_lines(text, source)


def _parse_clean(text: str) -> Manifest | None:
    """Entries of a checksum file with no blank/comment lines, odd paths or duplicates; or None."""
    pairs = _PAIR.findall(text)
    if not pairs or len(pairs) != text.count("\n") + (not text.endswith("\n")):
        return None
    framed = "\n" + "\n".join([p for _, p in pairs]) + "\n"
    if any(t in framed for t in _SUSPICIOUS) or _CONTROL_OR_TAB.search(framed) or _DRIVE.search(
        framed
    ):
        return None
    entries = {p: Entry(p, d.lower()) for d, p in pairs}
    if len(entries) != len(pairs):
        return None
    return Manifest(entries.values())


def _parse_lines(text: str, source: str) -> Manifest:
    entries: dict[str, Entry] = {}
    for lineno, line in enumerate(io.StringIO(text), start=1):
        line = line.rstrip("\r\n")
        # Fast path for the common `<64 hex>  <path>` line; the regex decides everything else.
        digest, rest = line[:64], line[64:]
        if len(digest) == 64 and rest[:1] in (" ", "\t") and _HEX.fullmatch(digest):
            raw_path = rest.lstrip(" \t")
            raw_path = (raw_path[1:] if raw_path[:1] == "*" else raw_path).rstrip(" \t")
        else:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = _LINE.match(line)
            if match is None:
                raise UserError(
                    f"line {lineno} is not '<sha256> <path>': {line[:80]!r}",
                    path=source,
                    fix="this is not a SHA256SUMS file; check --base-url",
                )
            digest, raw_path = match.group(1), match.group(2)
        digest = digest.lower()
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
