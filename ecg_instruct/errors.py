"""Errors a user can cause and fix.

A `UserError` is printed by the CLI as one line (no traceback) and names the file at fault and the
fix, because the person who sees it is running a build, not debugging our code.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A configuration or input problem that stops the build before anything is written."""

    def __init__(self, message: str, path: str | Path | None = None, fix: str | None = None):
        parts = []
        if path is not None:
            parts.append(f"{path}:")
        parts.append(message)
        if fix:
            parts.append(f"— {fix}")
        super().__init__(" ".join(parts))
        self.path = None if path is None else str(path)
        self.fix = fix


class RecordReject(Exception):
    """A problem with one record: the build goes on and the record lands in the rejects table.

    `reason` is a short snake_case name users can filter on (e.g. ``truncated_dat``); `detail` is
    one human-readable line.
    """

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
