"""CSV loading shared by the source readers: strict about structure, tolerant about content."""

from __future__ import annotations

import csv
import mmap
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv

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


def read_metadata_table(
    path: Path, required: Iterable[str], fix: str, columns: Iterable[str] | None = None,
) -> pa.Table:
    """:func:`read_metadata_csv` as an Arrow table of strings, read ~4x faster.

    The pyarrow parser reads a well-formed file (every row as long as the header, valid UTF-8,
    no NUL byte, distinct non-empty column names); there it gives pandas' cells exactly. Any
    other file is read by :func:`read_metadata_csv` (with its ragged-row and error handling)
    and converted, so what a reader sees never depends on which parser ran. A cell missing in
    the pandas frame (NaN) is null here. With `columns`, only those of them in the file (and
    `ROW_ERROR`, when there) are kept: the others are not converted at all.
    """
    read = _read_wellformed(path, None if columns is None else set(columns))
    if read is None or any(column not in read[1] for column in required):
        # pandas then reads it, or says what is wrong with it, in its words
        frame = read_metadata_csv(path, required, fix)
        if columns is not None:
            wanted = set(columns) | {ROW_ERROR}
            frame = frame[[name for name in frame.columns if name in wanted]]
        return pa.Table.from_pandas(frame.astype(object), preserve_index=False)
    return read[0]


def _read_wellformed(path: Path, columns: set[str] | None) -> tuple[pa.Table, list[str]] | None:
    """(the file by pyarrow, its header), or None where pandas' reading could differ (see
    :func:`read_metadata_table`) or pyarrow fails; strings, one chunk per column."""
    try:
        with path.open("rb") as handle:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # ValueError: an empty file cannot be mapped
        return None
    if data.find(b"\x00") >= 0:  # pandas ends a cell at a NUL byte, pyarrow keeps it
        return None
    newline = data.find(b"\n")
    first = data[: newline if newline >= 0 else len(data)].split(b"\r", 1)[0].decode(
        "utf-8", "replace")
    header = next(csv.reader([first.removeprefix("\ufeff")]), [])
    if not header or "" in header or len(set(header)) != len(header):
        return None  # pandas renames such columns (`Unnamed: 0`, `a.1`)
    wanted = [name for name in header if columns is None or name in columns]
    try:
        table = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=pcsv.ReadOptions(use_threads=False, block_size=max(1 << 20, len(data))),
            parse_options=pcsv.ParseOptions(newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, include_columns=wanted,
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowException:
        return None  # a ragged row, bad UTF-8, ...: pandas reads it (or says why not)
    if table.column_names != wanted or any(t != pa.string() for t in table.schema.types):
        return None
    return table.combine_chunks(), header


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
