"""Reading the package's data files (glossary, phrase lists), or a user's replacement."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ecg_instruct.errors import UserError


def read_data_file(name: str, path: str | Path | None = None, what: str = "file") -> tuple[str, str]:
    """(where, text) of `ecg_instruct/data/<name>`, or of `path` when the user gives one.

    A user's file is input: an unreadable one is a one-line `UserError` naming it.
    """
    if path is None:
        ref = resources.files("ecg_instruct") / "data" / name
        return str(ref), ref.read_text(encoding="utf-8")
    try:
        return str(path), Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {what} ({exc.strerror})", path) from exc
