"""Stage 3 (instruct): one record + its report -> chat `messages` rendered from templates.

The template for each (record, task, example) is drawn from an RNG keyed by the seed and the
record id, so the choice is the same whatever the worker count or record order.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ecg_instruct.errors import UserError
from ecg_instruct.instruct.templates import TemplateLibrary
from ecg_instruct.recipe import InstructConfig
from ecg_instruct.rng import rng_for

INSTRUCT_COLUMNS = ("id", "task", "template_id", "messages")


def template_context(record: dict, ecg_token: str) -> dict:
    """The variables a template may use (documented in docs/templates.md)."""
    return {
        "ecg": ecg_token,
        "source": record["source"],
        "age": record.get("age"),
        "sex": record.get("sex"),
        "report": record.get("report"),
    }


def build_messages(
    record: dict, library: TemplateLibrary, cfg: InstructConfig, seed: int, task: str = "report"
) -> dict:
    """One chat example for `task`: system / user (one ECG placeholder) / assistant."""
    candidates = library.for_task(task)
    if not candidates:
        raise UserError(f"no templates for task {task!r}", path=library.folders[0],
                        fix=f"add templates/{task}/*.j2 or remove the task from the recipe")
    choice = candidates[int(rng_for(seed, record["id"], task, 0).integers(len(candidates)))]
    context = template_context(record, cfg.ecg_token)
    user = library.render(choice.id, context)
    if user.count(cfg.ecg_token) != 1:
        raise UserError(f"template must contain the ECG placeholder exactly once (found "
                        f"{user.count(cfg.ecg_token)})", path=choice.path,
                        fix="put {{ ecg }} once in the template")
    system = library.render(cfg.system_template, context)
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": record["report"]},
    ]
    return {"id": record["id"], "task": task, "template_id": choice.id, "messages": messages}


def run_instruct(
    records: Iterable[dict], library: TemplateLibrary, cfg: InstructConfig, seed: int
) -> pd.DataFrame:
    if cfg.system_template not in library.templates:
        raise UserError(f"system template {cfg.system_template!r} not found",
                        path=library.folders[0], fix="add it or fix instruct.system_template")
    rows = [build_messages(record, library, cfg, seed) for record in records]
    return pd.DataFrame(rows, columns=list(INSTRUCT_COLUMNS))
