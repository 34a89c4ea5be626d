"""The published `ecgqa` config: `data/ecgqa/<split>-NNNNN-of-NNNNN.parquet`, no signals.

ECG-QA asks about twenty questions per ECG, so a question row holds its ECGs' record ids
(`ecg_ids`), never their samples: `ecg_instruct.with_signals` fetches those from the source
configs. Rows keep the release's order (edition, variant, release split, file order), which is
fixed by the input, so the bytes do not depend on workers or on anything but the inputs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features, List, Value

from ecg_instruct.build.accounting import AccountingError
from ecg_instruct.build.workio import atomic_parquet
from ecg_instruct.index.split import SPLITS
from ecg_instruct.publish.features import declare_config

CONFIG_NAME = "ecgqa"
#: Question rows are small (~0.5 kB): large files, row groups a reader can skip through.
ROWS_PER_FILE = 100_000
ROW_GROUP_ROWS = 10_000


def question_features() -> Features:
    """HF features of the `ecgqa` config (declared in the card, so loading needs no guessing)."""
    return Features({
        "id": Value("string"),
        "source": Value("string"),
        "split": Value("string"),
        "variant": Value("string"),
        "release_split": Value("string"),
        "sample_id": Value("int64"),
        "messages": List({"role": Value("string"), "content": Value("string")}),
        "question": Value("string"),
        "question_type": Value("string"),
        "attribute_type": Value("string"),
        "template_id": Value("int64"),
        "question_id": Value("int64"),
        "answer": List(Value("string")),
        "attribute": List(Value("string")),
        "ecg_ids": List(Value("string")),
    })


@dataclass
class QuestionsInfo:
    """What the questions stage read, published and rejected (summary, card, accounting)."""

    policy: str
    variants: list[str]
    n_in: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # split -> questions published
    by_type: list[dict[str, Any]] = field(default_factory=list)  # source, variant, type, split n
    reasons: dict[str, int] = field(default_factory=dict)  # reject reason -> questions
    two_ecg: int = 0
    split_bytes: dict[str, int] = field(default_factory=dict)
    leakage: dict[str, dict[str, int]] = field(default_factory=dict)  # benchmark policy only

    @property
    def n_published(self) -> int:
        return sum(self.counts.values())

    @property
    def n_rejected(self) -> int:
        return sum(self.reasons.values())

    def to_json(self) -> bytes:
        """As the questions stage keeps it in its work folder (`from_json` reads it back)."""
        return json.dumps(dataclasses.asdict(self), indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> QuestionsInfo:
        """Equal to the one written (JSON keeps the dicts' order, and every key is a str)."""
        return cls(**json.loads(data))

    def card_context(self) -> dict[str, Any]:
        return {"policy": self.policy, "variants": self.variants, "n_in": self.n_in,
                "n_published": self.n_published, "n_rejected": self.n_rejected,
                "counts": [{"split": s, "n": self.counts[s]} for s in SPLITS if s in self.counts],
                "reasons": [{"reason": r, "n": n} for r, n in sorted(self.reasons.items())],
                "two_ecg": self.two_ecg,
                "leakage": [{"split": s, **self.leakage[s]} for s in SPLITS if s in self.leakage]}


class QuestionFiles:
    """Each split's rows, in the order added, as `<split>-NNNNN-of-NNNNN.parquet` files of
    `rows_per_file` rows, written as rows arrive (held as Arrow, ~0.5 kB a question, one file's
    worth at most per split): the release's millions of questions never sit in memory as Python
    objects. A file is written as `<split>-NNNNN.partial` and renamed once the split's number
    of files is known (`close`)."""

    def __init__(self, folder: Path, rows_per_file: int = ROWS_PER_FILE):
        self.folder, self.rows_per_file = folder, rows_per_file
        self.schema = question_features().arrow_schema.remove_metadata()
        self.pending: dict[str, list[pa.Table]] = {}
        self.n_pending: dict[str, int] = {}
        self.written: dict[str, list[Path]] = {}
        self.rows: dict[str, int] = {}

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        for split in SPLITS:
            part = [row for row in rows if row["split"] == split]
            if not part:
                continue
            table = pa.Table.from_pylist([{name: row[name] for name in self.schema.names}
                                          for row in part], schema=self.schema)
            self.pending.setdefault(split, []).append(table)
            self.n_pending[split] = self.n_pending.get(split, 0) + table.num_rows
            self.rows[split] = self.rows.get(split, 0) + table.num_rows
            while self.n_pending[split] >= self.rows_per_file:
                self._flush(split, self.rows_per_file)

    def _flush(self, split: str, n: int) -> None:
        table = pa.concat_tables(self.pending[split])
        number = len(self.written.setdefault(split, []))
        path = self.folder / f"{split}-{number:05d}.partial"
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_parquet(table.slice(0, n), path, row_group_size=ROW_GROUP_ROWS)
        self.written[split].append(path)
        rest = table.slice(n)
        self.pending[split] = [rest] if rest.num_rows else []
        self.n_pending[split] = rest.num_rows

    def close(self) -> dict[str, int]:
        """Write what is left, name every file `-of-N`; returns bytes per split."""
        sizes: dict[str, int] = {}
        for split in SPLITS:
            if self.n_pending.get(split):
                self._flush(split, self.n_pending[split])
            paths = self.written.get(split, [])
            if not paths:
                continue
            sizes[split] = 0
            for number, path in enumerate(paths):
                final = self.folder / f"{split}-{number:05d}-of-{len(paths):05d}.parquet"
                path.rename(final)
                sizes[split] += final.stat().st_size
            if len(paths) != math.ceil(self.rows[split] / self.rows_per_file):
                raise AccountingError(f"ecgqa {split}: {len(paths)} files for "
                                      f"{self.rows[split]} questions")
        return sizes


def write_question_files(rows: Sequence[dict[str, Any]], folder: Path,
                         rows_per_file: int = ROWS_PER_FILE) -> dict[str, int]:
    """Each split's rows (in their given order) as `<split>-NNNNN-of-NNNNN.parquet`; returns
    bytes written per split."""
    files = QuestionFiles(folder, rows_per_file)
    files.add(rows)
    return files.close()


def add_questions_config(header: dict[str, Any], info: QuestionsInfo) -> None:
    """Declare the `ecgqa` config (never the default) in the card's YAML header."""
    splits = [s for s in SPLITS if s in info.counts]
    if not splits:
        return
    declare_config(header, CONFIG_NAME, question_features(),
                   [(s, info.split_bytes[s], info.counts[s]) for s in splits])


def read_question_ids(folder: Path) -> list[str]:
    """Every published question id (for the accounting check)."""
    return [i for path in sorted(folder.glob("*.parquet"))
            for i in pq.read_table(path, columns=["id"]).column("id").to_pylist()]
