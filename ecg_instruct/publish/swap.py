"""The build's last stage: the dataset card, then the swap of `<out>.tmp/` into `<out>`.

`PublishStage` stages the records' dataset (`StagedDataset`), the stages after it add their
configs to it (`QuestionsStage`: `ecgqa`), and this one renders the card from what they all
left and swaps the folder into place, so `<out>` always holds either the previous dataset or the
new one (`paths.replace_dir`).

It is a stage like the others rather than the tail of the pipeline's loop: the loop stays a
plain loop over `STAGES` with no step of its own, the card and swap are timed under their own
name, and a further config derived from the published records is one more stage placed between
publish and this one, without touching either.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ecg_instruct.build.stage import BuildContext
from ecg_instruct.build.validate import PUBLISHED_NAMES
from ecg_instruct.build.workio import atomic_write
from ecg_instruct.paths import replace_dir
from ecg_instruct.publish.card import render_card, stamp_contents
from ecg_instruct.publish.stage import StagedDataset


def swap(out: Path, staged: StagedDataset, before_swap: Callable[[], None] = lambda: None) -> None:
    """Write the card into the staged dataset and swap it into `out`.

    `before_swap` runs once the dataset is complete, right before it replaces `out` (the work
    folder records there what the new dataset was built from: `WorkFolder.mark_published`)."""
    # load_dataset never serves an earlier build (publish hashed its files as it wrote them)
    stamp_contents(staged.header, staged.folder, staged.digests)
    atomic_write(render_card(out, staged.card, staged.header).encode("utf-8"),
                 staged.folder / "README.md")
    unknown = {path.name for path in staged.folder.iterdir()} - PUBLISHED_NAMES
    if unknown:  # a developer guard: `validate._validate_locations` must recognise our own datasets
        raise RuntimeError(f"publish wrote {sorted(unknown)} at the top of the dataset; add them "
                           f"to validate.PUBLISHED_NAMES")
    out.parent.mkdir(parents=True, exist_ok=True)
    before_swap()
    replace_dir(staged.folder, out)  # `out` is never a mixture of the two (see paths.py)


class SwapStage:
    """Always runs (the dataset is staged afresh by every build): see the module docstring."""

    name = "swap"

    def done(self, context: BuildContext) -> bool:
        return False

    def run(self, context: BuildContext) -> None:
        # the marker goes first: killed between the two, `<out>` still holds the old
        # dataset and a rerun of this build (same filter) goes ahead and replaces it
        swap(context.options.out, context.staged, before_swap=context.workdir.mark_published)
