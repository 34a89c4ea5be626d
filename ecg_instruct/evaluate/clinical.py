"""Clinical accuracy: do the generated and the reference report state the same SCP statements?

n-gram metrics reward "sinus rhythm. normal ecg." for a record with atrial fibrillation almost as
much as the right answer. This score extracts the SCP-ECG statements a report *states* with the
project's phrase matcher (``ecg_instruct.reports.fidelity``, the one behind the PTB-XL
label-agreement table, plus ``data/scp_phrases_mimic.yaml`` so MIMIC-IV-ECG's English machine
statements land in the same vocabulary) and compares the sets: micro and macro precision, recall
and F1 over statements, per statement kind (rhythm, form, diagnostic, from PTB-XL's
scp_statements.csv) and per statement. Challenge 2021 findings that no SCP statement names are statements too
(``cinc:ATach``, ...; from the shared Challenge code table, ``reports/code_reports.py``; the
axis findings stay out, as PTB-XL's axis is no SCP statement).

Negation: a statement inside the scope of "no", "not", "without", "absence of", "negative for",
"free of" or "ruled out" (up to the end of the clause: ``.``, ``;``, ``,``, "but") is not stated.
"cannot be excluded" / "not excluded" are hedges and count, as hedged mentions do in PTB-XL.

``statements_of(report)`` is the per-record entry point (the HTML report uses it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import yaml

from ecg_instruct.data_files import read_data_file
from ecg_instruct.reports.fidelity import PhraseMatcher, default_phrases

KINDS = ("rhythm", "form", "diagnostic")
TOP_STATEMENTS = 20
DEFAULT_MIN_LIKELIHOOD = 50.0  # cardiologists' diagnostic statements counted from this likelihood

_HEDGE = re.compile(r"\b(?:can ?not|cannot) be (?:excluded|ruled out)|\bnot excluded\b")
_NO_PATHOLOGY = re.compile(r"\bno (?:definite )?pathology\b")
_NEGATED = re.compile(
    r"\b(?:no|not|without|absence of|absent|negative for|free of|ruled out|rules out)\b"
    r"(?:(?!\bbut\b)[^.;,\n])*"
)


@dataclass(frozen=True)
class Vocabulary:
    """The statements the score knows: code -> kind, and the matcher that finds them in text."""

    kinds: dict[str, str]
    matcher: PhraseMatcher
    version: str

    def kind(self, code: str) -> str:
        return self.kinds.get(code, "other")


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """PTB-XL's 71 SCP statements, the PTB-XL phrase file plus the MIMIC phrasings, and the
    Challenge 2021 findings no SCP statement names."""
    _, text = read_data_file("scp_kinds.yaml")
    kinds = {
        str(code): kind for kind, codes in yaml.safe_load(text)["kinds"].items() for code in codes
    }
    base = default_phrases()
    _, extra_text = read_data_file("scp_phrases_mimic.yaml")
    extra = yaml.safe_load(extra_text)
    patterns = dict(base.patterns)
    for code, exprs in (extra.get("codes") or {}).items():
        added = tuple(re.compile(str(e)) for e in (exprs if isinstance(exprs, list) else [exprs]))
        patterns[str(code)] = patterns.get(str(code), ()) + added
    version = f"{base.version}+mimic{extra['version']}"
    kinds, patterns, version = _with_challenge(kinds, patterns, version)
    matcher = PhraseMatcher(version=version, patterns=patterns)
    return Vocabulary(kinds=kinds, matcher=matcher, version=matcher.version)


def _with_challenge(kinds: dict, patterns: dict, version: str) -> tuple[dict, dict, str]:
    """Add the Challenge 2021 findings that no SCP statement names (`cinc:<abbreviation>`,
    from the shared code table `reports/code_reports.py`), so Challenge reports are scored too;
    axis findings stay out, as for PTB-XL (`code_reports.UNSCORED_SECTIONS`)."""
    from ecg_instruct.reports.code_reports import challenge_statements

    challenge = challenge_statements()
    added = [s for s in challenge.kinds if s not in challenge.unscored]
    return ({**kinds, **{s: challenge.kinds[s] for s in added}},
            {**patterns, **{s: challenge.patterns[s] for s in added}},
            f"{version}+cinc{challenge.version}")


def affirmed_text(report: str) -> str:
    """The report, lower-cased, with negated stretches blanked out (see the module docstring)."""
    text = (report or "").lower()
    text = _HEDGE.sub(" possible ", text)
    text = _NO_PATHOLOGY.sub(" normal ecg ", text)  # PTB-XL's "no definite pathology" is NORM
    return _NEGATED.sub(" ", text)


def statements_of(report: str, vocabulary: Vocabulary | None = None) -> set[str]:
    """SCP statement codes a report states (negated mentions excluded), e.g. {"SR", "CLBBB"}."""
    vocab = vocabulary or default_vocabulary()
    text = affirmed_text(report)
    if not text.strip():
        return set()
    return {code for code in vocab.kinds if vocab.matcher.states(code, text)}


def labelled_statements(
    scp_codes: Mapping[str, float] | None,
    vocabulary: Vocabulary | None = None,
    min_likelihood: float = DEFAULT_MIN_LIKELIHOOD,
) -> set[str] | None:
    """A PTB-XL record's cardiologist statements (diagnostic from ``min_likelihood``, every form
    and rhythm statement, as in the label-agreement table); None when the record has none."""
    if not scp_codes:
        return None
    vocab = vocabulary or default_vocabulary()
    out = set()
    for code, likelihood in scp_codes.items():
        kind = vocab.kinds.get(code)
        if kind is None or (kind == "diagnostic" and float(likelihood) < min_likelihood):
            continue
        out.add(code)
    return out


@dataclass
class StatementCounts:
    """Per-record true/false positives and false negatives per statement: the bootstrap resamples
    rows of these matrices, so every clinical number gets an interval over records."""

    codes: list[str]
    tp: np.ndarray  # (n_records, n_codes) 0/1
    fp: np.ndarray
    fn: np.ndarray


def statement_counts(
    predicted: Sequence[set[str]], reference: Sequence[set[str]]
) -> StatementCounts:
    codes = sorted(set().union(*predicted, *reference)) if predicted else []
    index = {c: i for i, c in enumerate(codes)}
    shape = (len(predicted), len(codes))
    tp, fp, fn = (np.zeros(shape, dtype=np.int32) for _ in range(3))
    for row, (p, r) in enumerate(zip(predicted, reference, strict=True)):
        for c in p & r:
            tp[row, index[c]] = 1
        for c in p - r:
            fp[row, index[c]] = 1
        for c in r - p:
            fn[row, index[c]] = 1
    return StatementCounts(codes, tp, fp, fn)


def prf(tp: float, fp: float, fn: float) -> tuple[float | None, float | None, float | None]:
    """Precision, recall, F1; None where undefined (nothing predicted / nothing to find)."""
    tp, fp, fn = float(tp), float(fp), float(fn)
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    if tp + fp + fn == 0:
        return p, r, None
    return p, r, 2 * tp / (2 * tp + fp + fn)


def micro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Micro F1 from summed counts; works on (..., n_codes) arrays (NaN where undefined)."""
    t, f_p, f_n = tp.sum(-1), fp.sum(-1), fn.sum(-1)
    denom = 2 * t + f_p + f_n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * t / np.maximum(denom, 1), np.nan)


def macro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Mean per-statement F1 over the statements present (in predictions or references)."""
    denom = 2 * tp + fp + fn
    present = denom > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * tp / np.maximum(denom, 1), 0.0)
        return np.where(present.sum(-1) > 0, f1.sum(-1) / np.maximum(present.sum(-1), 1), np.nan)


def clinical_scores(
    predictions: Sequence[str],
    references: Sequence[str],
    prefix: str = "clinical",
    reference_sets: Sequence[set[str] | None] | None = None,
    vocabulary: Vocabulary | None = None,
) -> tuple[dict, StatementCounts, list[int]]:
    """Flat ``{prefix}_f1_micro``, ``_f1_macro``, ``_precision_micro``, ... plus a detail table.

    ``reference_sets`` replaces the statements extracted from ``references`` (used for PTB-XL's
    cardiologist ``scp_codes``); records whose set is None are left out. Returns the flat scores,
    the per-record counts (for the bootstrap) and the indices of the records scored.
    """
    vocab = vocabulary or default_vocabulary()
    rows = list(range(len(predictions)))
    if reference_sets is None:
        refs = [statements_of(r, vocab) for r in references]
    else:
        rows = [i for i, s in enumerate(reference_sets) if s is not None]
        refs = [reference_sets[i] for i in rows]
    preds = [statements_of(predictions[i], vocab) for i in rows]
    if reference_sets is not None:  # label sets hold SCP statements only: `cinc:` ones can't match
        preds = [{s for s in p if s in vocab.kinds and not s.startswith("cinc:")} for p in preds]
    counts = statement_counts(preds, refs)
    out: dict = {f"{prefix}_n_records": len(rows)}
    tp, fp, fn = (counts.tp.sum(0), counts.fp.sum(0), counts.fn.sum(0))
    p, r, f = prf(tp.sum(), fp.sum(), fn.sum())
    out[f"{prefix}_precision_micro"], out[f"{prefix}_recall_micro"] = p, r
    out[f"{prefix}_f1_micro"] = f
    per_code = [prf(tp[i], fp[i], fn[i]) for i in range(len(counts.codes))]
    defined = [x for x in per_code if x[2] is not None]
    out[f"{prefix}_f1_macro"] = float(np.mean([x[2] for x in defined])) if defined else None
    for name, col in (("precision", 0), ("recall", 1)):
        vals = [x[col] if x[col] is not None else 0.0 for x in defined]
        out[f"{prefix}_{name}_macro"] = float(np.mean(vals)) if vals else None
    for kind in KINDS:
        sel = [i for i, c in enumerate(counts.codes) if vocab.kind(c) == kind]
        kp, kr, kf = prf(tp[sel].sum(), fp[sel].sum(), fn[sel].sum())
        out[f"{prefix}_{kind}_precision"], out[f"{prefix}_{kind}_recall"] = kp, kr
        out[f"{prefix}_{kind}_f1"] = kf
    support = Counter({c: int(tp[i] + fn[i]) for i, c in enumerate(counts.codes)})
    top = [c for c, n in sorted(support.items(), key=lambda kv: (-kv[1], kv[0])) if n][:TOP_STATEMENTS]
    out[f"{prefix}_per_statement"] = [
        {
            "code": c, "kind": vocab.kind(c), "support": support[c],
            "predicted": int(tp[i] + fp[i]),
            **dict(zip(("precision", "recall", "f1"), per_code[i], strict=True)),
        }
        for c in top
        for i in [counts.codes.index(c)]
    ]  # fmt: skip
    return out, counts, rows


#: Findings the synthetic sample (and real reports) write that no statement of PTB-XL's 71 names,
#: so the clinical score cannot see them: PTB-XL keeps the frontal axis in its own ``heart_axis``
#: column, not among the SCP statements (checked against scp_statements.csv).
UNSCORED_FINDINGS = {
    "left axis deviation": re.compile(r"\bleft axis deviation\b|\büberdrehter linkstyp\b"),
    "right axis deviation": re.compile(r"\bright axis deviation\b|\büberdrehter rechtstyp\b"),
}


def unscored_findings(references: Sequence[str]) -> dict:
    """Which findings of these references the clinical score ignores, with how many references
    state each (negated mentions excluded); only findings that occur are listed."""
    counts = {
        name: sum(1 for r in references if pattern.search(affirmed_text(r)))
        for name, pattern in UNSCORED_FINDINGS.items()
    }
    return {
        name: {"references": n, "why": "no SCP statement names it (PTB-XL: heart_axis column)"}
        for name, n in counts.items() if n
    }  # fmt: skip
