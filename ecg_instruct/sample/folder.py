"""The folder a synthetic sample mirror is written into, and the only ones it may delete.

`ecg-instruct sample`, `build --sample-fallback DIR` and `templates check --sample DIR` rewrite
an incomplete or outdated sample mirror from scratch. They may delete a folder only when it is
one they wrote: it carries the completion marker (`.complete`) or the marker written before the
first file (`.sample-writing`, left by an interrupted write). Any other non-empty folder (a
downloaded mirror, the user's notes) is refused with one line, and nothing is deleted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ecg_instruct.errors import UserError

#: Written last: the mirror is complete (its text says which command wrote it).
COMPLETE_MARKER = ".complete"
#: Written first, before any file of the mirror: the folder is a (partial) sample mirror.
WRITING_MARKER = ".sample-writing"


def is_sample_mirror(folder: Path) -> bool:
    """Whether `folder` was written (completely or in part) by a sample command."""
    return (folder / COMPLETE_MARKER).is_file() or (folder / WRITING_MARKER).is_file()


def claim_sample_folder(folder: Path, option: str = "--out") -> None:
    """Make `folder` an empty folder marked as a sample mirror being written.

    Deletes the folder's contents only when it is a sample mirror; a missing or empty folder is
    created/claimed; any other folder is a `UserError` naming it (nothing deleted).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError("is a file, not a folder", path=folder,
                        fix=f"pass a new or empty folder as {option}")
    if folder.is_dir() and any(folder.iterdir()):
        if not is_sample_mirror(folder):
            raise UserError("is not empty and is not a sample mirror (no .complete marker); "
                            "nothing was deleted", path=folder,
                            fix=f"pass a new or empty folder as {option}")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WRITING_MARKER).write_text("a sample mirror is being written here\n")


def mark_sample_complete(folder: Path, text: str) -> None:
    """Record that the mirror in `folder` is complete (`text` says what was written)."""
    (folder / COMPLETE_MARKER).write_text(text)
    (folder / WRITING_MARKER).unlink(missing_ok=True)
