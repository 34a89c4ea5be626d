"""Report text cleaning: what is removed is artefact, never content.

MIMIC-IV-ECG reports are machine statements spread over `report_0..17`; some cells are not
statements at all (lines of dashes, data-quality warnings, confirmation/signature lines). PTB-XL
reports are one line of text, sometimes with a reviewer's code edit appended (`Edit: NORM 100`),
which describes a change to the labels, not the ECG, and so is kept only in `report_original`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"\s+")
_EKG = re.compile(r"\bEKG\b", re.IGNORECASE)
_DASHES_ONLY = re.compile(r"^[\s\-=_*.~]*$")
_EDGE_DASHES = re.compile(r"^[\s\-=*]+|[\s\-=*]+$")
_PTBXL_EDIT = re.compile(r"\s*\bEdit:.*$", re.IGNORECASE | re.DOTALL)

#: Statements that describe the recording or the paperwork, not the heart (matched on the
#: statement with edge dashes removed, case-insensitive).
ARTEFACT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("data-quality warning", re.compile(r"^warning\b", re.IGNORECASE)),
    ("unconfirmed marker", re.compile(r"^unconfirmed( report| diagnosis)?\.?$", re.IGNORECASE)),
    ("confirmation/signature", re.compile(r"^(confirmed|reviewed|read|signed) by\b", re.I)),
    ("technician comment", re.compile(r"^(technician|tech)\s*:", re.IGNORECASE)),
    ("pediatric criteria note", re.compile(r"^pediatric (ecg )?(analysis|criteria)", re.I)),
)


def clean_text(text: str) -> str:
    """Unicode-normalise, drop control characters and collapse whitespace."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def strip_ptbxl_edit(text: str) -> str:
    """Remove a reviewer's appended `Edit: ...` label change from a PTB-XL report."""
    return _PTBXL_EDIT.sub("", text)


def artefact_kind(statement: str) -> str | None:
    """Why a MIMIC statement is an artefact, or None if it is content."""
    core = _EDGE_DASHES.sub("", clean_text(statement))
    if _DASHES_ONLY.match(core):
        return "empty/dashes"
    for kind, pattern in ARTEFACT_PATTERNS:
        if pattern.search(core):
            return kind
    return None


def _sentence(statement: str) -> str:
    core = _EDGE_DASHES.sub("", clean_text(statement))
    core = _EKG.sub("ECG", core)
    core = re.sub(r"\s+([,.;:])", r"\1", core)
    core = core.rstrip(" ,;:")
    if core and core[0].islower():
        core = core[0].upper() + core[1:]
    if core and core[-1] not in ".!?":
        core += "."
    return core


def clean_mimic_statements(statements: Iterable[str]) -> str:
    """Join MIMIC statements in order into sentences, without artefacts or repeats.

    Case is kept (the machine writes sentence case, and acronyms such as `ST`, `QRS`, `LVH` carry
    meaning); duplicates are compared case-insensitively after cleaning.
    """
    sentences: list[str] = []
    seen: set[str] = set()
    for statement in statements:
        if artefact_kind(statement) is not None:
            continue
        sentence = _sentence(statement)
        key = sentence.lower().rstrip(".")
        if sentence and key not in seen:
            seen.add(key)
            sentences.append(sentence)
    return " ".join(sentences)
