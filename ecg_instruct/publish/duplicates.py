"""Cross-source duplicates: the same ECG published once, under the source priority.

The signal stage stores a content fingerprint per kept record (`signals/fingerprint.py`). After
it, every fingerprint of the build is compared: records are ranked by the priority of their
source (`sources.SOURCE_PRIORITY`: native releases before the collections that re-issue them, so
PTB-XL before its Challenge 2021 copy), then by id; the first record of each fingerprint is kept
and every later one becomes a `signals` reject with reason `duplicate` naming the kept id. The
ranking uses ids and fingerprints only, never shard or worker order, so the outcome is the same
whatever `--workers`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ecg_instruct.schema import REJECT_SCHEMA
from ecg_instruct.signals.curate import work_shard_fingerprints
from ecg_instruct.sources import SOURCE_PRIORITY

REASON = "duplicate"


@dataclass
class Duplicates:
    """The outcome of the check: rejected id -> kept id, and counts per (kept, rejected) source."""

    kept_for: dict[str, str] = field(default_factory=dict)

    def rejects(self) -> pa.Table:
        """The `duplicate` rejects (stage `signals`), in id order."""
        ids = sorted(self.kept_for)
        return pa.table({
            "id": ids,
            "source": [i.split("/", 1)[0] for i in ids],
            "stage": ["signals"] * len(ids),
            "reason": [REASON] * len(ids),
            "detail": [f"same samples as {self.kept_for[i]} (published under that id)"
                       for i in ids],
        }, schema=REJECT_SCHEMA)

    def pair_counts(self) -> list[dict[str, object]]:
        """[{kept_source, rejected_source, count}] for the dataset card, sorted."""
        counts: dict[tuple[str, str], int] = {}
        for rejected, kept in self.kept_for.items():
            key = (kept.split("/", 1)[0], rejected.split("/", 1)[0])
            counts[key] = counts.get(key, 0) + 1
        return [{"kept_source": k, "rejected_source": r, "count": n}
                for (k, r), n in sorted(counts.items())]


def _rank(record_id: str) -> tuple[int, str]:
    source = record_id.split("/", 1)[0]
    position = SOURCE_PRIORITY.index(source) if source in SOURCE_PRIORITY else len(SOURCE_PRIORITY)
    return position, record_id


def find_duplicates(entries: Iterable[tuple[str, str]]) -> Duplicates:
    """`entries`: (id, fingerprint) of every kept record of the build (any order)."""
    first: dict[str, str] = {}
    out = Duplicates()
    for record_id, fingerprint in sorted(entries, key=lambda e: _rank(e[0])):
        if not fingerprint:  # a record without a fingerprint is compared with nothing
            continue
        kept = first.setdefault(fingerprint, record_id)
        if kept != record_id:
            out.kept_for[record_id] = kept
    return out


def find_duplicates_in_shards(shards: Iterable[Path]) -> Duplicates:
    """`find_duplicates` over the signals work shards of a build."""
    entries: list[tuple[str, str]] = []
    for shard in shards:
        ids, fingerprints = work_shard_fingerprints(shard)
        entries.extend(zip(ids, fingerprints, strict=True))
    return find_duplicates(entries)
