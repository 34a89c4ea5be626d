"""Writing the build's files: atomically (a file is whole under its final name or absent) and
with a disk-full error that names the file (pyarrow's own says only "No space left")."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and (
        error.errno in _DISK_FULL or "No space left on device" in str(error)
        or "Disk quota exceeded" in str(error))


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """A disk-full error while writing `path` names it (pyarrow's says only "No space left on
    device"): re-raised as `OSError(ENOSPC, ..., path)`, which the CLI prints as one line with
    the file, the fix and that a rerun resumes."""
    try:
        yield
    except OSError as error:
        if not is_disk_full(error) or error.filename:
            raise
        raise disk_full(path) from None


@contextlib.contextmanager
def temporary(path: str | Path) -> Iterator[str]:
    """`<path>.tmp-<pid>`, the file a writer fills before renaming it to `path`, removed when
    the block fails: a full disk must not leave a partial file behind (taking more of the
    space) until the next run's cleanup."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def disk_full(path: str | Path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def parquet_bytes(frame_or_table: pd.DataFrame | pa.Table,
                  row_group_size: int | None = None) -> bytes:
    """zstd Parquet of a frame or table; `row_group_size` for files that readers skip through
    by row group (pyarrow's default otherwise)."""
    table = (
        frame_or_table
        if isinstance(frame_or_table, pa.Table)
        else pa.Table.from_pandas(frame_or_table, preserve_index=False)
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", row_group_size=row_group_size)
    return buffer.getvalue()


def atomic_write(data: bytes, path: Path) -> None:
    with writing(path), temporary(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


def atomic_parquet(frame_or_table: pd.DataFrame | pa.Table, path: Path,
                   row_group_size: int | None = None) -> None:
    atomic_write(parquet_bytes(frame_or_table, row_group_size), path)
