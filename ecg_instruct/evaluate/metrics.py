"""BLEU-1..4, ROUGE-L and CIDEr-D with pycocoevalcap's definitions, in pure Python.

Each function takes parallel lists of token lists (one hypothesis and one reference per record,
as in report generation) and returns the corpus score the captioning literature reports:

- BLEU: corpus-level clipped n-gram precision, brevity penalty on the summed *closest*
  reference lengths, pycocoevalcap's ``tiny``/``small`` constants (so a missing order gives ~0
  rather than an error).
- ROUGE-L: per-record LCS F-measure with beta = 1.2, averaged over records.
- CIDEr-D: TF-IDF n-gram cosine (n = 1..4) with document frequencies from the references of the
  evaluated split, clipped hypothesis counts, Gaussian length penalty (sigma = 6), times 10. As
  in pycocoevalcap, the "length" used by the penalty counts the bigrams of each sentence; we keep
  that quirk so numbers are comparable with published ones.

The test-suite checks all three against pycocoevalcap itself when it is installed, and BLEU
against nltk's ``corpus_bleu``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

Tokens = Sequence[str]

_TINY, _SMALL = 1e-15, 1e-9  # pycocoevalcap's smoothing constants


def _ngrams(tokens: Tokens, n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _coco_split(tokens: Tokens) -> list[str]:
    # pycocoevalcap splits the joined string; an empty sentence becomes [""] (length 1) there.
    return " ".join(tokens).split(" ")


def bleu_stats(hyps: Sequence[Tokens], refs: Sequence[Tokens], max_n: int = 4) -> list[list[int]]:
    """Per record: clipped matches for n = 1..max_n, guesses for n = 1..max_n, hyp and ref length.

    Corpus BLEU is a function of the *sums* of these rows, so resampling rows (the bootstrap)
    gives BLEU of a resampled corpus exactly.
    """
    _check(hyps, refs)
    rows = []
    for hyp, ref in zip(hyps, refs, strict=True):
        hyp, ref = list(hyp), list(ref)
        correct, guess = [], []
        for n in range(1, max_n + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            correct.append(sum(min(c, r[g]) for g, c in h.items()))
            guess.append(max(0, len(hyp) - n + 1))
        rows.append(correct + guess + [len(hyp), len(ref)])
    return rows


def bleu_from_stats(totals: Sequence[float], max_n: int = 4) -> list[float]:
    """Corpus BLEU-1..max_n from summed ``bleu_stats`` rows."""
    correct, guess = totals[:max_n], totals[max_n : 2 * max_n]
    hyp_len, ref_len = totals[2 * max_n], totals[2 * max_n + 1]
    scores, product = [], 1.0
    for n in range(max_n):
        product *= (correct[n] + _TINY) / (guess[n] + _SMALL)
        scores.append(float(product ** (1.0 / (n + 1))))
    ratio = (hyp_len + _TINY) / (ref_len + _SMALL)
    if ratio < 1:
        scores = [float(s * math.exp(1 - 1 / ratio)) for s in scores]
    return scores


def bleu(hyps: Sequence[Tokens], refs: Sequence[Tokens], max_n: int = 4) -> list[float]:
    """Corpus BLEU-1..max_n (pycocoevalcap ``Bleu(4)``, option ``closest``)."""
    rows = bleu_stats(hyps, refs, max_n)
    return bleu_from_stats([sum(col) for col in zip(*rows, strict=True)], max_n)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, O(len(a) * len(b)) with one row of memory."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            cur = row[j]
            row[j] = prev + 1 if x == y else max(row[j], row[j - 1])
            prev = cur
    return row[-1]


def rouge_l_scores(
    hyps: Sequence[Tokens], refs: Sequence[Tokens], beta: float = 1.2
) -> list[float]:
    """Per-record ROUGE-L F-measure (pycocoevalcap ``Rouge``)."""
    _check(hyps, refs)
    out = []
    for hyp, ref in zip(hyps, refs, strict=True):
        h, r = _coco_split(hyp), _coco_split(ref)
        lcs = _lcs(r, h)
        prec, rec = lcs / len(h), lcs / len(r)
        if prec and rec:
            out.append((1 + beta**2) * prec * rec / (rec + beta**2 * prec))
        else:
            out.append(0.0)
    return out


def rouge_l(hyps: Sequence[Tokens], refs: Sequence[Tokens]) -> float:
    scores = rouge_l_scores(hyps, refs)
    return sum(scores) / len(scores)


def cider_d_scores(
    hyps: Sequence[Tokens], refs: Sequence[Tokens], max_n: int = 4, sigma: float = 6.0
) -> list[float]:
    """Per-record CIDEr-D (pycocoevalcap ``Cider``); document frequencies from ``refs``."""
    _check(hyps, refs)

    def grams(tokens: Tokens) -> list[Counter]:
        words = " ".join(tokens).split()
        return [_ngrams(words, n) for n in range(1, max_n + 1)]

    hyp_grams = [grams(h) for h in hyps]
    ref_grams = [grams(r) for r in refs]
    df: Counter = Counter()
    for rg in ref_grams:
        for counts in rg:
            df.update(counts.keys())
    log_n = math.log(float(len(refs)))

    def vec(gs: list[Counter]) -> tuple[list[dict], list[float], int]:
        vecs, norms = [], []
        for counts in gs:
            v = {g: tf * (log_n - math.log(max(1.0, df[g]))) for g, tf in counts.items()}
            vecs.append(v)
            norms.append(math.sqrt(sum(x * x for x in v.values())))
        length = sum(gs[1].values()) if max_n > 1 else 0  # pycocoevalcap counts bigrams here
        return vecs, norms, length

    out = []
    for hg, rg in zip(hyp_grams, ref_grams, strict=True):
        vh, nh, lh = vec(hg)
        vr, nr, lr = vec(rg)
        penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
        total = 0.0
        for n in range(max_n):
            val = sum(min(x, vr[n].get(g, 0.0)) * vr[n].get(g, 0.0) for g, x in vh[n].items())
            if nh[n] and nr[n]:
                val /= nh[n] * nr[n]
            total += val * penalty
        out.append(total / max_n * 10.0)
    return out


def cider_d(hyps: Sequence[Tokens], refs: Sequence[Tokens]) -> float:
    scores = cider_d_scores(hyps, refs)
    return sum(scores) / len(scores)


def _check(hyps: Sequence, refs: Sequence) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("no records to score")
