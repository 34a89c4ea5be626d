"""ECG-QA 1.0.2 (Oh et al., NeurIPS 2023; github.com/Jwoo5/ecg-qa, CC BY 4.0): question files.

ECG-QA is not a source of ECGs but of questions about them: each sample names one or two ECGs of
PTB-XL (by `ecg_id`) or MIMIC-IV-ECG (by `study_id`). This module reads a local copy of the
release's `ecgqa/` folder, kept under `<raw-dir>/ecg-qa/`:

    ecg-qa/ecgqa/{ptbxl,mimic-iv-ecg}/{template,paraphrased}/{train,valid,test}/<N>.json

(chunks of up to 10,000 samples named by their first `sample_id`, e.g. `test/80000.json`, read in
numeric order; older releases have a single
`{train,valid,test}.json` instead of the folder). Each file is a JSON list of samples with
`template_id`, `question_id`, `sample_id` (ints), `question_type`, `attribute_type`, `question`
(str), `answer` (list of str), `ecg_id` (list of 1 or 2 ints) and `attribute` (list of str or null).

A file that is not a JSON list stops the build (`UserError` naming it); a sample with a missing or
wrongly typed field is kept with a `problem`, so the questions stage rejects it as
`malformed_question` and every question read is accounted for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecg_instruct.errors import UserError

#: `<raw-dir>/ecg-qa/` holds the repository's `ecgqa/` folder.
ECGQA_DIR = "ecg-qa"
RELEASE_FOLDER = "ecgqa"
#: Release edition folder -> our source (whose records the questions are about).
EDITIONS = {"ptbxl": "ptbxl", "mimic-iv-ecg": "mimic"}
EDITION_OF_SOURCE = {source: edition for edition, source in EDITIONS.items()}
VARIANTS = ("template", "paraphrased")
RELEASE_SPLITS = ("train", "valid", "test")
#: ECG-QA's split names -> ours (for `ecgqa.split: benchmark`).
SPLIT_NAMES = {"train": "train", "valid": "validation", "test": "test"}
QUESTION_TYPES = (
    "single-verify", "single-choose", "single-query",
    "comparison_consecutive-verify", "comparison_consecutive-query",
    "comparison_irrelevant-verify", "comparison_irrelevant-query",
)
#: Columns of the question table (`read_questions`), one row per sample read.
QUESTION_COLUMNS = ("id", "source", "edition", "variant", "release_split", "sample_id",
                    "template_id", "question_id", "question_type", "attribute_type", "question",
                    "answer", "ecg_native", "attribute", "file", "problem")


def release_root(raw_dir: str | Path) -> Path:
    """`<raw-dir>/ecg-qa/ecgqa`: the release's question folders."""
    return Path(raw_dir) / ECGQA_DIR / RELEASE_FOLDER


def variants_of(setting: str) -> tuple[str, ...]:
    """The recipe's `ecgqa.variant` (`template`, `paraphrased` or `both`) as variant folders."""
    return VARIANTS if setting == "both" else (setting,)


def question_id(edition: str, variant: str, release_split: str, sample_id: object) -> str:
    """`ecgqa/ptbxl/template/test/80000`: sample ids restart in each release split."""
    return f"ecgqa/{edition}/{variant}/{release_split}/{sample_id}"


def question_files(root: Path, edition: str, variant: str, release_split: str) -> list[Path]:
    """The JSON files of one (edition, variant, split): the chunk folder's `*.json` in numeric
    order of their names (`0.json`, `10000.json`, ...; other names after, by name), else the
    older single `<split>.json`, else none."""
    base = root / edition / variant
    folder = base / release_split
    if folder.is_dir():
        return sorted((p for p in folder.iterdir() if p.suffix == ".json" and p.is_file()),
                      key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0,
                                     p.name))
    single = base / f"{release_split}.json"
    return [single] if single.is_file() else []


def check_release(raw_dir: str | Path, sources: Sequence[str], variants: Sequence[str]) -> None:
    """Before any work: the folder of every (edition, variant) the build asks for holds at least
    one question file; else a one-line error naming the missing folder and the fix."""
    root = release_root(raw_dir)
    for source in sources:
        edition = EDITION_OF_SOURCE.get(source)
        if edition is None:
            continue
        for variant in variants:
            if not any(question_files(root, edition, variant, s) for s in RELEASE_SPLITS):
                raise UserError(
                    "no ECG-QA question files (expected {train,valid,test}/<N>.json or "
                    "{train,valid,test}.json)", path=root / edition / variant,
                    fix="run `ecg-instruct download ecgqa --out <raw-dir>` (or `ecg-instruct "
                        "sample` for the synthetic mirror), or drop `ecgqa` from the recipe")


def load_file(path: Path) -> list[Any]:
    """One question file as a JSON list; anything else is a `UserError` naming the file."""
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise UserError(f"cannot read ({exc.strerror})", path=path,
                        fix="re-run `ecg-instruct download ecgqa`") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"not valid JSON ({str(exc).splitlines()[0]})", path=path,
                        fix="re-run `ecg-instruct download ecgqa` (the file is damaged)") from None
    if not isinstance(data, list):
        raise UserError(f"expected a JSON list of questions, got a {type(data).__name__}",
                        path=path, fix="point --raw-dir at a copy of the ECG-QA release")
    return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def sample_problem(sample: object) -> str | None:
    """What makes a sample unusable (one line), or None for a well-formed one."""
    if not isinstance(sample, dict):
        return f"not a JSON object ({type(sample).__name__})"
    for key in ("sample_id", "template_id", "question_id"):
        if not _is_int(sample.get(key)):
            return f"{key} is {sample.get(key)!r}, not an integer"
    for key in ("question_type", "attribute_type", "question"):
        if not isinstance(sample.get(key), str) or not sample[key].strip():
            return f"{key} is {sample.get(key)!r}, not a non-empty string"
    if sample["question_type"] not in QUESTION_TYPES:
        return f"unknown question_type {sample['question_type']!r}"
    answer = sample.get("answer")
    if not _str_list(answer) or not answer or not all(a.strip() for a in answer):
        return f"answer is {answer!r}, not a non-empty list of strings"
    ecgs = sample.get("ecg_id")
    want = 2 if sample["question_type"].startswith("comparison") else 1
    if not isinstance(ecgs, list) or not all(_is_int(e) and e > 0 for e in ecgs):
        return f"ecg_id is {ecgs!r}, not a list of positive integers"
    if len(ecgs) != want:
        return f"{sample['question_type']} names {len(ecgs)} ECGs, expected {want}"
    if want == 2 and ecgs[0] == ecgs[1]:
        return f"compares ECG {ecgs[0]} with itself"
    attribute = sample.get("attribute")
    if attribute is not None and not _str_list(attribute):
        return f"attribute is {attribute!r}, not a list of strings or null"
    return None


@dataclass(frozen=True)
class ReleasePart:
    """One (edition, variant, release split) of the release, with its files."""

    edition: str
    variant: str
    release_split: str
    files: tuple[Path, ...]

    @property
    def source(self) -> str:
        return EDITIONS[self.edition]


def release_parts(raw_dir: str | Path, sources: Sequence[str],
                  variants: Sequence[str]) -> list[ReleasePart]:
    """Every part of the release the build reads, in a fixed order (edition, variant, split)."""
    root = release_root(raw_dir)
    parts = []
    for edition, source in EDITIONS.items():
        if source not in sources:
            continue
        for variant in variants:
            for release_split in RELEASE_SPLITS:
                files = question_files(root, edition, variant, release_split)
                if files:
                    parts.append(ReleasePart(edition, variant, release_split, tuple(files)))
    return parts


def iter_questions(part: ReleasePart) -> Iterator[dict[str, Any]]:
    """The rows (`QUESTION_COLUMNS`) of one release part, in file order.

    A malformed sample gets the id its `sample_id` gives when that is an integer, else
    `<file stem>#<position>` in place of the sample id, so even it can be named in the rejects.
    A `sample_id` seen twice in one part is a problem of the later sample (id
    `<sample_id>#<file stem>-<position>`), so ids stay unique.
    """
    seen: dict[int, str] = {}
    for path in part.files:
        for position, sample in enumerate(load_file(path)):
            problem = sample_problem(sample)
            raw_id = sample.get("sample_id") if isinstance(sample, dict) else None
            sample_id = raw_id if _is_int(raw_id) else None
            if sample_id is None:
                ident: object = f"{path.stem}#{position}"
            elif sample_id in seen:
                problem = problem or f"sample_id {sample_id} appears twice (also in {seen[sample_id]})"
                ident = f"{sample_id}#{path.stem}-{position}"
            else:
                seen[sample_id] = path.name
                ident = sample_id
            row = {
                "id": question_id(part.edition, part.variant, part.release_split, ident),
                "source": part.source, "edition": part.edition, "variant": part.variant,
                "release_split": part.release_split, "sample_id": sample_id,
                "file": f"{part.edition}/{part.variant}/{path.parent.name}/{path.name}"
                        if path.parent.name == part.release_split
                        else f"{part.edition}/{part.variant}/{path.name}",
                "problem": problem,
            }
            if problem is None:
                row.update({
                    "template_id": sample["template_id"], "question_id": sample["question_id"],
                    "question_type": sample["question_type"],
                    "attribute_type": sample["attribute_type"], "question": sample["question"],
                    "answer": list(sample["answer"]), "ecg_native": list(sample["ecg_id"]),
                    "attribute": None if sample.get("attribute") is None
                    else list(sample["attribute"]),
                })
            else:
                row.update({"template_id": None, "question_id": None, "question_type": None,
                            "attribute_type": None, "question": None, "answer": None,
                            "ecg_native": None, "attribute": None})
            yield row


def read_questions(raw_dir: str | Path, sources: Sequence[str],
                   variants: Sequence[str]) -> list[dict[str, Any]]:
    """Every question of the release parts the build reads (see `iter_questions`)."""
    return [row for part in release_parts(raw_dir, sources, variants)
            for row in iter_questions(part)]
