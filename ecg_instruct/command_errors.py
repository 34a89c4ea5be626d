"""What the CLI says when a command meets a fault of the machine or of its input files.

Every command ends such a fault in one line and a non-zero exit, never a traceback: a missing
optional package names the extra that brings it (`pip install "ecg-instruct[train]"`), and an
unreadable Parquet file of a published dataset is named, found by reading the dataset's files
again (pyarrow and `datasets` rarely say which file they choked on).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from ecg_instruct.errors import UserError

#: Optional packages and the extra (pyproject.toml) that installs each.
EXTRA_OF_MODULE = {
    "torch": "train", "tokenizers": "train", "nltk": "train", "wn": "train",
    "transformers": "hf", "peft": "hf", "bert_score": "hf", "gguf": "llm", "h5py": "code15",
}


def missing_module_error(error: ImportError) -> UserError | None:
    """A `UserError` naming the extra to install for a missing optional package, else None."""
    name = (getattr(error, "name", None) or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(name)
    if extra is None:
        return None
    return UserError(f"{name} is not installed (an optional dependency)",
                     fix=f'pip install "ecg-instruct[{extra}]"')


def _drop_read_failures(record) -> bool:
    return not str(record.msg).startswith(("Failed to read file", "Failed to read schema"))


def quiet_dataset_read_errors() -> None:
    """`datasets` logs "Failed to read file ..." before raising; the CLI names the file in its
    own one line instead, so that log line is dropped (a logger filter: `datasets` resets the
    level of its loggers when imported, not their filters)."""
    import logging

    logger = logging.getLogger("datasets.packaged_modules.parquet.parquet")
    if _drop_read_failures not in logger.filters:
        logger.addFilter(_drop_read_failures)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def is_parquet_error(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is pyarrow or `datasets` failing to read a file."""
    for link in _chain(error):
        module = type(link).__module__ or ""
        if module.startswith("pyarrow") or type(link).__name__ == "DatasetGenerationError":
            return True
    return False


def unreadable_parquet(folders: Iterable[Path]) -> tuple[Path, str] | None:
    """The first Parquet file under `folders` that pyarrow cannot read whole, and why."""
    import pyarrow.parquet as pq

    for folder in folders:
        for path in sorted(Path(folder).rglob("*.parquet")):
            try:
                handle = pq.ParquetFile(path)
                for group in range(handle.num_row_groups):
                    handle.read_row_group(group)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                return path, " ".join(str(exc).split())[:200]
    return None


def dataset_folders(options: dict) -> list[Path]:
    """The published datasets a command reads: its --data, else its --run's training data."""
    folders = []
    if options.get("data"):
        folders.append(Path(options["data"]))
    run = options.get("run")
    if run and (Path(run) / "run.json").is_file():
        try:
            data = json.loads((Path(run) / "run.json").read_text(encoding="utf-8")).get("data")
        except (OSError, ValueError):
            data = None
        if data:
            folders.append(Path(data))
    if not folders and Path("out/meit").is_dir():
        folders.append(Path("out/meit"))
    return [f for f in folders if f.is_dir()]


def damaged_dataset_error(error: BaseException, options: dict) -> UserError | None:
    """The one-line error for a dataset file pyarrow could not read, or None when `error` is
    not one. pyarrow raises its own types, plain `OSError`s without an errno (`ZSTD
    decompression failed`), and `datasets` wraps them; the damaged file is found by reading the
    command's dataset again."""
    from_pyarrow = is_parquet_error(error)
    if not from_pyarrow and not (isinstance(error, OSError) and error.errno is None):
        return None
    found = unreadable_parquet(dataset_folders(options))
    if found is None and not from_pyarrow:
        return None
    if found is not None:
        path, why = found
        dataset = next((p for p in path.parents if (p / "README.md").is_file()), path.parent)
        return UserError(f"not a readable Parquet file ({why})", path=path,
                         fix=f"the file is truncated or damaged: rebuild the dataset "
                             f"(ecg-instruct build --out {dataset} ...) or restore the file")
    why = " ".join(str(error).split())[:200]
    return UserError(f"a Parquet file could not be read ({why})",
                     fix="check the dataset's files (truncated or damaged?) and rebuild it")
