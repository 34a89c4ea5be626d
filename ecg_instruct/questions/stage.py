"""The questions stage: ECG-QA questions -> the `ecgqa` config + question rejects.

It runs after publish, which staged the records' dataset in `<out>.tmp/` and left in the work
folder which records it published, in which split, and why the others were rejected
(`publish.stage.PUBLISHED_FILE`, `RECORD_REJECTS_FILE`): the join needs that final record set,
after duplicate removal. It does its own work in `<work>/questions/<digest>/` (the `ecgqa/`
files, `rejects.parquet`, then `info.json`, which marks it done), `digest` hashing the bytes of
every question file the build reads and of publish's two record files. So an edited, added or
removed question file, or a record published or rejected differently, is another digest, never
stale work, and an unchanged build skips the join. Then it adds that work to the staged dataset
(`add_to_dataset`): the files under `data/ecgqa/`, its rejects beside the records' in
`rejects.parquet`, the config in the card's header, the card's questions section. The card is
rendered and the folder swapped into place by the next stage (`publish.swap`).

The question files are hashed whole, not by size and mtime as the signal files are: whenever
the join runs they are read whole anyway and hashing costs a fraction of parsing them
(`benchmarks/bench_ecgqa.py`), and an edit that keeps a file's size is seen even within the file
system's timestamp granularity.

Accounting: questions in = published + rejected, each question once, checked here before
anything is swapped into place (an `AccountingError` is a bug, never a user error).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecg_instruct.build.accounting import AccountingError
from ecg_instruct.build.options import BuildOptions
from ecg_instruct.build.recipe import EcgqaConfig
from ecg_instruct.build.stage import BuildContext
from ecg_instruct.build.workio import atomic_parquet, atomic_write
from ecg_instruct.errors import UserError
from ecg_instruct.publish.stage import PUBLISHED_FILE, RECORD_REJECTS_FILE, StagedDataset
from ecg_instruct.questions.join import RecordOutcomes, join_question, leakage_counts_by_split
from ecg_instruct.questions.publish import (
    CONFIG_NAME,
    QuestionFiles,
    QuestionsInfo,
    add_questions_config,
    read_question_ids,
)
from ecg_instruct.schema import REJECT_SCHEMA, rejects_frame
from ecg_instruct.sources.ecgqa import (
    ReleasePart,
    iter_questions,
    release_parts,
    release_root,
    variants_of,
)

#: In the work folder: `<digest>/` of the current inputs (earlier ones are removed).
WORK_FOLDER = "questions"
#: In `<digest>/`: the `QuestionsInfo`, written last (the done marker), and the rejects.
INFO_FILE = "info.json"
REJECTS_FILE = "rejects.parquet"


class QuestionsStage:
    """Skipped (`done`) without `ecgqa:` in the recipe: nothing is read or written. With it,
    `run` always runs, because the staged dataset is new in every build; it decides itself, like
    the signals stage, whether its work is current (see the module docstring)."""

    name = "questions"

    def done(self, context: BuildContext) -> bool:
        return context.options.recipe.ecgqa is None

    def run(self, context: BuildContext) -> None:
        folder = questions_work(context.options, context.work)
        info = QuestionsInfo.from_json((folder / INFO_FILE).read_bytes())
        add_to_dataset(folder, info, context.staged)
        context.summary.questions = info


def questions_work(options: BuildOptions, work: Path) -> Path:
    """`<work>/questions/<digest>/` for the current inputs: joined now, unless a run before this
    one finished it."""
    cfg = options.recipe.ecgqa
    parts = release_parts(options.raw_dir, options.sources, variants_of(cfg.variant))
    root = work / WORK_FOLDER
    folder = root / inputs_digest(options.raw_dir, parts, work)
    root.mkdir(exist_ok=True)
    for other in root.iterdir():  # outdated: never read again
        if other != folder:
            shutil.rmtree(other)
    if (folder / INFO_FILE).exists():
        return folder
    if folder.exists():  # a killed run's: the join is one pass, done again whole
        shutil.rmtree(folder)
    published = pq.read_table(work / PUBLISHED_FILE)
    filtered = bool(options.splits) or set(options.sources) != set(options.recipe.sources.enabled)
    info, rejects = run_questions(
        options.raw_dir, cfg, options.sources, options.recipe.instruct.ecg_token,
        zip(published.column("id").to_pylist(), published.column("split").to_pylist(),
            strict=True),
        pd.read_parquet(work / RECORD_REJECTS_FILE), folder / CONFIG_NAME, filtered=filtered)
    atomic_parquet(pa.Table.from_pandas(rejects, schema=REJECT_SCHEMA, preserve_index=False),
                   folder / REJECTS_FILE)
    atomic_write(info.to_json(), folder / INFO_FILE)
    return folder


def inputs_digest(raw_dir: Path, parts: Sequence[ReleasePart], work: Path) -> str:
    """What the join reads: publish's record files and every question file of the release
    parts the build reads (`files_digest`)."""
    files = [(name, work / name) for name in (PUBLISHED_FILE, RECORD_REJECTS_FILE)]
    return files_digest(files + release_files(raw_dir, parts))


def release_files(raw_dir: Path, parts: Sequence[ReleasePart]) -> list[tuple[str, Path]]:
    """(name relative to the release folder, path) of every question file of `parts`."""
    root = release_root(raw_dir)
    return [(path.relative_to(root).as_posix(), path) for part in parts for path in part.files]


def files_digest(files: Iterable[tuple[str, Path]]) -> str:
    """sha256 of the files' bytes, each framed by its name and size (so a file added, removed
    or renamed changes it too)."""
    digest = hashlib.sha256()
    for name, path in files:
        for chunk in _framed_bytes(name, path):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _framed_bytes(name: str, path: Path) -> Iterator[bytes]:
    """`name`, the size, then the file's bytes, a MiB at a time."""
    try:
        with path.open("rb") as handle:
            yield f"{name}\0{path.stat().st_size}\0".encode()
            while chunk := handle.read(1 << 20):
                yield chunk
    except OSError as exc:  # as `sources.ecgqa.load_file` says it, which would read it next
        raise UserError(f"cannot read ({exc.strerror})", path=path,
                        fix="re-run `ecg-instruct download ecgqa`") from None


def add_to_dataset(folder: Path, info: QuestionsInfo, staged: StagedDataset) -> None:
    """The stage's work (`folder`) into the staged dataset: the `ecgqa` files copied (not
    linked: a dataset file rewritten in place must not change the work it came from), the
    question rejects merged into `rejects.parquet` (id order, records' rows first for an id),
    the config declared in the card's header, the card's questions section."""
    files = sorted((folder / CONFIG_NAME).glob("*.parquet"))
    target = staged.folder / "data" / CONFIG_NAME
    if files:
        target.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, target / path.name)
    both = pd.concat([staged.rejects, pd.read_parquet(folder / REJECTS_FILE)], ignore_index=True)
    staged.rejects = both.sort_values(["id", "stage"], kind="stable").reset_index(drop=True)
    atomic_parquet(pa.Table.from_pandas(staged.rejects, schema=REJECT_SCHEMA, preserve_index=False),
                   staged.folder / "rejects.parquet")
    add_questions_config(staged.header, info)
    staged.card["questions"] = info.card_context()


def run_questions(
    raw_dir: Path, cfg: EcgqaConfig, sources: list[str], ecg_token: str,
    published: Iterable[tuple[str, str]], record_rejects: pd.DataFrame, folder: Path,
    filtered: bool = False,
) -> tuple[QuestionsInfo, pd.DataFrame]:
    """Read, join, write the config's files into `folder`; returns what was done and the rejects.

    Streamed a release file at a time (a file holds 10,000 questions): what stays in memory is
    every question's id (for the accounting check), the rejects, and per split the ECG ids
    (for the benchmark policy's leakage counts)."""
    variants = list(variants_of(cfg.variant))
    records = RecordOutcomes.from_tables(published, record_rejects.to_dict("records"), filtered)
    info = QuestionsInfo(policy=cfg.split, variants=variants)
    files = QuestionFiles(folder)
    read_ids: list[str] = []
    reject_rows: list[dict] = []
    types: dict[tuple[str, str, str], int] = {}
    ecgs_by_split: dict[str, set[str]] = {}
    for part in release_parts(raw_dir, sources, variants):
        batch: list[dict] = []
        for question in iter_questions(part):
            read_ids.append(question["id"])
            row, reject = join_question(question, records, cfg.split, ecg_token)
            if row is None:
                reject_rows.append(reject)
                info.reasons[reject["reason"]] = info.reasons.get(reject["reason"], 0) + 1
                continue
            batch.append(row)
            info.counts[row["split"]] = info.counts.get(row["split"], 0) + 1
            info.two_ecg += len(row["ecg_ids"]) == 2
            key = (row["source"], row["question_type"], row["split"])
            types[key] = types.get(key, 0) + 1
            if cfg.split == "benchmark":
                ecgs_by_split.setdefault(row["split"], set()).update(row["ecg_ids"])
            if len(batch) >= BATCH_ROWS:
                files.add(batch)
                batch = []
        files.add(batch)
    info.split_bytes = files.close()
    info.n_in = len(read_ids)
    info.by_type = [{"source": s, "question_type": t, "split": sp, "n": n}
                    for (s, t, sp), n in sorted(types.items())]
    if cfg.split == "benchmark":
        info.leakage = leakage_counts_by_split(ecgs_by_split, records)
    rejects = rejects_frame(reject_rows)
    _check(read_ids, read_question_ids(folder), rejects)
    return info, rejects


#: Questions joined before their rows go to the Arrow writer.
BATCH_ROWS = 10_000


def _check(read: list[str], published: list[str], rejects: pd.DataFrame) -> None:
    """Questions in = published + rejected, every question exactly once."""
    rejected = rejects["id"].tolist()
    out = published + rejected
    problems = []
    if len(set(read)) != len(read):
        problems.append("question ids read twice")
    if len(set(out)) != len(out):
        problems.append("questions both published and rejected, or counted twice")
    if set(out) != set(read):
        lost = sorted(set(read) - set(out))[:3]
        extra = sorted(set(out) - set(read))[:3]
        problems.append(f"lost {lost}, out of nowhere {extra}")
    if problems:
        raise AccountingError("question accounting violation: " + "; ".join(problems))
