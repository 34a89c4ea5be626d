"""CSV loading shared by the source readers: strict about structure, tolerant about content."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ecg_instruct.errors import UserError

#: Column set on rows that do not fit the header (more cells than columns): the reader rejects
#: that record (`bad_csv_row`) instead of the whole file failing to parse.
ROW_ERROR = "__row_error__"


def read_metadata_csv(path: Path, required: Iterable[str], fix: str) -> pd.DataFrame:
    """Read a metadata CSV as strings, failing with one line if it is absent or misshapen.

    Everything is read as text (no NaN coercion, no float ids like ``15709.0`` becoming floats)
    so that each reader decides how to interpret a cell. Undecodable bytes become U+FFFD so that
    one bad report costs one record (rejected later with a reason), not the whole build.
    """
    if not path.is_file():
        raise UserError("file not found", path=path, fix=fix)
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
            encoding_errors="replace",
        )
    except pd.errors.ParserError as exc:
        # rare: only a file with a row longer than its header pays for Python parsing
        frame = _read_ragged(path) if "fields in line" in str(exc) else None
        if frame is None:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "ParserError"
            raise UserError(f"cannot parse CSV ({first_line})", path=path, fix=fix) from None
    except (pd.errors.EmptyDataError, UnicodeError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot parse CSV ({first_line})", path=path, fix=fix) from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise UserError(
            f"missing column(s) {', '.join(missing)}",
            path=path,
            fix=f"expected the original PhysioNet columns; {fix}",
        )
    return frame


def _read_ragged(path: Path) -> pd.DataFrame | None:
    """The file with rows longer than the header kept in place (their first cells, so the id
    is still there) and marked in :data:`ROW_ERROR`; None if it is broken in another way.

    A stray comma in one report must cost that record, as the docs promise, not the build.
    """
    limit = csv.field_size_limit(2**31 - 1)  # pandas reads any cell size: so must this
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            rows, errors = [], []
            for cells in reader:
                if not cells:
                    continue  # a blank line, as pandas skips it
                if len(cells) > len(header):
                    errors.append(f"CSV line {reader.line_num} has {len(cells)} fields, the "
                                  f"header {len(header)} (an unquoted comma?)")
                    cells = cells[: len(header)]
                else:
                    errors.append("")
                    cells = cells + [""] * (len(header) - len(cells))
                rows.append(cells)
    except (csv.Error, StopIteration, OSError):
        return None
    finally:
        csv.field_size_limit(limit)
    if len(set(header)) != len(header):
        return None
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    frame[ROW_ERROR] = errors
    return frame


def row_error(record: dict) -> str:
    """Why a row read by :func:`read_metadata_csv` does not fit its header ('' if it does)."""
    return record.get(ROW_ERROR) or ""


def plausible_age(age: float | None) -> float | None:
    """An age in years as published: 300 is PTB-XL's code for "over 89" (published as 90);
    anything else outside 0..120 (`-5`, `150`) is a typo, published as missing, not as a fact."""
    if age == 300:
        return 90.0
    return age if age is not None and 0 <= age <= 120 else None


def to_float(value: str) -> float | None:
    """Parse a numeric cell; empty or malformed cells are missing, not errors."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN -> None


def to_int_string(value: str) -> str | None:
    """Normalise integer-like ids (``'15709.0'`` -> ``'15709'``); None if not an integer."""
    number = to_float(value)
    if number is None or number != int(number):
        return None
    return str(int(number))


class IndexRejects:
    """Index-stage rejects of one source, and the record ids seen so far.

    A repeated id is a reject of its own (`<id>#line-N`), so the first row is kept and the
    accounting never sees one id twice.
    """

    def __init__(self, source: str):
        self.source = source
        self.rows: list[dict[str, str]] = []
        self.seen: set[str] = set()

    def add(self, record_id: str, reason: str, detail: str) -> None:
        self.rows.append({"id": record_id, "source": self.source, "stage": "index",
                          "reason": reason, "detail": detail})

    def is_duplicate(self, record_id: str, line: int, what: str) -> bool:
        """Reject and report True if `record_id` was seen before; else remember it."""
        if record_id in self.seen:
            self.add(f"{record_id}#line-{line}", "duplicate_id",
                     f"{what} appears more than once (CSV line {line}); kept the first")
            return True
        self.seen.add(record_id)
        return False

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)
