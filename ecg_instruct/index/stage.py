"""The index stage as the build runs it: read before the work folder exists (the index's
digest is part of the work key), stored in it as `index.parquet` + `index_rejects.parquet`."""

from __future__ import annotations

import hashlib

from ecg_instruct.build.options import BuildOptions
from ecg_instruct.build.stage import BuildContext
from ecg_instruct.build.workio import atomic_write
from ecg_instruct.index.stored import stored_index_bytes
from ecg_instruct.index.table import build_index


def read_index(options: BuildOptions) -> tuple[bytes, bytes]:
    """The index and its rejects as the Parquet bytes the work folder stores."""
    index, index_rejects = build_index(options.raw_dir, options.recipe, options.sources,
                                       options.splits)
    return stored_index_bytes(index, index_rejects)


def index_digest(index_bytes: tuple[bytes, bytes]) -> str:
    """What of the index goes into the work key: a different index is a different build."""
    index, rejects = index_bytes
    return hashlib.sha256(index + b"\0" + rejects).hexdigest()[:16]


class IndexStage:
    """Stores the index read by `read_index` (held in `context.index_bytes`) in the work
    folder; `index.parquet`, written last, marks it done."""

    name = "index"

    def done(self, context: BuildContext) -> bool:
        return (context.work / "index.parquet").exists()

    def run(self, context: BuildContext) -> None:
        index, rejects = context.index_bytes
        atomic_write(rejects, context.work / "index_rejects.parquet")
        atomic_write(index, context.work / "index.parquet")
