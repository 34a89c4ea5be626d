"""The build: index -> reports -> instruct -> signals -> publish -> questions -> swap,
resumable and atomic.

The stages are a list, run in order; each has the one shape of `build.stage.Stage` (inputs
from the `BuildContext`, outputs in its own work files, done-ness decided by itself) and lives
in its package. The work folder `<out>.work/<key>/` and its housekeeping (key, lock, partial
files, stale work, filter checks) are `build.workdir`'s. Each stage output appears under its
final name only when fully written; the dataset itself is assembled in `<out>.tmp/` (publish
stages the records, questions adds its config) and swapped into place by the last stage, so
`<out>` always holds either the previous dataset or the new one.
"""

from __future__ import annotations

import dataclasses
import shutil

from ecg_instruct.build.accounting import AccountingError
from ecg_instruct.build.options import BuildOptions, BuildSummary
from ecg_instruct.build.stage import BuildContext, Stage
from ecg_instruct.build.validate import validate_build
from ecg_instruct.build.workdir import StageTimer, check_replacement, open_work, work_key
from ecg_instruct.build.workio import disk_full, is_disk_full
from ecg_instruct.index.stage import IndexStage, index_digest, read_index
from ecg_instruct.instruct.stage import InstructStage
from ecg_instruct.paths import staging_path
from ecg_instruct.publish.stage import PublishStage
from ecg_instruct.publish.swap import SwapStage
from ecg_instruct.questions.stage import QuestionsStage
from ecg_instruct.reports.stage import ReportsStage
from ecg_instruct.signals.stage import SignalsStage

__all__ = ["STAGES", "AccountingError", "BuildOptions", "BuildSummary", "build"]

#: What a record goes through, in order. The index is read before the work folder exists (its
#: digest is part of the work key); its stage here stores it there. The questions stage joins
#: ECG-QA to the published records (skipped without `ecgqa:` in the recipe); the swap stage
#: renders the card and puts the staged dataset in place.
STAGES: tuple[Stage, ...] = (
    IndexStage(), ReportsStage(), InstructStage(), SignalsStage(), PublishStage(),
    QuestionsStage(), SwapStage(),
)


def build(options: BuildOptions) -> BuildSummary:
    """Run (or resume) a build and publish it; returns the accounting summary."""
    try:
        return _build(options)
    except OSError as error:  # a full disk where no stage named the file: name the folder
        if not is_disk_full(error) or error.filename:
            raise
        raise disk_full(options.out) from None


def _build(options: BuildOptions) -> BuildSummary:
    if options.out.is_symlink():  # publish where it points: swapping would replace the link
        options = dataclasses.replace(options, out=options.out.resolve())
    library = validate_build(options)
    check_replacement(options)
    timer = StageTimer()
    with timer("index"):
        index_bytes = read_index(options)
    key = work_key(options, library, index_digest(index_bytes))
    with open_work(options, key) as workdir:
        context = BuildContext(options, library, workdir, index_bytes)
        del index_bytes  # the context drops them once they are stored
        try:
            for stage in STAGES:
                with timer(stage.name):
                    if not stage.done(context):
                        stage.run(context)
        except OSError:
            # `<out>.tmp/` is staged afresh from the work files by every run: one that failed
            # on the machine (a full disk) leaves nothing there taking the space. (A user error,
            # such as no record surviving, keeps it: its line points to OUT.tmp/rejects.parquet.)
            shutil.rmtree(staging_path(options.out), ignore_errors=True)
            raise
        summary = context.summary
        summary.timings = timer.seconds
        workdir.finish(timer.seconds)
        return summary
