"""Label-grounded English reports (`--report-style labels`).

Instead of translating the free text, compose the report from the record's SCP statements, so
every sentence is backed by a cardiologist's label and nothing else is said. Useful for users who
want label-faithful targets; the dataset card must say the reports were generated this way
(`LABEL_REPORT_NOTE`), because they are not what a clinician wrote.

Composition (data in `ecg_instruct/data/scp_report_en.yaml`): one sentence per statement, in
MIMIC's section order (rhythm, conduction, hypertrophy, infarction, ST-T, other form statements,
overall verdict), hedged by PTB-XL's likelihood for diagnostic statements ("possible left
ventricular hypertrophy" for 50). Deterministic: within a section, higher likelihood first, then
by code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd
import yaml

from ecg_instruct.reports.fidelity import statement_kind

REPORT_FILE = "scp_report_en.yaml"
LABEL_REPORT_NOTE = (
    "Reports in this dataset were composed from the PTB-XL SCP statement labels "
    "(--report-style labels), not translated from the original report text: each sentence states "
    "one label, hedged by its likelihood."
)


@dataclass(frozen=True)
class _Style:
    version: str
    order: tuple[str, ...]
    hedges: tuple[tuple[float, str], ...]
    text: dict[str, str]


@lru_cache(maxsize=1)
def report_style() -> _Style:
    """The packaged statement texts, section order and hedges."""
    ref = resources.files("ecg_instruct") / "data" / REPORT_FILE
    data = yaml.safe_load(ref.read_text(encoding="utf-8"))
    hedges = tuple(sorted(((float(h["min"]), str(h["text"])) for h in data["hedges"]), reverse=True))
    return _Style(
        version=str(data["version"]),
        order=tuple(str(s) for s in data["order"]),
        hedges=hedges,
        text={str(k): str(v) for k, v in (data.get("text") or {}).items()},
    )


def _section(statements: pd.DataFrame, code: str, kind: str) -> str:
    if kind == "rhythm":
        return "rhythm"
    if kind == "diagnostic":
        cls = statements.loc[code].get("diagnostic_class")
        return str(cls) if isinstance(cls, str) and cls else "STTC"
    return "form"


def _hedge(style: _Style, likelihood: float) -> str:
    for threshold, text in style.hedges:
        if likelihood >= threshold:
            return text
    return ""


def report_from_labels(scp_codes: dict[str, float], statements: pd.DataFrame) -> str:
    """An English report stating exactly the record's SCP statements (unknown codes skipped).

    `statements` is scp_statements.csv indexed by code. Returns "" when no known code is present
    (the reports stage rejects such a record as an empty report).
    """
    style = report_style()
    entries = []
    for code, likelihood in _items(scp_codes):
        if code not in statements.index:
            continue
        kind = statement_kind(statements, code)
        section = _section(statements, code, kind)
        rank = style.order.index(section) if section in style.order else len(style.order)
        text = style.text.get(code) or str(statements.loc[code, "description"])
        hedge = _hedge(style, likelihood) if kind == "diagnostic" else ""
        sentence = f"{hedge} {text}" if hedge else text
        entries.append((rank, -likelihood, code, sentence))
    entries.sort()
    return " ".join(f"{_capitalise(s)}." for *_, s in entries)


def _items(scp_codes: Mapping[str, float]) -> list[tuple[str, float]]:
    out = []
    for code, likelihood in scp_codes.items():
        try:
            out.append((str(code), float(likelihood)))
        except (TypeError, ValueError):
            continue  # a malformed likelihood says nothing we could hedge faithfully
    return out


def _capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]
