"""The one shape every stage has, and the context the build hands each of them.

A stage reads its inputs from the `BuildContext` (options, templates, the index, the work files
of the stages before it), writes its outputs as its own files in the work folder, and decides
itself what is done: `done()` says whether its work files are in place and current (a stage
that works shard by shard answers False and skips its finished shards inside `run()`).
`build.pipeline` only runs `run()` for every stage that is not `done()`, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ecg_instruct.build.options import BuildOptions, BuildSummary
from ecg_instruct.build.workdir import WorkFolder
from ecg_instruct.instruct.templates import TemplateLibrary


@dataclass
class BuildContext:
    """What a build knows, handed from stage to stage.

    `index_bytes`: the index stage's Parquet bytes (index, rejects), held until they are in
    the work folder; `index` then reads them back once. `signal_shards` (the signals stage's
    finished shards, in publishing order), `summary` (the publish stage's accounting, which the
    questions stage completes) and `staged` (the dataset in `<out>.tmp/` that publish stages,
    the questions stage adds to and the swap stage swaps in) are the results that are not only
    work files."""

    options: BuildOptions
    library: TemplateLibrary
    workdir: WorkFolder
    index_bytes: tuple[bytes, bytes] | None
    signal_shards: list = field(default_factory=list)  # signals.stage.SignalShard
    summary: BuildSummary | None = None
    staged: Any = None  # publish.stage.StagedDataset
    _index: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def work(self) -> Path:
        return self.workdir.path

    @property
    def index(self) -> pd.DataFrame:
        """The index as stored (`index.parquet`), read once; the in-memory bytes are dropped
        then, so they are not held through the build."""
        if self._index is None:
            self.index_bytes = None
            self._index = pd.read_parquet(self.work / "index.parquet")
        return self._index


class Stage(Protocol):
    """A stage of the build: see the module docstring."""

    #: Its name in the progress output, the timings and the rejects' `stage` column.
    name: str

    def done(self, context: BuildContext) -> bool:
        """Whether its work files are in place and current (then `run` is not called)."""

    def run(self, context: BuildContext) -> None:
        """Write its work files (resuming what a killed run finished)."""
