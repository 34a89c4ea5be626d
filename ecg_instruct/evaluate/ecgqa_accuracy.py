"""ECG-QA's metric: exact-match accuracy of the answer set, per question and attribute type.

Oh et al. (ECG-QA, NeurIPS 2023) score a prediction as correct when its set of answer terms
equals the released `answer` list as a set; here both sides are lower-cased and trimmed first.
A free-text prediction (what a generative model writes) is split into terms on commas, the way
the assistant turn of the published `ecgqa` config joins the released terms (", "), so a model
that learnt that format is scored term by term; a prediction given as a JSON list is taken as is.
ECG-QA's answer vocabulary (attribute names such as "qrs duration", "yes", "none") has no commas.

Reported: overall accuracy, accuracy per `question_type` and per `attribute_type`, and the macro
average over question types (the paper tabulates per question type); each with a bootstrap 95 %
interval over questions (`evaluate.bootstrap`, seeded; the same replicates for every figure).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecg_instruct.evaluate.bootstrap import DEFAULT_REPLICATES, interval, replicate_weights

METRIC = "ecgqa_exact_match"


def answer_set(answer: str | Sequence[str]) -> frozenset[str]:
    """Lower-cased, trimmed answer terms; a string is split on commas; empty terms dropped."""
    terms = answer.split(",") if isinstance(answer, str) else answer
    return frozenset(t for t in (str(term).strip().lower() for term in terms) if t)


def exact_match(prediction: str | Sequence[str], answer: str | Sequence[str]) -> bool:
    return answer_set(prediction) == answer_set(answer)


def _groups(labels: Sequence[str]) -> dict[str, np.ndarray]:
    out: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        out.setdefault(label, []).append(row)
    return {label: np.asarray(rows) for label, rows in sorted(out.items())}


def ecgqa_accuracy(
    predictions: Sequence[str | Sequence[str]], answers: Sequence[Sequence[str]],
    question_types: Sequence[str], attribute_types: Sequence[str],
    replicates: int = DEFAULT_REPLICATES, seed: int = 0,
) -> dict:
    """Accuracy overall, per question type, per attribute type and macro over question types,
    each as `{"accuracy", "n", "ci95"}` (the macro: `{"accuracy", "ci95"}`)."""
    n = len(answers)
    if not (len(predictions) == n == len(question_types) == len(attribute_types)):
        raise ValueError("predictions, answers and types must have the same length")
    correct = np.array([exact_match(p, a) for p, a in zip(predictions, answers, strict=True)],
                       dtype=np.float64)
    weights = replicate_weights(n, replicates, seed) if n and replicates else None

    def cell(rows: np.ndarray) -> dict:
        value = float(correct[rows].mean()) if len(rows) else float("nan")
        ci = None
        if weights is not None and len(rows):
            w = weights[:, rows]
            with np.errstate(invalid="ignore", divide="ignore"):
                ci = interval((w @ correct[rows]) / w.sum(axis=1))
        return {"accuracy": value, "n": int(len(rows)), "ci95": ci}

    by_question = _groups(question_types)
    by_attribute = _groups(attribute_types)
    macro: dict = {"accuracy": float(np.mean([correct[r].mean() for r in by_question.values()]))
                   if by_question else float("nan"), "ci95": None}
    if weights is not None and by_question:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_type = np.stack([(weights[:, r] @ correct[r]) / weights[:, r].sum(axis=1)
                                 for r in by_question.values()])
        macro["ci95"] = interval(np.nanmean(per_type, axis=0)) if np.isfinite(
            per_type).any() else None
    return {
        "metric": METRIC, "n_questions": n,
        "overall": cell(np.arange(n)),
        "macro_question_type": macro,
        "question_type": {label: cell(rows) for label, rows in by_question.items()},
        "attribute_type": {label: cell(rows) for label, rows in by_attribute.items()},
    }


def majority_answers(train_answers: Sequence[Sequence[str]], train_types: Sequence[str],
                     question_types: Sequence[str]) -> list[list[str]]:
    """The majority-answer baseline: for each question, the most frequent training answer set of
    its question type (ties: the alphabetically first), else of the whole training split."""
    def top(sets: list[frozenset[str]]) -> list[str]:
        counts: dict[frozenset[str], int] = {}
        for s in sets:
            counts[s] = counts.get(s, 0) + 1
        best = min(counts.items(), key=lambda kv: (-kv[1], sorted(kv[0])))[0]
        return sorted(best)

    by_type: dict[str, list[frozenset[str]]] = {}
    for answer, qtype in zip(train_answers, train_types, strict=True):
        by_type.setdefault(qtype, []).append(answer_set(answer))
    overall = top([s for sets in by_type.values() for s in sets]) if by_type else []
    choice = {qtype: top(sets) for qtype, sets in by_type.items()}
    return [choice.get(qtype, overall) for qtype in question_types]


def format_accuracy(result: dict) -> str:
    """One line: overall and macro accuracy with their intervals, then per question type."""
    def fmt(c: dict) -> str:
        ci = c.get("ci95")
        return f"{c['accuracy']:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    parts = [f"accuracy {fmt(result['overall'])}",
             f"macro over question types {fmt(result['macro_question_type'])}"]
    parts += [f"{t} {fmt(c)} (n={c['n']})" for t, c in result["question_type"].items()]
    return "; ".join(parts)


def paired_difference(a: Sequence[str | Sequence[str]], b: Sequence[str | Sequence[str]],
                      answers: Sequence[Sequence[str]], replicates: int = DEFAULT_REPLICATES,
                      seed: int = 0) -> dict:
    """Accuracy of predictions `a` minus that of `b` on the same questions, with the paired
    bootstrap 95 % interval (same replicates as `ecgqa_accuracy` with this seed): `supported`
    when the interval excludes 0."""
    ca = np.array([exact_match(p, t) for p, t in zip(a, answers, strict=True)], dtype=np.float64)
    cb = np.array([exact_match(p, t) for p, t in zip(b, answers, strict=True)], dtype=np.float64)
    n = len(answers)
    ci = None
    if n and replicates:
        w = replicate_weights(n, replicates, seed)
        ci = interval((w @ (ca - cb)) / w.sum(axis=1))
    return {"difference": float((ca - cb).mean()) if n else float("nan"), "ci95": ci,
            "supported": ci is not None and (ci[0] > 0 or ci[1] < 0)}
