"""The facts a template may use, derived from one record's own data and nothing else.

The context holds a field only when the record has it and it is plausible: a missing field is
absent (not None), so `StrictUndefined` turns any undeclared use into an error, and a template's
`requires:` decides whether it applies to the record. Every field is listed in `KNOWN_FIELDS` and
documented in docs/templates.md.

PTB-XL statement semantics (Wagner et al. 2020): `scp_codes` maps a statement to a likelihood in
percent. Diagnostic statements carry a likelihood (100 = certain); form and rhythm statements are
recorded with 0, which means "likelihood not given", not "absent". So a statement is *present* when
its likelihood >= `min_likelihood`, or when it is a non-diagnostic statement recorded with 0. A
diagnostic statement below the threshold (or with 0) is *uncertain*: it is never asked as "yes"
and never as "no".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KNOWN_FIELDS: dict[str, str] = {
    "ecg": "the ECG placeholder token (recipe `instruct.ecg_token`); exactly once per example",
    "source": "`ptbxl` or `mimic`",
    "source_name": "`PTB-XL` or `MIMIC-IV-ECG`",
    "age": "age in years (int; PTB-XL ages above 89 are 90)",
    "sex": "`male` / `female`",
    "report": "the clean English report",
    "labels": "present statements: list of {code, description, likelihood (None = not given), kind}",
    "statements": "English descriptions of the present statements (list of str)",
    "diagnoses": "descriptions of present diagnostic statements (list of str)",
    "rhythm": "description(s) of the present rhythm statement(s), joined (str)",
    "heart_rate": "ventricular rate in beats per minute (int; from the RR interval)",
    "rr_interval": "RR interval in ms (int)",
    "rate_class": "`bradycardia` (< 60 bpm), `normal rate` or `tachycardia` (> 100 bpm)",
    "pr_interval": "PR interval in ms (int; qrs_onset - p_onset)",
    "qrs_duration": "QRS duration in ms (int; qrs_end - qrs_onset)",
    "qt_interval": "QT interval in ms (int; t_end - qrs_onset)",
    "qtc": "QT corrected for rate, Bazett (int ms; QT / sqrt(RR in s))",
    "p_axis": "P axis in degrees (int)",
    "qrs_axis": "QRS axis in degrees (int)",
    "t_axis": "T axis in degrees (int)",
    "query": "a yes/no question draw: {code, description, present (bool), answer ('yes'/'no')}",
}

#: Derived values outside these ranges are treated as missing, not as facts.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "heart_rate": (20, 300),
    "rr_interval": (200, 3000),
    "pr_interval": (50, 400),
    "qrs_duration": (40, 250),
    "qt_interval": (200, 700),
    "qtc": (250, 700),
    "p_axis": (-180, 360),
    "qrs_axis": (-180, 360),
    "t_axis": (-180, 360),
}

#: Statements of the same family are never asked as a negative when the record has one of them:
#: PTB-XL annotators code one statement of a family, so the absence of its neighbours is not
#: evidence (an LVH record may well meet voltage criteria; sinus tachycardia is a sinus rhythm).
RELATED_GROUPS: tuple[frozenset[str], ...] = tuple(frozenset(g) for g in (
    {"SR", "STACH", "SBRAD", "SARRH"},
    {"AFIB", "AFLT", "SVTAC", "PSVT", "SVARR"},
    {"PVC", "PAC", "PRC(S)", "BIGU", "TRIGU", "SVARR"},
    {"LVH", "VCLVH", "HVOLT", "SEHYP", "LAO/LAE"},
    {"RVH", "RAO/RAE"},
    {"1AVB", "LPR", "2AVB", "3AVB"},
    {"CLBBB", "ILBBB", "CRBBB", "IRBBB", "IVCD", "LAFB", "LPFB", "WPW", "ABQRS"},
    {"IMI", "ASMI", "ILMI", "AMI", "ALMI", "LMI", "IPLMI", "IPMI", "PMI", "QWAVE", "ABQRS"},
    {"NDT", "NST_", "NT_", "TAB_", "INVT", "LOWT", "STD_", "STE_", "ISC_", "ISCAL", "ISCIN",
     "ISCIL", "ISCAS", "ISCLA", "ISCAN", "INJAS", "INJAL", "INJIN", "INJLA", "INJIL", "DIG", "EL",
     "ANEUR", "LNGQT"},
    {"LVOLT", "HVOLT"},
))


@dataclass(frozen=True)
class Statement:
    """One row of `scp_statements.csv`."""

    code: str
    description: str
    diagnostic: bool
    rhythm: bool
    subclass: str = ""

    @property
    def kind(self) -> str:
        return "rhythm" if self.rhythm else "diagnostic" if self.diagnostic else "form"


def statements_from_frame(frame: Any) -> dict[str, Statement]:
    """`read_statements(root)` (a DataFrame indexed by code) -> {code: Statement}."""
    def flag(value: Any) -> bool:
        try:
            return float(value) == 1.0
        except (TypeError, ValueError):
            return False

    table = {}
    for code, row in frame.iterrows():
        subclass = row.get("diagnostic_subclass", "")
        table[str(code)] = Statement(
            str(code), str(row["description"]).strip(), flag(row.get("diagnostic")),
            flag(row.get("rhythm")), "" if not isinstance(subclass, str) else subclass,
        )
    return table


def load_statement_tables(raw_dir: Path, sources: Iterable[str]) -> dict[str, dict[str, Statement]]:
    """Statement tables per source (PTB-XL only: MIMIC has free text, no statement codes)."""
    tables: dict[str, dict[str, Statement]] = {}
    if "ptbxl" in sources:
        from ecg_instruct.sources import source_root
        from ecg_instruct.sources.ptbxl import read_statements

        tables["ptbxl"] = statements_from_frame(read_statements(source_root(raw_dir, "ptbxl")))
    return tables


def join_and(items: Iterable[Any], sep: str = ", ", last: str = " and ") -> str:
    """['a', 'b', 'c'] -> 'a, b and c' (a Jinja filter: `{{ statements | join_and }}`)."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return sep.join(items[:-1]) + last + items[-1]


def _scp_codes(record: Mapping[str, Any]) -> dict[str, float]:
    value = record.get("scp_codes")
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    return {str(k): float(v) for k, v in (value or {}).items()}


def _measurements(record: Mapping[str, Any]) -> dict[str, float]:
    value = record.get("measurements")
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else None
    out = {}
    for name, number in (value or {}).items():
        if number is None:
            continue
        number = float(number)
        if math.isfinite(number):
            out[name] = number
    return out


def _plausible(name: str, value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    low, high = PLAUSIBLE[name]
    return int(round(value)) if low <= value <= high else None


def classify_statements(
    scp_codes: Mapping[str, float], table: Mapping[str, Statement], min_likelihood: float
) -> tuple[list[Statement], set[str], list[Statement]]:
    """(present statements in reading order, uncertain codes, negative candidates)."""
    present: list[tuple[int, float, Statement]] = []
    uncertain: set[str] = set()
    order = {"rhythm": 0, "diagnostic": 1, "form": 2}
    for code, likelihood in scp_codes.items():
        statement = table.get(code)
        if statement is None:
            uncertain.add(code)  # not in the statement list: cannot be described, never asked
            continue
        if likelihood >= min_likelihood and likelihood > 0:
            present.append((order[statement.kind], -likelihood, statement))
        elif likelihood == 0 and not statement.diagnostic:
            present.append((order[statement.kind], 0.0, statement))
        else:
            uncertain.add(code)
    present.sort(key=lambda item: (item[0], item[1], item[2].code))
    statements = [item[2] for item in present]
    known = set(scp_codes)
    blocked = set(known)
    for group in RELATED_GROUPS:
        if group & known:
            blocked |= group
    has_rhythm = any(s.rhythm for s in statements)
    has_other_diagnosis = any(s.diagnostic and s.code != "NORM" for s in statements)
    negatives = []
    for code, statement in sorted(table.items()):
        if code in blocked:
            continue
        if statement.rhythm and not has_rhythm:
            continue  # the record's rhythm was not coded: absence says nothing
        if code == "NORM" and not has_other_diagnosis:
            continue  # "not normal" needs a positive abnormal diagnosis to stand on
        negatives.append(statement)
    return statements, uncertain, negatives


@dataclass(frozen=True)
class RecordFacts:
    """Everything a template may say about one record, plus the yes/no pools for `query`."""

    context: dict[str, Any]
    positives: tuple[Statement, ...] = ()
    negatives: tuple[Statement, ...] = ()

    @property
    def fields(self) -> set[str]:
        present = set(self.context)
        if self.positives and self.negatives:
            present.add("query")
        return present

    def with_query(self, u_answer: float, u_pick: float) -> dict[str, Any]:
        """The context plus a balanced yes/no `query`: "yes" iff `u_answer` < 1/2, then the
        statement at `u_pick` (both uniform in [0, 1)) of the matching pool."""
        context = dict(self.context)
        if self.positives and self.negatives:
            answer_yes = u_answer < 0.5
            pool = self.positives if answer_yes else self.negatives
            statement = pool[min(int(u_pick * len(pool)), len(pool) - 1)]
            context["query"] = {"code": statement.code, "description": statement.description,
                                "present": answer_yes, "answer": "yes" if answer_yes else "no"}
        return context


SOURCE_NAMES = {"ptbxl": "PTB-XL", "mimic": "MIMIC-IV-ECG", "cinc2021": "PhysioNet/CinC Challenge 2021",
                "code15": "CODE-15%"}


def record_facts(
    record: Mapping[str, Any], statements: Mapping[str, Statement] | None, min_likelihood: float,
    ecg_token: str,
) -> RecordFacts:
    """The rendering context of one record: only fields that are present and plausible."""
    context: dict[str, Any] = {"ecg": ecg_token, "source": record["source"],
                               "source_name": SOURCE_NAMES.get(record["source"], record["source"])}
    age = record.get("age")
    if age is not None and isinstance(age, (int, float)) and math.isfinite(age) and 0 <= age <= 120:
        context["age"] = int(age)
    sex = record.get("sex")
    if isinstance(sex, str) and sex in ("male", "female"):
        context["sex"] = sex
    report = record.get("report")
    if isinstance(report, str) and report.strip():
        context["report"] = report.strip()

    positives: list[Statement] = []
    negatives: list[Statement] = []
    codes = _scp_codes(record)
    if codes and statements:
        present, _uncertain, negatives = classify_statements(codes, statements, min_likelihood)
        positives = present
        if present:
            context["labels"] = [
                {"code": s.code, "description": s.description, "kind": s.kind,
                 "likelihood": codes[s.code] if codes[s.code] > 0 else None}
                for s in present
            ]
            context["statements"] = [s.description for s in present]
            diagnoses = [s.description for s in present if s.diagnostic]
            if diagnoses:
                context["diagnoses"] = diagnoses
            rhythms = [s.description for s in present if s.rhythm]
            if rhythms:
                context["rhythm"] = join_and(rhythms)

    values = _measurements(record)
    rr = _plausible("rr_interval", values.get("rr_interval"))
    derived: dict[str, float | None] = {
        "rr_interval": values.get("rr_interval"),
        "heart_rate": 60000.0 / values["rr_interval"] if rr else None,
        "p_axis": values.get("p_axis"),
        "qrs_axis": values.get("qrs_axis"),
        "t_axis": values.get("t_axis"),
    }
    p_on, qrs_on, qrs_end, t_end = (values.get(k) for k in ("p_onset", "qrs_onset", "qrs_end",
                                                             "t_end"))
    if p_on is not None and qrs_on is not None:
        derived["pr_interval"] = qrs_on - p_on
    if qrs_on is not None and qrs_end is not None:
        derived["qrs_duration"] = qrs_end - qrs_on
    if qrs_on is not None and t_end is not None:
        derived["qt_interval"] = t_end - qrs_on
        if rr and _plausible("qt_interval", t_end - qrs_on):
            derived["qtc"] = (t_end - qrs_on) / math.sqrt(values["rr_interval"] / 1000.0)
    for name, value in derived.items():
        checked = _plausible(name, value)
        if checked is not None:
            context[name] = checked
    if "heart_rate" in context:
        rate = context["heart_rate"]
        context["rate_class"] = ("bradycardia" if rate < 60 else "tachycardia" if rate > 100
                                 else "normal rate")
    return RecordFacts(context, tuple(positives), tuple(negatives))
