"""Stage 3 (instruct): one record + its metadata -> many chat examples from templates.

For each task family in the recipe (`instruct.tasks`: task -> examples per record), the templates
whose `requires:` the record meets are the candidates; `n` distinct ones are drawn with
`rng_for(seed, record id, task)`, and each example's yes/no `query` with
`rng_for(seed, record id, task, k, "query")`. Nothing depends on record order or worker count, so
the same seed gives the same bytes.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecg_instruct.errors import UserError
from ecg_instruct.instruct.fields import RecordFacts, Statement, record_facts
from ecg_instruct.instruct.templates import PromptTemplate, TemplateLibrary
from ecg_instruct.recipe import InstructConfig
from ecg_instruct.rng import rng_for
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


def check_messages(messages: list[dict[str, str]], token: str, template: PromptTemplate) -> None:
    """The invariants of an example; a violation is the template's fault, so name its file."""
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
        words = set(message["content"].replace(".", " ").replace(",", " ").split())
        if words & set(_MISSING_WORDS):
            raise UserError(f"rendered a missing value ({sorted(words & set(_MISSING_WORDS))[0]})",
                            path=template.path, fix="add the field to `requires:`")


def render_example(
    library: TemplateLibrary, template: PromptTemplate, facts: RecordFacts, cfg: InstructConfig,
    seed: int, record_id: str, number: int,
) -> list[dict[str, str]]:
    """system + the template's turns for one record; `query` drawn for this example."""
    context = facts.with_query(rng_for(seed, record_id, template.task, number, "query"))
    turns = library.render_turns(template.id, context)
    check_messages(turns, cfg.ecg_token, template)
    system = library.render(cfg.system_template, context)
    return [{"role": "system", "content": system}, *turns]


def choose_templates(
    library: TemplateLibrary, task: str, facts: RecordFacts, n: int, seed: int, record_id: str,
) -> tuple[list[PromptTemplate], list[tuple[PromptTemplate, str]]]:
    """(chosen applicable templates, [(skipped template, first missing field)])."""
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
    rng = rng_for(seed, record_id, task)
    picks = rng.choice(len(applicable), size=min(n, len(applicable)), replace=False)
    return [applicable[int(i)] for i in picks], skipped


def run_instruct(
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
        # the record row's report example is drawn exactly as example 0 of the `report` task
        report_n = max(1, tasks.get(RECORD_TASK, 0))
        plan = {RECORD_TASK: report_n, **{t: n for t, n in tasks.items() if t != RECORD_TASK}}
        record_row = None
        for task, n in plan.items():
            chosen, skipped = choose_templates(library, task, facts, n, seed, record_id)
            if tasks.get(task, 0) > 0:
                for template, missing in skipped:
                    skips[(source, split, task, template.id, missing)] += 1
                if not chosen and n > 0:
                    skips[(source, split, task, "(none applicable)", "")] += 1
            for number, template in enumerate(chosen):
                messages = render_example(library, template, facts, cfg, seed, record_id, number)
                if task == RECORD_TASK and number == 0:
                    record_row = {"id": record_id, "task": task, "template_id": template.id,
                                  "messages": messages}
                if task in tasks and number < tasks[task]:
                    example_rows.append({
                        "example_id": example_id(record_id, task, number), "id": record_id,
                        "source": source, "split": split, "task": task,
                        "template_id": template.id, "messages": messages})
        if record_row is None:
            rejects.append({"id": record_id, "source": source, "stage": "instruct",
                            "reason": "no_report_template",
                            "detail": "no report template's `requires:` is met by this record"})
            example_rows = [row for row in example_rows if row["id"] != record_id]
            continue
        record_rows.append(record_row)
    skip_rows = [dict(zip(SKIP_COLUMNS, (*key, count), strict=True))
                 for key, count in sorted(skips.items())]
    return InstructResult(
        pd.DataFrame(record_rows, columns=list(INSTRUCT_COLUMNS)),
        pd.DataFrame(example_rows, columns=list(EXAMPLE_COLUMNS)),
        pd.DataFrame(skip_rows, columns=list(SKIP_COLUMNS)),
        rejects,
    )


def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_instruct_stage(
    records: Iterable[Mapping], library: TemplateLibrary, cfg: InstructConfig, seed: int,
    statements: Mapping[str, Mapping[str, Statement]] | None, work: Path,
) -> None:
    """Run the stage and write its outputs; `instruct.parquet` last, as the done marker."""
    result = run_instruct(records, library, cfg, seed, statements)
    examples = pa.Table.from_pandas(result.examples, schema=EXAMPLE_SCHEMA, preserve_index=False)
    _write(examples, work / "instruct_examples.parquet")
    _write(pa.Table.from_pandas(result.skips.astype({"count": "int64"}), preserve_index=False),
           work / "instruct_skips.parquet")
    _write(pa.Table.from_pandas(rejects_frame(result.rejects), preserve_index=False),
           work / "instruct_rejects.parquet")
    records_table = pa.Table.from_pandas(
        result.records, preserve_index=False,
        schema=pa.schema([("id", pa.string()), ("task", pa.string()),
                          ("template_id", pa.string()), ("messages", MESSAGES_TYPE)]))
    _write(records_table, work / "instruct.parquet")
