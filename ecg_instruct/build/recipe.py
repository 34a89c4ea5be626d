"""Recipes: the declarative description of a build (`pipelines/*.yaml`).

The bundled recipes ship inside the package, so `--recipe meit` works from any directory after
`pip install`; a path to the user's own YAML file works too.

A recipe is validated completely before anything is written: an unknown key is almost always a
typo that would otherwise silently fall back to a default, so it is an error naming the file, the
key and the keys that are allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ecg_instruct.bundled import RECIPES_DIR
from ecg_instruct.errors import UserError
from ecg_instruct.index.split import DEFAULT_MIMIC_FRACTIONS, DEFAULT_PTBXL_FOLDS, SPLITS
from ecg_instruct.sources import SOURCE_DIRS

#: The recipes shipped with the package (`--recipe meit` = `BUNDLED_RECIPES / "meit.yaml"`):
#: the checkout's `pipelines/`, installed as `ecg_instruct/recipes/`.
BUNDLED_RECIPES = RECIPES_DIR


@dataclass(frozen=True)
class PtbxlSourceConfig:
    records: Literal["hr", "lr"] = "hr"
    """`hr` reads records500/ (500 Hz), `lr` reads records100/ (100 Hz)."""


@dataclass(frozen=True)
class SourcesConfig:
    ptbxl: PtbxlSourceConfig = field(default_factory=PtbxlSourceConfig)
    enabled: list[str] = field(default_factory=lambda: ["ptbxl", "mimic"])


@dataclass(frozen=True)
class SplitConfig:
    ptbxl_folds: dict[str, list[int]] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_PTBXL_FOLDS.items()}
    )
    mimic_fractions: list[float] = field(default_factory=lambda: list(DEFAULT_MIMIC_FRACTIONS))
    mimic_seed: int = 0


@dataclass(frozen=True)
class SignalsConfig:
    fs: int = 500
    duration_s: float = 10.0
    length_policy: Literal["strict", "crop", "crop_pad", "window"] = "strict"
    dtype: Literal["float32", "int16"] = "float32"
    quality: dict[str, Any] = field(default_factory=dict)
    """Thresholds for `ecg_instruct.signals.quality.QualityConfig` (validated there)."""

    @property
    def n_samples(self) -> int:
        return int(round(self.fs * self.duration_s))


@dataclass(frozen=True)
class ReportsConfig:
    translator: str = "glossary"
    translator_model: str | None = None
    min_coverage: float = 0.8
    report_style: Literal["text", "labels"] = "text"


@dataclass(frozen=True)
class InstructConfig:
    """How records become instruction examples (see docs/templates.md)."""

    tasks: dict[str, int] = field(default_factory=lambda: {"report": 1})
    """Task family -> examples per record (distinct templates, drawn per record from the seed)."""
    ecg_token: str = "<ecg>"
    system_template: str = "system/default"
    min_likelihood: float = 50.0
    """PTB-XL statements with likelihood >= this count as present for `diagnosis`/`rhythm`."""
    layout: Literal["records", "flat"] = "records"
    """`records`: instruction rows reference the record by `id`; `flat`: each row repeats `signal`."""

    def validate(self, path: str | Path) -> None:
        """Checks a type annotation cannot express; raises UserError naming the recipe."""
        for task, count in self.tasks.items():
            if count < 0:
                raise UserError(f"instruct.tasks.{task}: examples per record must be >= 0, "
                                f"got {count}", path=path, fix="e.g. tasks: {report: 1}")
        if not self.ecg_token.strip():
            raise UserError("instruct.ecg_token must not be blank", path=path,
                            fix='e.g. ecg_token: "<ecg>"')
        if not 0 <= self.min_likelihood <= 100:
            raise UserError(f"instruct.min_likelihood must be in 0..100, got {self.min_likelihood}",
                            path=path, fix="PTB-XL likelihoods are percentages, e.g. 50")


@dataclass(frozen=True)
class PublishConfig:
    rows_per_file: int = 1000
    row_group_rows: int = 128


@dataclass(frozen=True)
class EcgqaConfig:
    """The ECG-QA question task (`ecgqa:` in the recipe; absent = not built). See docs/ecgqa.md."""

    variant: Literal["template", "paraphrased", "both"] = "template"
    """Which of the release's question wordings to read."""
    split: Literal["ours", "benchmark"] = "ours"
    """`ours`: a question takes its ECGs' split in this build (no leakage across configs);
    `benchmark`: ECG-QA's own train/valid/test, for numbers comparable with published ones."""


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str = ""
    shard_size: int = 256
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    instruct: InstructConfig = field(default_factory=InstructConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    ecgqa: EcgqaConfig | None = None
    path: str = ""

    def fingerprint(self) -> str:
        """A hash of everything that changes the output (not the file's location)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The recipe's settings; a section that is off (`ecgqa`) is left out, so recipes
        written before it existed keep their fingerprint (and their datasets' bytes)."""
        payload = dataclasses.asdict(self)
        payload.pop("path")
        if payload["ecgqa"] is None:
            payload.pop("ecgqa")
        return payload


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _coerce(value: Any, annotation: Any, where: str, path: Path) -> Any:
    """Check `value` against a type annotation, converting only where it is lossless."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    def fail() -> typing.NoReturn:
        raise UserError(
            f"{where}: expected {_type_name(annotation)}, got {value!r}",
            path=path,
            fix=f"fix the value in the recipe (see {BUNDLED_RECIPES / 'meit.yaml'} for an example)",
        )

    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            fail()
        return _build(annotation, value, where, path)
    if origin is Literal:
        if value not in args:
            raise UserError(
                f"{where}: {value!r} is not one of {', '.join(map(repr, args))}", path=path,
                fix="use one of the allowed values",
            )
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where, path)
            except UserError:
                continue
        fail()
    if origin is list:
        if not isinstance(value, list):
            fail()
        return [_coerce(item, args[0], f"{where}[{i}]", path) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail()
        return {
            _coerce(k, args[0], f"{where} key", path): _coerce(v, args[1], f"{where}.{k}", path)
            for k, v in value.items()
        }
    if annotation is Any:
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            fail()
        return value
    fail()


def _build(cls: type, data: dict[str, Any], where: str, path: Path) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "path"]
    unknown = [key for key in data if key not in names]
    if unknown:
        prefix = f"{where}." if where else ""
        raise UserError(
            f"unknown key {prefix}{unknown[0]}",
            path=path,
            fix=f"allowed keys{' in ' + where if where else ''}: {', '.join(names)}",
        )
    kwargs = {
        key: _coerce(value, hints[key], f"{where}.{key}" if where else key, path)
        for key, value in data.items()
    }
    return cls(**kwargs)


def bundled_recipe_names() -> list[str]:
    """Names accepted by `--recipe NAME`, e.g. `meit`, `meit-100hz`."""
    return sorted(p.stem for p in BUNDLED_RECIPES.glob("*.yaml"))


def recipe_path(name_or_path: str | Path) -> Path:
    """The file behind `--recipe`: an existing file wins, else a bundled recipe by name.

    A name is what a user can type from any directory after `pip install`; a path keeps working
    for their own recipes. Neither found is a one-line error listing the bundled names.
    """
    given = Path(name_or_path)
    if given.is_file():
        return given
    names = bundled_recipe_names()
    name = given.name.removesuffix(".yaml").removesuffix(".yml")
    if str(given) in (name, f"{name}.yaml", f"{name}.yml") and name in names:
        return BUNDLED_RECIPES / f"{name}.yaml"
    if name in names:
        fix = f"pass --recipe {name} (the bundled recipe) or the path of an existing YAML file"
    else:
        fix = f"pass a bundled recipe name ({', '.join(names)}) or the path of an existing YAML file"
    raise UserError("recipe not found", path=given, fix=fix)


def load_recipe(path: str | Path) -> Recipe:
    """Parse and validate a recipe: a bundled name (`meit`) or a YAML file's path."""
    path = recipe_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeError as exc:
        raise UserError(f"not UTF-8 text (byte {exc.start})", path=path,
                        fix="save the recipe as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = (getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]).strip()
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise UserError(f"not valid YAML ({reason}{where})", path=path,
                        fix="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise UserError("a recipe must be a YAML mapping", path=path,
                        fix=f"see {BUNDLED_RECIPES / 'meit.yaml'}")
    if "name" not in data:
        raise UserError("missing key name", path=path, fix="add `name: <recipe name>`")
    recipe = _build(Recipe, data, "", path)
    check_values(recipe, path)
    return dataclasses.replace(recipe, path=str(path))


#: Sources a recipe may enable (one reader each in ecg_instruct.sources).
KNOWN_SOURCES = tuple(SOURCE_DIRS)
#: Bounds that catch a typo (`fs: 5000000`) before it allocates gigabytes per record.
MAX_FS = 20_000
MAX_DURATION_S = 3600.0


def check_values(recipe: Recipe, path: str | Path) -> None:
    """Values that type-check but cannot work, found before any work rather than after it.

    Each would otherwise surface late and far from its cause: `rows_per_file: 0` as a division by
    zero after the whole build, `enabled: []` as an internal error, a fold in two splits as a
    silently empty split.
    """
    def fail(message: str, fix: str) -> typing.NoReturn:
        raise UserError(message, path=path, fix=fix)

    if not recipe.name.strip():
        fail("name must not be blank", "e.g. name: meit")
    enabled = recipe.sources.enabled
    if not enabled:
        fail("sources.enabled is empty: nothing to build", "e.g. enabled: [ptbxl, mimic]")
    for source in enabled:
        if source not in KNOWN_SOURCES:
            fail(f"sources.enabled: unknown source {source!r}", f"use some of {', '.join(KNOWN_SOURCES)}")
    if len(set(enabled)) != len(enabled):
        fail(f"sources.enabled lists a source twice: {enabled}", "list each source once")
    _check_folds(recipe.split.ptbxl_folds, fail)
    fractions = recipe.split.mimic_fractions
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        fail("split.mimic_fractions must be three non-negative numbers summing to 1",
             "e.g. [0.9, 0.05, 0.05] for train, validation, test")
    signals = recipe.signals
    if recipe.shard_size <= 0:
        fail(f"shard_size must be positive, got {recipe.shard_size}", "e.g. shard_size: 256")
    if not 0 < signals.fs <= MAX_FS:
        fail(f"signals.fs must be in 1..{MAX_FS} Hz, got {signals.fs}", "e.g. fs: 500")
    if not 0 < signals.duration_s <= MAX_DURATION_S:
        fail(f"signals.duration_s must be in (0, {MAX_DURATION_S:g}] seconds, "
             f"got {signals.duration_s:g}", "e.g. duration_s: 10")
    if signals.n_samples < 1:
        fail(f"signals.fs x duration_s is {signals.fs * signals.duration_s:g}: "
             "less than one sample per lead", "e.g. fs: 500, duration_s: 10")
    from ecg_instruct.reports.translate import TRANSLATORS

    if recipe.reports.translator not in TRANSLATORS:
        fail(f"reports.translator: unknown translator {recipe.reports.translator!r}",
             f"use one of {', '.join(TRANSLATORS)}")
    if not 0 <= recipe.reports.min_coverage <= 1:
        fail(f"reports.min_coverage must be in 0..1, got {recipe.reports.min_coverage:g}",
             "a share of the report's tokens, e.g. 0.8")
    for key in ("rows_per_file", "row_group_rows"):
        value = getattr(recipe.publish, key)
        if value < 1:
            fail(f"publish.{key} must be at least 1, got {value}",
                 "e.g. rows_per_file: 1000, row_group_rows: 128")
    recipe.instruct.validate(path)


def task_count_warnings(recipe: Recipe, library) -> list[str]:
    """One line per `instruct.tasks` count above the task's number of templates: a record gets
    at most one example per template (no template twice), so the count is capped there."""
    lines = []
    for task, wanted in sorted(recipe.instruct.tasks.items()):
        have = len(library.for_task(task))
        if wanted > have > 0:
            lines.append(f"{recipe.path or recipe.name}: instruct.tasks.{task}: {wanted} examples "
                         f"per record asked, but there are {have} {task} templates: each record "
                         f"gets at most {have} (one per template); add templates with "
                         f"--templates or lower the count")
    return lines


def _check_folds(folds: dict[str, list[int]], fail: Callable[[str, str], typing.NoReturn]) -> None:
    """Every PTB-XL strat_fold 1..10 in exactly one of train/validation/test."""
    fix = "e.g. ptbxl_folds: {train: [1, 2, 3, 4, 5, 6, 7, 8], validation: [9], test: [10]}"
    owner: dict[int, str] = {}
    for split, members in folds.items():
        if split not in SPLITS:
            fail(f"split.ptbxl_folds: unknown split {split!r}", f"use {', '.join(SPLITS)}; {fix}")
        for fold in members:
            if not 1 <= fold <= 10:
                fail(f"split.ptbxl_folds.{split}: fold {fold} does not exist (PTB-XL has 1..10)",
                     fix)
            if fold in owner:
                fail(f"split.ptbxl_folds: fold {fold} is in both {owner[fold]} and {split}",
                     f"put each fold in one split; {fix}")
            owner[fold] = split
    missing = [fold for fold in range(1, 11) if fold not in owner]
    if missing:
        fail(f"split.ptbxl_folds: fold(s) {', '.join(map(str, missing))} in no split (their "
             "records would have nowhere to go)", f"assign every fold 1..10; {fix}")
