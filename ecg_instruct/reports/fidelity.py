"""Fidelity of English reports to PTB-XL's SCP labels: the tool's translation quality metric.

PTB-XL records carry SCP statement codes (`scp_codes`) assigned by cardiologists. For every code
we ask: does the English report *state* it? ("atrial fibrillation" states AFIB, "inferior
infarct" states IMI.) The per-code share of records whose report states their code is a
reference-free check that translation kept the clinical content; it is printed in the build
summary and the dataset card.

What "states" means lives in a data file (`ecg_instruct/data/scp_phrases_en.yaml`): regular
expressions per code, with the statement's `description` from scp_statements.csv as fallback.
Which codes count for a record: diagnostic statements whose likelihood is at least
`min_likelihood`, and every form or rhythm statement (PTB-XL gives those likelihood 0, meaning
"not rated", not "absent").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

from ecg_instruct.data_files import read_data_file
from ecg_instruct.errors import UserError
from ecg_instruct.sources.ptbxl import read_scp_codes as parse_scp_codes  # noqa: F401 (API)

PHRASES_FILE = "scp_phrases_en.yaml"
DEFAULT_MIN_LIKELIHOOD = 50.0
AGREEMENT_COLUMNS = [
    "code",
    "description",
    "kind",
    "n_records",
    "n_stated",
    "agreement",
]


@dataclass(frozen=True)
class PhraseMatcher:
    """Compiled code -> expressions; `version` identifies the phrase file in reports."""

    version: str
    patterns: dict[str, tuple[re.Pattern[str], ...]]

    def states(self, code: str, report: str, description: str | None = None) -> bool:
        """Whether the English `report` states SCP `code` (case-insensitive)."""
        patterns = self.patterns.get(code)
        if patterns is None:
            if not description:
                return False
            patterns = (_compile_literal(description),)
        text = report.lower()
        return any(p.search(text) for p in patterns)


@lru_cache(maxsize=256)
def _compile_literal(description: str) -> re.Pattern[str]:
    return re.compile(re.escape(description.lower()))


def load_phrases(path: str | Path | None = None) -> PhraseMatcher:
    """Read the code -> English expressions file (the packaged one by default)."""
    where, text = read_data_file(PHRASES_FILE, path, "phrase file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML: {exc}".replace("\n", " "), where) from exc
    if not isinstance(data, dict) or not data.get("version"):
        raise UserError("missing `version:` field", where)
    parts = {str(k): str(v) for k, v in (data.get("parts") or {}).items()}
    patterns: dict[str, tuple[re.Pattern[str], ...]] = {}
    for code, exprs in (data.get("codes") or {}).items():
        compiled = []
        for expr in exprs if isinstance(exprs, list) else [exprs]:
            try:
                compiled.append(re.compile(_expand(str(expr), parts)))
            except (re.error, KeyError) as exc:
                raise UserError(f"{code}: bad expression {expr!r} ({exc})", where) from exc
        patterns[str(code)] = tuple(compiled)
    return PhraseMatcher(version=str(data["version"]), patterns=patterns)


def _expand(expr: str, parts: Mapping[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: f"(?:{parts[m.group(1)]})", expr)


@lru_cache(maxsize=1)
def default_phrases() -> PhraseMatcher:
    """The packaged phrase file, compiled once per process."""
    return load_phrases()


def read_scp_statements(path: str | Path) -> pd.DataFrame:
    """scp_statements.csv indexed by code (its first header cell is empty in the release)."""
    try:
        frame = pd.read_csv(path, index_col=0)
    except (OSError, pd.errors.ParserError) as exc:
        raise UserError(f"cannot read SCP statements ({exc})", path) from exc
    missing = {"description", "diagnostic", "form", "rhythm"} - set(frame.columns)
    if missing:
        raise UserError(f"missing columns {sorted(missing)}", path, "use PTB-XL's file")
    frame.index = frame.index.astype(str)
    return frame


def statement_kind(statements: pd.DataFrame, code: str) -> str:
    """``diagnostic``, ``form`` or ``rhythm`` (a code may be diagnostic *and* form: diagnostic)."""
    row = statements.loc[code]
    for kind in ("diagnostic", "form", "rhythm"):
        if kind in row and _is_set(row[kind]):
            return kind
    return "other"


def _is_set(value: object) -> bool:
    """A statement-table flag: 1.0 (or "1.0" when the table was read as text); blank is unset."""
    try:
        return float(value) == 1.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def codes_to_check(
    scp_codes: Mapping[str, float],
    statements: pd.DataFrame,
    min_likelihood: float = DEFAULT_MIN_LIKELIHOOD,
    kinds: Mapping[str, str] | None = None,
) -> list[str]:
    """The record's codes the report is expected to state (see the module docstring)."""
    kinds = _kinds(statements) if kinds is None else kinds
    out = []
    for code, likelihood in scp_codes.items():
        kind = kinds.get(code)
        if kind is None:
            continue  # not an SCP statement PTB-XL defines: nothing to compare against
        if kind == "diagnostic" and likelihood < min_likelihood:
            continue
        out.append(code)
    return out


def text_derived_codes(scp_codes: Mapping[str, float], statements: pd.DataFrame) -> dict[str, float]:
    """The record's form and rhythm statements with likelihood 0.

    PTB-XL derived these from the report text itself (cardiologists' diagnostic statements carry
    a likelihood of 15-100 and may disagree with the machine text). A faithful translation must
    state them, so their agreement measures translation, not label noise.
    """
    kinds = _kinds(statements)
    return {
        code: likelihood
        for code, likelihood in scp_codes.items()
        if likelihood == 0 and kinds.get(code) in ("form", "rhythm")
    }


_KINDS_CACHE: dict[int, tuple[pd.DataFrame, dict[str, str]]] = {}


def _kinds(statements: pd.DataFrame) -> dict[str, str]:
    """code -> kind, computed once per statements table (it is consulted for every record)."""
    entry = _KINDS_CACHE.get(id(statements))
    if entry is None or entry[0] is not statements:
        kinds = {str(code): statement_kind(statements, code) for code in statements.index}
        entry = _KINDS_CACHE[id(statements)] = (statements, kinds)
    return entry[1]


def label_agreement(
    reports: Sequence[str],
    scp_codes: Sequence[dict[str, float]],
    statements: pd.DataFrame,
    min_likelihood: float = DEFAULT_MIN_LIKELIHOOD,
    phrases: PhraseMatcher | None = None,
) -> pd.DataFrame:
    """Per SCP code: records carrying it, records whose English report states it, their share.

    `statements` is scp_statements.csv indexed by code (`read_scp_statements`). Returns columns
    code, description, kind (diagnostic/form/rhythm), n_records, n_stated, agreement, sorted by
    kind then n_records (descending); codes no record carries are left out.
    """
    if len(reports) != len(scp_codes):
        raise ValueError(f"{len(reports)} reports but {len(scp_codes)} scp_codes")
    phrases = phrases or default_phrases()
    kinds = _kinds(statements)
    descriptions = {str(c): str(d) for c, d in statements["description"].items()}
    n_records: dict[str, int] = {}
    n_stated: dict[str, int] = {}
    for report, codes in zip(reports, scp_codes, strict=True):
        text = report if isinstance(report, str) else ""
        for code in codes_to_check(codes, statements, min_likelihood, kinds):
            n_records[code] = n_records.get(code, 0) + 1
            if phrases.states(code, text, descriptions[code]):
                n_stated[code] = n_stated.get(code, 0) + 1
    rows = [
        {
            "code": code,
            "description": descriptions[code],
            "kind": kinds[code],
            "n_records": n,
            "n_stated": n_stated.get(code, 0),
            "agreement": n_stated.get(code, 0) / n,
        }
        for code, n in n_records.items()
    ]
    table = pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
    order = {"diagnostic": 0, "form": 1, "rhythm": 2, "other": 3}
    table["_order"] = table["kind"].map(order)
    table = table.sort_values(["_order", "n_records", "code"], ascending=[True, False, True])
    return table.drop(columns="_order").reset_index(drop=True)


def overall_agreement(table: pd.DataFrame, kinds: Iterable[str] = ("diagnostic",)) -> float:
    """Pooled agreement (stated / records) over the codes of the given kinds; NaN if none."""
    subset = table[table["kind"].isin(list(kinds))]
    total = int(subset["n_records"].sum())
    return float(subset["n_stated"].sum()) / total if total else float("nan")


def agreement_markdown(table: pd.DataFrame, max_rows: int | None = None) -> str:
    """The agreement table as Markdown, for the build summary and the dataset card."""
    lines = [
        "| code | statement | kind | records | stated | agreement |",
        "|---|---|---|---:|---:|---:|",
    ]
    shown = table if max_rows is None else table.head(max_rows)
    for row in shown.itertuples(index=False):
        lines.append(
            f"| {row.code} | {row.description} | {row.kind} | {row.n_records} | "
            f"{row.n_stated} | {row.agreement:.1%} |"
        )
    return "\n".join(lines)


def card_section(
    reports: Sequence[str],
    scp_codes: Sequence[dict[str, float]],
    statements: pd.DataFrame,
    min_likelihood: float = DEFAULT_MIN_LIKELIHOOD,
    phrases: PhraseMatcher | None = None,
) -> str:
    """The label-agreement section for the build summary and the dataset card (Markdown).

    Two numbers and the per-code table: agreement on the form/rhythm statements PTB-XL derived
    from the report text (the translation-fidelity figure) and on the cardiologists' diagnostic
    statements (bounded by how often the original text agrees with its labels).
    """
    phrases = phrases or default_phrases()
    table = label_agreement(reports, scp_codes, statements, min_likelihood, phrases)
    from_text = label_agreement(
        reports, [text_derived_codes(c, statements) for c in scp_codes], statements, 0.0, phrases
    )
    return "\n".join(
        [
            f"Label agreement over {len(reports)} PTB-XL reports (phrase matcher "
            f"{phrases.version}, diagnostic likelihood >= {min_likelihood:g}):",
            "",
            f"- form and rhythm statements derived from the report text: "
            f"{overall_agreement(from_text, ['form', 'rhythm']):.1%} stated",
            f"- diagnostic statements assigned by cardiologists: "
            f"{overall_agreement(table):.1%} stated (the source text itself often differs from "
            "these labels)",
            "",
            agreement_markdown(table),
        ]
    )


def challenge_label_agreement(
    reports: Sequence[str], labels: Sequence[Sequence[str]], phrases: PhraseMatcher | None = None
) -> pd.DataFrame:
    """Per Challenge 2021 code: records carrying it, records whose report states its finding.

    The same table as the reports and the clinical score (`reports/code_reports.py`): a code is
    stated when the report states one of its statements (its SCP equivalents, else its
    `cinc:<abbreviation>` statement) or those of a code refining it ("complete right bundle
    branch block" states RBBB and BBB). Codes in neither Challenge mapping file are left out.
    Columns as `label_agreement` (`code` is the table's abbreviation, `description` its Dx,
    `kind` its report section), in section order, then by records (descending).
    """
    from ecg_instruct.reports.code_reports import challenge_statements, code_table

    if len(reports) != len(labels):
        raise ValueError(f"{len(reports)} reports but {len(labels)} label lists")
    table, challenge = code_table("cinc2021"), challenge_statements()
    base = phrases or default_phrases()
    matcher = PhraseMatcher(f"{base.version}+cinc{challenge.version}",
                            {**base.patterns, **challenge.patterns})
    stated_by = {code: {s for other in {code} | table.finer(code)
                        for s in challenge.findings[other]} for code in table.codes}
    n_records: dict[str, int] = {}
    n_stated: dict[str, int] = {}
    for report, codes in zip(reports, labels, strict=True):
        text = report if isinstance(report, str) else ""
        for code in dict.fromkeys(c for c in codes if c in table.codes):
            n_records[code] = n_records.get(code, 0) + 1
            if any(matcher.states(s, text) for s in sorted(stated_by[code])):
                n_stated[code] = n_stated.get(code, 0) + 1
    ranked = sorted(n_records, key=lambda c: (table.position(c)[0], -n_records[c], c))
    rows = [
        {
            "code": table.codes[c].abbreviation,
            "description": table.codes[c].name,
            "kind": table.codes[c].section,
            "n_records": n_records[c],
            "n_stated": n_stated.get(c, 0),
            "agreement": n_stated.get(c, 0) / n_records[c],
        }
        for c in ranked
    ]
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
