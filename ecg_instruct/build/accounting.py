"""Accounting: every record that enters a build is published or rejected, exactly once.

Checked twice before anything is published: per stage (`stage_ledger`: each stage's input is the
previous stage's output, split into passed and rejected) and per source and split (`account`).
A violation is a bug in a stage, never a user error, and stops the build with the previous
dataset intact.
"""

from __future__ import annotations

import pandas as pd

from ecg_instruct.index.split import SPLITS


class AccountingError(RuntimeError):
    """Records were lost or counted twice between stages: a bug, never a user error."""


#: Stages in order; each one's input is the previous one's output (the index's input is every
#: metadata row: indexed or rejected).
STAGES = ("index", "reports", "instruct", "signals", "publish")


def stage_ledger(rejected: dict[str, list[str]], passed: dict[str, list[str]]) -> pd.DataFrame:
    """Per source and stage: input = passed + rejected, as sets of ids, with nothing counted twice.

    Any violation is a bug in a stage (a record silently dropped, duplicated or both published
    and rejected) and fails the build before anything is published.
    """
    rows = []
    all_ids = set(passed["index"]) | set(rejected.get("index", []))
    sources = sorted({i.split("/", 1)[0] for i in all_ids})
    previous: list[str] | None = None
    problems = []
    per_stage = []
    for stage in STAGES:
        out = passed[stage]
        rej = rejected.get(stage, [])
        into = list(out) + list(rej) if previous is None else previous
        per_stage.append((stage, into, out, rej))
        previous = out
    for stage, into, out, rej in per_stage:
        for name, ids in (("passed", out), ("rejected", rej)):
            if len(set(ids)) != len(ids):
                seen: set[str] = set()
                twice = sorted({i for i in ids if i in seen or seen.add(i)})
                problems.append(f"{stage}: {len(twice)} ids {name} twice, e.g. {twice[:3]}")
        both = set(out) & set(rej)
        if both:
            problems.append(f"{stage}: {len(both)} ids both passed and rejected, e.g. "
                            f"{sorted(both)[:3]}")
        lost = set(into) - set(out) - set(rej)
        if lost:
            problems.append(f"{stage}: {len(lost)} records neither passed nor rejected, e.g. "
                            f"{sorted(lost)[:3]}")
        extra = (set(out) | set(rej)) - set(into)
        if extra:
            problems.append(f"{stage}: {len(extra)} records out of nowhere, e.g. {sorted(extra)[:3]}")
        for source in sources:
            prefix = source + "/"
            n_in = sum(i.startswith(prefix) for i in into)
            n_out = sum(i.startswith(prefix) for i in out)
            n_rej = sum(i.startswith(prefix) for i in rej)
            rows.append({"source": source, "stage": stage, "input": n_in, "passed": n_out,
                         "rejected": n_rej})
    if problems:
        raise AccountingError("accounting violation: " + "; ".join(problems))
    return pd.DataFrame(rows, columns=["source", "stage", "input", "passed", "rejected"])


def account(
    index: pd.DataFrame, rejects: pd.DataFrame, published: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Per source and split: records in = published + rejected (counts, reasons by stage,
    totals); anything else is a bug and fails loudly."""
    duplicated = set(rejects["id"][rejects["id"].duplicated()]) | (set(published) & set(rejects["id"]))
    if duplicated or len(set(published)) != len(published):
        raise AccountingError(f"accounting violation: records both published and rejected or "
                           f"counted twice: {sorted(duplicated)[:5]}")
    index_ids = set(index["id"])
    missing = index_ids - set(published) - set(rejects["id"])
    if missing:
        raise AccountingError(f"accounting violation: {len(missing)} records neither published nor "
                           f"rejected, e.g. {sorted(missing)[:5]}")
    split_of = dict(zip(index["id"], index["split"], strict=True))
    rows = []
    published_set = set(published)
    for source in sorted(set(index["source"]) | set(rejects["source"])):
        ids = {i for i in index_ids if i.startswith(source + "/")}
        index_rejects = rejects[(rejects["source"] == source) & (rejects["stage"] == "index")]
        for split in [*SPLITS, "(unassigned)"]:
            if split == "(unassigned)":
                n_in, n_pub, n_rej = len(index_rejects), 0, len(index_rejects)
            else:
                in_split = {i for i in ids if split_of[i] == split}
                n_in = len(in_split)
                n_pub = len(in_split & published_set)
                n_rej = n_in - n_pub
            if n_in:
                rows.append({"source": source, "split": split, "input": n_in,
                             "published": n_pub, "rejected": n_rej})
    counts = pd.DataFrame(rows, columns=["source", "split", "input", "published", "rejected"])
    reasons = (
        rejects.groupby(["source", "stage", "reason"]).size().reset_index(name="count")
        if len(rejects) else pd.DataFrame(columns=["source", "stage", "reason", "count"])
    )
    totals = {"input": int(counts["input"].sum()), "published": len(published),
              "rejected": len(rejects)}
    if totals["input"] != totals["published"] + totals["rejected"]:
        raise AccountingError(f"accounting violation: {totals}")
    return counts, reasons, totals
