"""What a build is asked to do and what it reports back.

Below both `build/pipeline.py` (which runs builds) and `build/validate.py` (which checks them before any
work), so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ecg_instruct.build.recipe import Recipe


@dataclass
class BuildOptions:
    raw_dir: Path
    out: Path
    recipe: Recipe
    sources: list[str]
    splits: list[str] | None = None
    workers: int = 1
    seed: int = 0
    template_dirs: list[Path] | None = None
    progress: bool = True
    sample: bool = False
    #: discard every work folder of this `--out` first (nothing is resumed)
    fresh: bool = False
    #: replace a dataset in `--out` that was built with another source/split filter
    overwrite: bool = False


@dataclass
class BuildSummary:
    out: Path
    counts: pd.DataFrame  # source, split, input, published, rejected
    reasons: pd.DataFrame  # source, stage, reason, count
    totals: dict[str, int] = field(default_factory=dict)
    stages: pd.DataFrame | None = None  # source, stage, input, passed, rejected
    instructions: Any = None  # publish.instructions.InstructionsInfo: examples per task/split
    fidelity: Any = None  # publish.fidelity.Fidelity: PTB-XL report vs SCP label agreement
    timings: dict[str, float] = field(default_factory=dict)  # stage -> wall seconds, this run
    questions: Any = None  # questions.publish.QuestionsInfo when the recipe has `ecgqa`
