"""Which files of a release to fetch: metadata first, then all records or a chosen subset.

Subsets are chosen on records from the release's own metadata (never by listing the server), in
a fixed order (PTB-XL by ecg_id, MIMIC by subject then study), so `--limit 100` means the same
100 records on every machine and every re-run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ecg_instruct.download.manifest import Entry, Manifest, safe_relpath
from ecg_instruct.download.releases import Record, Release
from ecg_instruct.errors import UserError

_WFDB_SUFFIXES = (".hea", ".dat", ".atr", ".xyz")


@dataclass
class Plan:
    """The files to fetch after the metadata, plus records the checksum file does not list."""

    entries: list[Entry]
    records: int = 0
    unlisted: list[str] = field(default_factory=list)


def metadata_entries(manifest: Manifest, release: Release) -> list[Entry]:
    """Every file outside the record folders: CSVs, licence, docs (small; always fetched)."""
    return [e for e in manifest if not release.is_record_file(e.path)]


def all_record_entries(manifest: Manifest, release: Release, rate: int | None) -> list[Entry]:
    """Every record file the checksum file lists (restricted to one PTB-XL rate if asked)."""
    return [
        e for e in manifest
        if release.is_record_file(e.path) and release.rate_prefix_ok(e.path, rate)
    ]


def read_records_file(path: Path) -> list[str]:
    """Tokens of a `--records` file: one record path or id per line; '#' starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read ({exc.strerror or exc})", path=path,
                        fix="pass a text file with one record path or id per line") from None
    except UnicodeDecodeError:
        raise UserError("is not UTF-8 text", path=path,
                        fix="pass a text file with one record path or id per line") from None
    tokens = []
    for line in text.splitlines():
        token = line.split("#", 1)[0].strip()
        if token:
            tokens.append(token)
    if not tokens:
        raise UserError("names no records", path=path,
                        fix="one record path (records500/00000/00001_hr) or id per line")
    return tokens


def _strip_suffix(stem: str) -> str:
    for suffix in _WFDB_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def choose_records(
    records: list[Record],
    release: Release,
    *,
    rate: int | None = None,
    tokens: list[str] | None = None,
    tokens_source: Path | None = None,
    split: str | None = None,
    limit: int | None = None,
) -> list[Record]:
    """Apply `--records`, `--split`, `--rate`, then `--limit` (in that order) to the records.

    Each token is a record path (`records500/00000/00001_hr`, `files/p1000/.../40689238`, with
    or without `.hea`/`.dat`) or an id (PTB-XL ecg_id, MIMIC study_id, optionally prefixed
    `ptbxl/` or `mimic/`). A path selects that one WFDB record; an id selects all of its records.
    Unknown tokens are a UserError: a typo should not silently shrink a test set.
    """
    wanted: dict[str, set[str] | None] | None = None
    if tokens is not None:
        by_stem = {stem: r for r in records for stem in r.stems}
        by_id = {_id_key(r.id): r for r in records}
        wanted = {}
        unknown = []
        for token in tokens:
            bare = token.removeprefix(f"{release.name}/")
            if "/" in bare:
                try:
                    stem = _strip_suffix(safe_relpath(bare))
                except ValueError as exc:
                    raise UserError(f"record {token!r} is not allowed ({exc})",
                                    path=tokens_source) from None
                record = by_stem.get(stem)
                if record is None:
                    unknown.append(token)
                    continue
                if not release.rate_prefix_ok(stem, rate):
                    raise UserError(f"record {token!r} is not at --rate {rate}",
                                    path=tokens_source, fix="drop --rate or the record")
                chosen = wanted.setdefault(record.id, set())
                if chosen is not None:
                    chosen.add(stem)
            else:
                record = by_id.get(_id_key(bare))
                if record is None:
                    unknown.append(token)
                else:
                    wanted[record.id] = None  # every stem of the record
        if unknown:
            shown = ", ".join(repr(t) for t in unknown[:3])
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise UserError(
                f"{len(unknown)} record(s) not in {release.index_file}: {shown}{more}",
                path=tokens_source,
                fix=f"use record paths or ids of the {release.name} release",
            )
    chosen_records = []
    for record in records:
        if wanted is not None and record.id not in wanted:
            continue
        if split is not None and record.split != split:
            continue
        stems = wanted.get(record.id) if wanted is not None else None
        kept = tuple(
            s for s in record.stems
            if (stems is None or s in stems) and release.rate_prefix_ok(s, rate)
        )
        if kept:
            chosen_records.append(Record(record.id, kept, record.split))
    if limit is not None:
        chosen_records = chosen_records[:limit]
    return chosen_records


def _id_key(raw: str) -> str:
    """Ids compare as numbers ('1', '00001' and 'ptbxl/00001' are one PTB-XL record)."""
    raw = raw.strip()
    return str(int(raw)) if raw.isdigit() else raw


def record_plan(manifest: Manifest, records: list[Record]) -> Plan:
    """Files of the chosen records, in record order; stems the checksum file lacks are noted."""
    entries: list[Entry] = []
    unlisted: list[str] = []
    for record in records:
        for stem in record.stems:
            files = manifest.files_for_stem(stem)
            if files:
                entries.extend(files)
            else:
                unlisted.append(stem)
    return Plan(entries, len(records), unlisted)
