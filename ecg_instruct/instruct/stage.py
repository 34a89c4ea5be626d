"""Stage 3 (instruct): one record + its metadata -> many chat examples from templates.

For each task family in the recipe (`instruct.tasks`: task -> examples per record), the templates
whose `requires:` the record meets are the candidates; the `n` with the smallest
`stable_hash(seed, record id, task, template id)` are chosen, and the yes/no `query` of example `k`
comes from `stable_hash(seed, record id, task, k, ...)`. Nothing depends on record order or worker
count, so the same seed gives the same bytes.

Outputs (written by `write_instruct_stage` into the build's work folder):
- `instruct_examples.parquet`: every example (example_id, id, source, split, task, template_id,
  messages);
- `instruct_skips.parquet`: counts of templates skipped for a missing field, per source/split/
  task/template/field, and of records for which a task had no applicable template;
- `instruct_rejects.parquet`: records no `report` template applies to (stage `instruct`);
- `instruct.parquet` (last: its existence marks the stage done): the record row's `messages`, the
  record's first `report` example, which the published per-source configs carry.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecg_instruct.build.executor import map_ordered
from ecg_instruct.build.recipe import InstructConfig
from ecg_instruct.build.stage import BuildContext
from ecg_instruct.build.workio import temporary, writing
from ecg_instruct.errors import UserError
from ecg_instruct.instruct.fields import (
    RecordFacts,
    Statement,
    load_statement_tables,
    record_facts,
)
from ecg_instruct.instruct.templates import PromptTemplate, TemplateLibrary
from ecg_instruct.rng import stable_hash, stable_hashes
from ecg_instruct.schema import rejects_frame

INSTRUCT_COLUMNS = ("id", "task", "template_id", "messages")
EXAMPLE_COLUMNS = ("example_id", "id", "source", "split", "task", "template_id", "messages")
SKIP_COLUMNS = ("source", "split", "task", "template_id", "missing", "count")
RECORD_TASK = "report"
_MISSING_WORDS = ("None", "nan", "NaN")

MESSAGES_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
EXAMPLE_SCHEMA = pa.schema([
    ("example_id", pa.string()), ("id", pa.string()), ("source", pa.string()),
    ("split", pa.string()), ("task", pa.string()), ("template_id", pa.string()),
    ("messages", MESSAGES_TYPE),
])


@dataclass
class InstructResult:
    records: pd.DataFrame  # INSTRUCT_COLUMNS: one report example per record
    examples: pd.DataFrame  # EXAMPLE_COLUMNS
    skips: pd.DataFrame  # SKIP_COLUMNS
    rejects: list[dict[str, str]]


def example_id(record_id: str, task: str, number: int) -> str:
    return f"{record_id}/{task}/{number}"


def _words(text: str) -> set[str]:
    return set(text.replace(".", " ").replace(",", " ").split())


def check_messages(
    messages: list[dict[str, str]], token: str, template: PromptTemplate, source_text: str = "",
) -> None:
    """The invariants of an example; a violation is the template's fault, so name its file.

    `source_text` (the record's report) is exempt from the missing-value check: a report may
    legitimately say "none"; a template may not render Python's None.
    """
    users = [m["content"] for m in messages if m["role"] == "user"]
    if users[0].count(token) != 1 or sum(u.count(token) for u in users) != 1:
        raise UserError(
            f"template must put the ECG placeholder {token!r} exactly once, in the first user "
            f"turn (found {[u.count(token) for u in users]})", path=template.path,
            fix="put {{ ecg }} once in the first user turn")
    for message in messages:
        if message["role"] != "user" and token in message["content"]:
            raise UserError(f"the ECG placeholder appears in a {message['role']} turn",
                            path=template.path, fix="use {{ ecg }} only in the first user turn")
        if not message["content"]:
            raise UserError(f"a {message['role']} turn rendered empty", path=template.path,
                            fix="guard optional text with `is defined` or add to `requires:`")
        missing = (_words(message["content"]) & set(_MISSING_WORDS)) - _words(source_text)
        if missing:
            raise UserError(f"rendered a missing value ({sorted(missing)[0]})",
                            path=template.path, fix="add the field to `requires:`")


def draw(seed: int, *keys: object) -> float:
    """A uniform number in [0, 1) from (seed, keys): the same on every machine and worker.

    Built on `ecg_instruct.rng.stable_hash`, like `rng_for`, but ~100x cheaper than seeding a
    NumPy generator, which matters at ten draws per record over 800k MIMIC records.
    """
    return stable_hash(seed, *keys) / 2.0**64


def render_example(
    library: TemplateLibrary, template: PromptTemplate, facts: RecordFacts, cfg: InstructConfig,
    seed: int, record_id: str, number: int, system: str,
) -> list[dict[str, str]]:
    """system + the template's turns for one record; `query` drawn for this example only if the
    template requires it (so a template using `query` undeclared fails on every record)."""
    context = facts.context
    if "query" in template.requires:
        context = facts.with_query(draw(seed, record_id, template.task, number, "query-answer"),
                                   draw(seed, record_id, template.task, number, "query-pick"))
    turns = library.render_turns(template.id, context)
    check_messages(turns, cfg.ecg_token, template, context.get("report", ""))
    return [{"role": "system", "content": system}, *turns]


def choose_templates(
    library: TemplateLibrary, task: str, facts: RecordFacts, n: int, seed: int, record_id: str,
) -> tuple[list[PromptTemplate], list[tuple[PromptTemplate, str]]]:
    """(chosen applicable templates, [(skipped template, first missing field)]).

    The `n` applicable templates with the smallest `stable_hash(seed, id, task, template id)` are
    chosen (rendezvous hashing): a uniform draw without replacement that does not depend on the
    other templates, so adding a template to the library changes only the records that pick it.
    """
    present = facts.fields
    applicable, skipped = [], []
    for template in library.for_task(task):
        missing = [name for name in template.requires if name not in present]
        if missing:
            skipped.append((template, missing[0]))
        else:
            applicable.append(template)
    if not applicable or n == 0:
        return [], skipped
    keys = stable_hashes((seed, record_id, task), [t.id for t in applicable])
    order = sorted(range(len(applicable)), key=keys.__getitem__)  # stable, as before
    return [applicable[i] for i in order[:n]], skipped


def run_instruct(
    records: Iterable[Mapping], library: TemplateLibrary, cfg: InstructConfig, seed: int,
    statements: Mapping[str, Mapping[str, Statement]] | None = None,
) -> pd.DataFrame:
    """The per-record rows (id, task, template_id, messages): each record's first `report`
    example. See `run_instruct_tasks` for every example of every task."""
    return run_instruct_tasks(records, library, cfg, seed, statements).records


def run_instruct_tasks(
    records: Iterable[Mapping], library: TemplateLibrary, cfg: InstructConfig, seed: int,
    statements: Mapping[str, Mapping[str, Statement]] | None = None,
) -> InstructResult:
    """Every example of every record, the per-record report example, skip counts, rejects."""
    if cfg.system_template not in library.templates:
        raise UserError(f"system template {cfg.system_template!r} not found",
                        path=library.folders[0], fix="add it or fix instruct.system_template")
    statements = statements or {}
    tasks = dict(cfg.tasks)
    record_rows, example_rows, rejects = [], [], []
    skips: Counter[tuple[str, str, str, str, str]] = Counter()
    for record in records:
        record_id, source = record["id"], record["source"]
        split = str(record.get("split", ""))
        facts = record_facts(record, statements.get(source), cfg.min_likelihood, cfg.ecg_token)
        system = library.render(cfg.system_template, facts.context)
        # the record row's report example is drawn exactly as example 0 of the `report` task
        report_n = max(1, tasks.get(RECORD_TASK, 0))
        plan = {RECORD_TASK: report_n, **{t: n for t, n in tasks.items() if t != RECORD_TASK}}
        record_row, own_examples = None, []
        for task, n in plan.items():
            chosen, skipped = choose_templates(library, task, facts, n, seed, record_id)
            if tasks.get(task, 0) > 0:
                for template, missing in skipped:
                    skips[(source, split, task, template.id, missing)] += 1
                if not chosen:
                    skips[(source, split, task, "(none applicable)", "")] += 1
            for number, template in enumerate(chosen):
                messages = render_example(library, template, facts, cfg, seed, record_id, number,
                                          system)
                if task == RECORD_TASK and number == 0:
                    record_row = {"id": record_id, "task": task, "template_id": template.id,
                                  "messages": messages}
                if number < tasks.get(task, 0):
                    own_examples.append({
                        "example_id": example_id(record_id, task, number), "id": record_id,
                        "source": source, "split": split, "task": task,
                        "template_id": template.id, "messages": messages})
        if record_row is None:
            rejects.append({"id": record_id, "source": source, "stage": "instruct",
                            "reason": "no_report_template",
                            "detail": "no report template's `requires:` is met by this record"})
            continue
        record_rows.append(record_row)
        example_rows.extend(own_examples)
    skip_rows = [dict(zip(SKIP_COLUMNS, (*key, count), strict=True))
                 for key, count in sorted(skips.items())]
    return InstructResult(
        pd.DataFrame(record_rows, columns=list(INSTRUCT_COLUMNS)),
        pd.DataFrame(example_rows, columns=list(EXAMPLE_COLUMNS)),
        pd.DataFrame(skip_rows, columns=list(SKIP_COLUMNS)),
        rejects,
    )


def _write(table: pa.Table, path: Path) -> None:
    with writing(path), temporary(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)


_WORKER_LIBRARIES: dict[tuple[str, ...], TemplateLibrary] = {}


def _run_chunk(
    folders: tuple[str, ...], records: list[Mapping], cfg: InstructConfig, seed: int,
    statements: Mapping[str, Mapping[str, Statement]] | None,
) -> InstructResult:
    """One chunk in a worker process (compiled templates do not pickle: load them once there)."""
    if folders not in _WORKER_LIBRARIES:
        _WORKER_LIBRARIES[folders] = TemplateLibrary([Path(f) for f in folders])
    return run_instruct_tasks(records, _WORKER_LIBRARIES[folders], cfg, seed, statements)


#: Rows per row group of `instruct.parquet`: publish tasks read the rows of their ids only
#: (row groups pruned by their id statistics; the file is in id order).
RECORD_ROW_GROUP_ROWS = 1024
RECORDS_SCHEMA = pa.schema([("id", pa.string()), ("task", pa.string()),
                            ("template_id", pa.string()), ("messages", MESSAGES_TYPE)])


def _chunked(records: Iterable[Mapping], size: int) -> Iterator[list[Mapping]]:
    chunk: list[Mapping] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_instruct_stage(
    records: Iterable[Mapping], library: TemplateLibrary, cfg: InstructConfig, seed: int,
    statements: Mapping[str, Mapping[str, Statement]] | None, work: Path, workers: int = 1,
    chunk_size: int = 4096, progress: bool = False, total: int | None = None,
) -> None:
    """Run the stage in chunks (in `workers` processes) and write its outputs, streaming the
    examples and record rows to Parquet so memory stays bounded; `instruct.parquet` last, as
    the done marker.

    `records` is consumed a chunk at a time, as chunks are queued (pass a generator and its
    length as `total`: this process then never holds every record, nor every message). Chunks
    are written in input order and each example depends only on its own record, so the files
    are byte-identical for any worker count.
    """
    # both partial files are removed if the stage fails (a full disk, a failed chunk, Ctrl-C)
    with temporary(work / "instruct_examples.parquet") as tmp, \
            temporary(work / "instruct.parquet") as records_tmp:
        _stream_instruct_outputs(records, library, cfg, seed, statements, work, workers,
                                 chunk_size, progress, total, Path(tmp), Path(records_tmp))


def _stream_instruct_outputs(
    records: Iterable[Mapping], library: TemplateLibrary, cfg: InstructConfig, seed: int,
    statements: Mapping[str, Mapping[str, Statement]] | None, work: Path, workers: int,
    chunk_size: int, progress: bool, total: int | None, tmp: Path, records_tmp: Path,
) -> None:
    """`write_instruct_stage` into the partial files `tmp` and `records_tmp`, renamed into
    place at the end."""
    if total is None:
        records = list(records)
        total = len(records)
    skip_frames, rejects = [], []
    examples_path = work / "instruct_examples.parquet"
    records_path = work / "instruct.parquet"
    with writing(examples_path):
        writer = pq.ParquetWriter(tmp, EXAMPLE_SCHEMA, compression="zstd")
    with writing(records_path):
        records_writer = pq.ParquetWriter(records_tmp, RECORDS_SCHEMA, compression="zstd")

    def consume(result: InstructResult) -> None:
        writer.write_table(pa.Table.from_pandas(result.examples, schema=EXAMPLE_SCHEMA,
                                                preserve_index=False))
        records_writer.write_table(
            pa.Table.from_pandas(result.records, schema=RECORDS_SCHEMA, preserve_index=False),
            row_group_size=RECORD_ROW_GROUP_ROWS)
        skip_frames.append(result.skips)
        rejects.extend(result.rejects)

    with writing(examples_path):
        try:
            folders = tuple(str(f) for f in library.folders)
            _WORKER_LIBRARIES.setdefault(folders, library)  # this process: the one given
            tasks = (((folders, chunk, cfg, seed, statements), len(chunk))
                     for chunk in _chunked(records, chunk_size))
            # the build's one executor: workers die with the build (issue 14), the bar moves
            for result in map_ordered(_run_chunk, tasks, workers, "instruct", progress,
                                      total=total):
                consume(result)
        finally:
            writer.close()
            records_writer.close()
    os.replace(tmp, examples_path)
    skips = pd.concat(skip_frames, ignore_index=True) if skip_frames else \
        pd.DataFrame(columns=list(SKIP_COLUMNS))
    skips = (skips.astype({"count": "int64"})
             .groupby(list(SKIP_COLUMNS[:-1]), sort=True, as_index=False)["count"].sum())
    _write(pa.Table.from_pandas(skips, preserve_index=False), work / "instruct_skips.parquet")
    _write(pa.Table.from_pandas(rejects_frame(rejects), preserve_index=False),
           work / "instruct_rejects.parquet")
    with writing(records_path):
        os.replace(records_tmp, records_path)


class InstructStage:
    """Chat examples for every record with a report (see the module docstring);
    `instruct.parquet`, written last, marks it done."""

    name = "instruct"

    def done(self, context: BuildContext) -> bool:
        return (context.work / "instruct.parquet").exists()

    def run(self, context: BuildContext) -> None:
        options, reports = context.options, context.work / "reports.parquet"
        write_instruct_stage(with_reports(context.index, reports), context.library,
                             options.recipe.instruct, options.seed,
                             load_statement_tables(options.raw_dir, options.sources),
                             context.work, workers=options.workers, progress=options.progress,
                             total=pq.ParquetFile(reports).metadata.num_rows)


def with_reports(index: pd.DataFrame, reports: Path, batch_rows: int = 4096) -> Iterator[dict]:
    """Index rows joined with their reports (the records that have one), in id order, as
    dicts, one batch at a time: what `index.merge(reports).to_dict("records")` gives, without
    either the merged frame or every record's dict in this process at once. Both files are in
    id order, so a batch's index rows are found by binary search."""
    ids = index["id"]
    for batch in pq.ParquetFile(reports).iter_batches(batch_size=batch_rows):
        rows = batch.to_pandas()
        positions = ids.searchsorted(rows["id"])
        yield from (index.iloc[positions].reset_index(drop=True)
                    .merge(rows, on="id", how="inner").to_dict("records"))
