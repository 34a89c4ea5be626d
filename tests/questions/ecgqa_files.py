"""Synthetic ECG-QA release files in exactly the release's shape (never copied from it)."""

from __future__ import annotations

import json
from pathlib import Path


def sample(sample_id: int, ecgs: list[int], answer: list[str], question_type: str | None = None,
           **changes) -> dict:
    """One sample with every field of ECG-QA 1.0.2, in the release's key order."""
    kind = question_type or ("single-verify" if len(ecgs) == 1
                             else "comparison_irrelevant-query")
    row = {"template_id": 1 if len(ecgs) == 1 else 69, "question_id": 7, "sample_id": sample_id,
           "question_type": kind, "attribute_type": "scp_code",
           "question": "Does this ECG show symptoms of sinus rhythm?" if len(ecgs) == 1 else
           "Which symptoms do both ECGs share?", "answer": answer, "ecg_id": ecgs,
           "attribute": ["sinus rhythm"] if len(ecgs) == 1 else None}
    row.update(changes)
    return row


def write_part(raw: Path, edition: str, variant: str, split: str, samples: list,
               chunk: int | None = 10_000, single: bool = False) -> None:
    """`ecg-qa/ecgqa/<edition>/<variant>/<split>/<N>.json` chunks (named by the first
    sample_id, unpadded: `80000.json`), indented like the release, or the older single
    `<split>.json`."""
    base = raw / "ecg-qa" / "ecgqa" / edition / variant
    if single:
        base.mkdir(parents=True, exist_ok=True)
        (base / f"{split}.json").write_text(json.dumps(samples, indent=4))
        return
    folder = base / split
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(samples), chunk):
        part = samples[start:start + chunk]
        (folder / f"{part[0]['sample_id']}.json").write_text(json.dumps(part, indent=4))
