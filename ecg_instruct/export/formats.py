"""`ecg-instruct export`: a published dataset -> files that existing trainers read unchanged.

Exports read only the published dataset (its card's `configs` and the Parquet files they name),
never raw PhysioNet files, so an export is as reproducible as the dataset. Each ECG is written once
as `ecgs/<source>/<native id>.npy` (float32 millivolts, shape (12, n), canonical lead order) and
referenced by a path relative to the export folder, however many examples use it.

Formats (one file per split; rows in dataset order):

- `llava`: `<split>.json`, a JSON array of `{"id", "ecg", "conversations": [{"from": "human" |
  "gpt", "value"}]}`, LLaVA's `LazySupervisedDataset` layout with the media key renamed (`--media-key
  image` restores LLaVA's name; `--token "<image>"` its placeholder). LLaVA has no system turn in the
  data (its conversation template supplies one), so the system prompt is dropped.
- `sharegpt`: `<split>.json`, a JSON array of `{"id", "conversations": [...human/gpt...], "system",
  "ecg"}` (LLaMA-Factory's ShareGPT layout: the system prompt as a top-level field).
- `openai-jsonl`: `<split>.jsonl`, one `{"messages": [{"role", "content"}, ...], "id", "ecg"}` per
  line: the conversational format TRL's `SFTTrainer` and OpenAI-style chat tooling read; `id` and
  `ecg` ride along for the collator that inserts the signal.
- `meit`: `<source>_ecg_<train|val|test>.jsonl`, what MEIT's `preprocess_ecg.py` writes and its
  training script reads: `{"dataset", "id", "ecg_path", "messages": [{"role": "user", "content":
  prompt}, {"role": "assistant", "content": report}]}`, one row per record (the record's report
  example, placeholder removed; MEIT inserts the ECG embedding itself and uses no system prompt).
  MEIT reads `ecg_path` with `wfdb.rdsamp`; here it names the `.npy` file (`np.load(path)` gives
  the (12, n) array that `rdsamp(...)[0].T` gives there).

ECG-QA questions (config `ecgqa`, task `ecgqa`) are exported with the instructions in the first
three formats: their `id` is the question id, and the ECG field holds the ECG's path, or a list
of two paths, in the question's order, for a comparison question (its user turn has one
placeholder per ECG; LLaMA-Factory's multi-image rows are shaped the same way). `meit` is report
generation only and leaves them out.

An export folder holds one export, described by `export.json` (format, splits, tasks, files). It
is written beside the folder and swapped into place like a build, so re-exporting (say, only the
test split) leaves no file of the previous export behind, and an interrupted export leaves the
previous one whole. `--out` may not overlap the dataset, and a non-empty folder without
`export.json` (not an export) is never replaced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from ecg_instruct.build.workio import temporary
from ecg_instruct.errors import UserError
from ecg_instruct.index.split import SPLITS
from ecg_instruct.paths import is_within, replace_dir

FORMATS = ("llava", "sharegpt", "openai-jsonl", "meit")
INSTRUCTIONS = "instructions"
#: ECG-QA questions: rows that reference one or two ECGs by id (`ecg_ids`).
QUESTIONS = "ecgqa"
MEIT_SPLIT_NAMES = {"train": "train", "validation": "val", "test": "test"}
_FIX = "pass --data pointing at the output folder of `ecg-instruct build`"
#: The file that marks a folder as an export (and says what is in it).
MANIFEST = "export.json"


@dataclass
class ExportSummary:
    out: Path
    files: dict[str, int] = field(default_factory=dict)  # file name -> rows
    n_signals: int = 0


def read_card(data: Path) -> dict[str, Any]:
    """The YAML header of the dataset card (`README.md`)."""
    card = data / "README.md"
    if not card.is_file():
        raise UserError("no README.md (dataset card)", path=data, fix=_FIX)
    text = card.read_text(encoding="utf-8")
    match = re.match(r"\A---\n(.*?)\n---\n", text, re.DOTALL)
    try:
        header = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        header = None
    if not isinstance(header, dict) or not isinstance(header.get("configs"), list):
        raise UserError("dataset card has no `configs` in its YAML header", path=card, fix=_FIX)
    return header


def read_configs(data: Path, header: dict[str, Any] | None = None
                 ) -> dict[str, dict[str, list[Path]]]:
    """config name -> split -> Parquet files, from the dataset card's YAML `configs`."""
    header = header if header is not None else read_card(data)
    configs: dict[str, dict[str, list[Path]]] = {}
    for config in header["configs"]:
        splits: dict[str, list[Path]] = {}
        for entry in config.get("data_files", []):
            patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            files = sorted(f for p in patterns for f in data.glob(p))
            splits[entry["split"]] = files
        configs[config["config_name"]] = splits
    return configs


def ecg_path(record_id: str) -> str:
    """`ptbxl/00001` -> `ecgs/ptbxl/00001.npy` (ids are `<source>/<native id>`, safe by design)."""
    source, native = record_id.split("/", 1)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", source) or not re.fullmatch(r"[A-Za-z0-9_-]+", native):
        raise UserError(f"unexpected record id {record_id!r}", fix=_FIX)
    return f"ecgs/{source}/{native}.npy"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with temporary(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
        os.replace(tmp, path)


def _rows(files: list[Path], columns: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in files:
        rows.extend(pq.read_table(path, columns=columns).to_pylist())
    return rows


def _signals(files: list[Path], wanted: set[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(id, float32 mV array (12, n)) for the wanted records, batch by batch (bounded memory)."""
    for path in files:
        handle = pq.ParquetFile(path)
        names = handle.schema_arrow.names
        columns = ["id", "signal"] + (["adc_gain"] if "adc_gain" in names else [])
        for batch in handle.iter_batches(batch_size=64, columns=columns):
            ids = batch.column("id").to_pylist()
            keep = [i for i, rid in enumerate(ids) if rid in wanted]
            if not keep:
                continue
            signal = batch.column("signal").take(pa.array(keep))
            n_leads = len(signal[0].as_py()) if len(signal) else 0
            flat = pc.list_flatten(pc.list_flatten(signal)).to_numpy(zero_copy_only=False)
            arrays = flat.reshape(len(keep), n_leads, -1).astype(np.float32)
            if "adc_gain" in columns:
                gains = np.asarray(batch.column("adc_gain").take(pa.array(keep)), np.float32)
                arrays = arrays / gains[:, None, None]
            for position, index in enumerate(keep):
                yield ids[index], arrays[position]


def _conversation(messages: list[dict[str, str]], token: str, new_token: str | None
                  ) -> tuple[str | None, list[dict[str, str]]]:
    system = None
    turns = []
    for message in messages:
        content = message["content"]
        if new_token is not None:
            content = content.replace(token, new_token)
        if message["role"] == "system":
            system = content
        else:
            turns.append({"from": "human" if message["role"] == "user" else "gpt",
                          "value": content})
    return system, turns


def check_export_folder(data: Path, out: Path) -> None:
    """`--out` must not overlap the dataset, and may only replace an earlier export."""
    if is_within(out, data) or is_within(data, out):
        raise UserError(f"export folder overlaps the dataset {data}", path=out,
                        fix="choose an --out outside --data (an export inside the dataset "
                            "would add files it does not describe)")
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder", path=out, fix="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UserError(f"exists and is not an export (no {MANIFEST}); refusing to replace it",
                        path=out, fix="choose a new or empty --out, or move that folder away")


def export_dataset(
    data: Path, out: Path, fmt: str, tasks: list[str] | None = None,
    splits: list[str] | None = None, token: str | None = None, media_key: str = "ecg",
) -> ExportSummary:
    """Write `fmt` files for the chosen splits (and tasks) plus each referenced ECG once, as a
    new folder that replaces `out` whole (see the module docstring)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    header = read_card(data)
    check_export_folder(data, out)
    staging = out.with_name(out.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        summary = _export_into(staging, data, header, fmt, tasks, splits, token, media_key)
        manifest = {"format": fmt, "splits": sorted({s for s in SPLITS if splits is None
                                                     or s in splits}, key=SPLITS.index),
                    "tasks": sorted(tasks) if tasks else None, "token": token,
                    "media_key": media_key, "files": summary.files,
                    "n_signals": summary.n_signals}
        _write_atomic(staging / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.out = out
    return summary


def _export_into(
    out: Path, data: Path, header: dict[str, Any], fmt: str, tasks: list[str] | None,
    splits: list[str] | None, token: str | None, media_key: str,
) -> ExportSummary:
    configs = read_configs(data, header)
    sources = [name for name in configs if name not in ("all", INSTRUCTIONS, QUESTIONS)]
    dataset_token = str((header.get("ecg_instruct") or {}).get("ecg_token", "<ecg>"))
    summary = ExportSummary(out)
    wanted_ids: set[str] = set()
    for split in [s for s in SPLITS if splits is None or s in splits]:
        if fmt == "meit":
            for source in sources:
                files = configs[source].get(split, [])
                rows = _rows(files, ["id", "source", "messages"])
                if not rows:
                    continue
                lines = []
                for row in rows:
                    user = next(m for m in row["messages"] if m["role"] == "user")["content"]
                    answer = next(m for m in row["messages"] if m["role"] == "assistant")
                    prompt = re.sub(r"[ \t]*" + re.escape(dataset_token) + r"[ \t]*\n?", " ",
                                    user).strip()
                    lines.append(json.dumps({
                        "dataset": row["source"], "id": row["id"],
                        "ecg_path": ecg_path(row["id"]),
                        "messages": [{"role": "user", "content": prompt},
                                     {"role": "assistant", "content": answer["content"]}],
                    }, ensure_ascii=False))
                    wanted_ids.add(row["id"])
                name = f"{source}_ecg_{MEIT_SPLIT_NAMES[split]}.jsonl"
                _write_atomic(out / name, "\n".join(lines) + "\n")
                summary.files[name] = len(lines)
            continue
        if INSTRUCTIONS in configs:
            rows = _rows(configs[INSTRUCTIONS].get(split, []),
                         ["example_id", "id", "task", "messages"])
        else:  # a dataset built before the instructions config: one example per record
            rows = [{**r, "example_id": r["id"]} for s in sources
                    for r in _rows(configs[s].get(split, []), ["id", "task", "messages"])]
        if QUESTIONS in configs:
            rows += [{"example_id": r["id"], "id": r["ecg_ids"], "task": QUESTIONS,
                      "messages": r["messages"]}
                     for r in _rows(configs[QUESTIONS].get(split, []),
                                    ["id", "ecg_ids", "messages"])]
        if tasks:
            rows = [r for r in rows if r["task"] in tasks]
        if not rows:
            continue
        records = []
        for row in rows:
            ecgs = row["id"] if isinstance(row["id"], list) else [row["id"]]
            wanted_ids.update(ecgs)
            paths = [ecg_path(i) for i in ecgs]
            path: str | list[str] = paths[0] if len(paths) == 1 else paths
            if fmt == "openai-jsonl":
                messages = [{"role": m["role"], "content": m["content"] if token is None
                             else m["content"].replace(dataset_token, token)}
                            for m in row["messages"]]
                records.append({"messages": messages, "id": row["example_id"], media_key: path})
                continue
            system, turns = _conversation(row["messages"], dataset_token, token)
            record: dict[str, Any] = {"id": row["example_id"]}
            if fmt == "llava":
                record[media_key] = path
                record["conversations"] = turns
            else:
                record["conversations"] = turns
                if system is not None:
                    record["system"] = system
                record[media_key] = path
            records.append(record)
        if fmt == "openai-jsonl":
            name = f"{split}.jsonl"
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        else:
            name = f"{split}.json"
            text = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
        _write_atomic(out / name, text)
        summary.files[name] = len(records)
    if not summary.files:
        raise UserError("nothing to export (no rows for these splits/tasks)", path=data,
                        fix="check --split/--task against the dataset card")
    for source in sources:
        files = [f for split in SPLITS for f in configs[source].get(split, [])]
        for record_id, array in _signals(files, wanted_ids):
            target = out / ecg_path(record_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            with temporary(target) as tmp:
                with open(tmp, "wb") as handle:  # a handle: np.save adds no ".npy" to it
                    np.save(handle, array)
                os.replace(tmp, target)
            summary.n_signals += 1
    return summary
