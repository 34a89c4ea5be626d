"""The subset marker: which records of a partially downloaded mirror are meant to be there.

`ecg-instruct download --split/--limit/--records` fetches the full metadata CSVs but only some
records. Without a marker, a build would reject every record that was never downloaded as
`missing_file` (hundreds of thousands for MIMIC-IV-ECG). With it, records outside the subset are
not inputs of the build at all, while a record inside the subset whose files are missing is still
rejected with a reason: nothing that was meant to be there disappears silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SUBSET_FILE = "ecg-instruct-subset.txt"
_HEADER = "# records fetched by `ecg-instruct download` (a subset); the build reads only these\n"


def read_subset(root: Path) -> set[str] | None:
    """Record ids (`ptbxl/00001`) of a subset mirror, or None for a complete mirror."""
    path = root / SUBSET_FILE
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def add_to_subset(root: Path, record_ids: Iterable[str]) -> None:
    """Record that these ids were fetched (a union with earlier subset downloads)."""
    ids = (read_subset(root) or set()) | set(record_ids)
    tmp = root / f"{SUBSET_FILE}.tmp-{os.getpid()}"
    tmp.write_text(_HEADER + "".join(f"{i}\n" for i in sorted(ids)), encoding="utf-8")
    os.replace(tmp, root / SUBSET_FILE)


def clear_subset(root: Path) -> None:
    """A complete download: every record is meant to be there."""
    (root / SUBSET_FILE).unlink(missing_ok=True)
