"""Reading another model's outputs for ``ecg-instruct score``: JSONL or Parquet rows of
``id``, ``prediction`` and optionally ``reference`` and ``condition``.

``evaluate`` writes its own ``predictions.parquet`` with one row per record and ``condition``
(``clean``: the real ECG; with ``--controls`` also ``ecg=zeros`` and ``ecg=shuffle``; noise levels
with ``--noise``): the rows of one condition are scored, ``clean`` unless another is asked for.

Bad input is a one-line ``UserError`` naming the file (missing column, duplicate id, unknown id,
unreadable file). A missing or empty prediction is kept as "" and counted, never dropped: a
model that says nothing for a record must pay for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ecg_instruct.errors import UserError

REQUIRED = ("id", "prediction")
#: The condition scored by default in a file with a ``condition`` column: the real, clean ECG.
REAL_CONDITION = "clean"


@dataclass
class PredictionRows:
    ids: list[str]
    predictions: list[str]
    references: list[str] | None  # None when the file has no reference column
    condition: str | None = None  # the condition scored, when the file has a condition column


def read_predictions(path: Path, condition: str | None = None,
                     keep_lists: bool = False) -> PredictionRows:
    """Rows of a ``.jsonl`` or ``.parquet`` predictions file, validated; in a file with a
    ``condition`` column, the rows of `condition` (default: ``clean``, the real ECG).
    ``keep_lists``: a prediction given as a list of strings stays a list (ECG-QA answer terms)."""
    path = Path(path)
    if not path.is_file():
        raise UserError("predictions file not found", path, "pass a .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        rows = _jsonl_rows(path)
        columns = set().union(*(r.keys() for r in rows)) if rows else set()
        table = {c: [r.get(c) for r in rows] for c in columns}
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path).to_pydict()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise UserError(f"cannot read Parquet ({exc})".replace("\n", " "), path) from exc
    else:
        raise UserError(
            f"unknown predictions format {suffix!r}", path, "use .jsonl or .parquet"
        )
    missing = [c for c in REQUIRED if c not in table]
    if missing:
        raise UserError(
            f"missing column(s) {missing} (have {sorted(table)})", path,
            "every row needs `id` and `prediction` (and `reference`, or pass --data)",
        )  # fmt: skip
    chosen = None
    if "condition" in table:
        chosen = condition or REAL_CONDITION
        present = sorted({str(c) for c in table["condition"]})
        if chosen not in present:
            raise UserError(f"no rows of condition {chosen!r} (conditions: {', '.join(present)})",
                            path, f"pass --condition with one of {', '.join(present)}")
        keep = [str(c) == chosen for c in table["condition"]]
        table = {k: [v for v, k_ in zip(vals, keep, strict=True) if k_] for k, vals in table.items()}
    elif condition is not None:
        raise UserError(f"--condition {condition!r} given but the file has no condition column",
                        path, "drop --condition")
    ids = [str(i) for i in table["id"]]
    if not ids:
        raise UserError("no rows", path, "write one row per record")
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise UserError(f"duplicate id {i!r}", path, "one prediction per record")
        seen.add(i)
    predictions = ["" if p is None else list(map(str, p)) if keep_lists and isinstance(p, list)
                   else str(p) for p in table["prediction"]]
    references = None
    if "reference" in table:
        references = ["" if r is None else str(r) for r in table["reference"]]
    return PredictionRows(ids, predictions, references, chosen)


def _jsonl_rows(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"line {number} is not JSON ({exc.msg})", path) from exc
            if not isinstance(row, dict):
                raise UserError(f"line {number} is not a JSON object", path)
            rows.append(row)
    return rows
