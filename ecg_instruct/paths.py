"""Path handling for paths that come from metadata files or manifests.

Metadata is input data: a row saying `../../etc/passwd` must never make us read or write outside
the folder the user pointed us at.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class UnsafePath(ValueError):
    """A relative path from input data that would escape its root folder."""


def safe_join(root: Path, relative: str) -> Path:
    """Join `relative` (POSIX-style, from input data) under `root`, refusing escapes.

    Absolute paths, `..` components, backslashes and NUL bytes are refused rather than normalised,
    because a metadata file that contains them is wrong and silently "fixing" it hides that.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        raise UnsafePath(f"invalid path {relative!r}")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(part == ".." for part in pure.parts):
        raise UnsafePath(f"path {relative!r} escapes {root}")
    return root.joinpath(*pure.parts)
