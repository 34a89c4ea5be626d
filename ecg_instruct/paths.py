"""Path handling for paths that come from metadata files or manifests.

Metadata is input data: a row saying `../../etc/passwd` must never make us read or write outside
the folder the user pointed us at.
"""

from __future__ import annotations

import os
from pathlib import Path


class UnsafePath(ValueError):
    """A relative path from input data that would escape its root folder."""


def safe_parts(relative: str) -> list[str]:
    """The components of `relative` (POSIX-style, from input data), refusing escapes.

    Absolute paths, `..` components, backslashes and NUL bytes are refused rather than normalised,
    because a metadata file that contains them is wrong and silently "fixing" it hides that.
    Empty and `.` components are dropped, as `PurePosixPath` does. Plain string work: the signal
    stage joins one path per record and pathlib costs ~30 µs each.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        raise UnsafePath(f"invalid path {relative!r}")
    parts = [part for part in relative.split("/") if part and part != "."]
    if relative.startswith("/") or ".." in parts:
        # The message names the offending value, not `root`: it lands in published rejects,
        # which must not depend on where the mirror lives.
        raise UnsafePath(f"path {relative!r} is absolute or climbs out of the source folder")
    if not parts:  # "." or "./": the root itself, and `<root>.hea` would be outside it
        raise UnsafePath(f"path {relative!r} names the source folder itself, not a file in it")
    return parts


def safe_join(root: Path, relative: str) -> Path:
    """Join `relative` (POSIX-style, from input data) under `root`, refusing escapes
    (:func:`safe_parts`)."""
    return root.joinpath(*safe_parts(relative))


def safe_join_str(root: str, relative: str) -> str:
    """:func:`safe_join` on strings, for the per-record hot path: ``os.path.join(root,
    *safe_parts(relative))``, spelled out with one string join on POSIX (the parts hold no
    separator), where ``posixpath.join`` cost as much as the rest of the path handling."""
    parts = safe_parts(relative)
    if os.sep != "/":  # pragma: no cover - Windows
        return os.path.join(root, *parts)
    return root + ("" if not root or root.endswith("/") else "/") + "/".join(parts)


def sibling(path: str, name: str) -> str:
    """``os.path.join(os.path.dirname(path), name)`` (``name`` a plain file name) in string
    operations on POSIX: the signal stage asks once per record for the ``.dat`` file beside
    a header."""
    if os.sep != "/":  # pragma: no cover - Windows
        return os.path.join(os.path.dirname(path), name)
    head = path[: path.rfind("/") + 1]
    if head and head != "/" * len(head):  # dirname drops trailing slashes, but not of "/"
        head = head.rstrip("/") + "/"
    return head + name


def is_within(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or inside it, after resolving symlinks and `..`."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


# --- atomic directory replacement -------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange_dirs(first: Path, second: Path) -> bool:
    """Atomically swap two existing paths (Linux `renameat2(RENAME_EXCHANGE)`).

    Returns False, having changed nothing, where the platform or file system cannot do it (other
    kernels, some network file systems); the caller then falls back to two renames.
    """
    import ctypes
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl without the wrapper
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                       _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def backup_path(out: Path) -> Path:
    return out.with_name(out.name + ".old")


def staging_path(out: Path) -> Path:
    """`<out>.tmp/`: where a build assembles the new dataset before `replace_dir` swaps it in."""
    return out.with_name(out.name + ".tmp")


def recover_interrupted_swap(out: Path) -> bool:
    """Undo the one state the two-rename fallback can leave behind: `out` gone, `out.old` there.

    Returns True if the previous dataset was put back.
    """
    backup = backup_path(out)
    if backup.is_dir() and not out.exists():
        os.replace(backup, out)
        return True
    return False


def replace_dir(staging: Path, out: Path) -> None:
    """Make `staging` appear at `out`, so that `out` is never a mixture of old and new.

    Where the kernel can exchange two directories atomically, a reader sees either the old or the
    new dataset at every instant. Elsewhere `out` is renamed to `out.old` and `staging` to `out`:
    between the two renames `out` is briefly absent (never half-written), and a process killed
    right there leaves `out.old`, which `recover_interrupted_swap` (run at the start of every
    build) puts back.
    """
    import shutil

    backup = backup_path(out)
    if backup.exists() and out.exists():
        shutil.rmtree(backup)
    recover_interrupted_swap(out)
    if out.exists():
        if exchange_dirs(staging, out):
            shutil.rmtree(staging)  # now holds the previous dataset
            return
        os.replace(out, backup)
    os.replace(staging, out)
    if backup.exists():
        shutil.rmtree(backup)
