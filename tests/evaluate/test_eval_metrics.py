"""Metrics: pycocoevalcap-identical BLEU/ROUGE-L/CIDEr-D, BLEU vs nltk, offline METEOR, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecg_instruct.errors import UserError
from ecg_instruct.evaluate.metrics import bleu, cider_d, rouge_l, rouge_l_scores
from ecg_instruct.evaluate.noise import Noise, default_sweep, parse_noise
from ecg_instruct.evaluate.text import clean_report, metric_tokens

PREDS = [
    "sinus rhythm. normal ecg.",
    "sinus bradycardia. left axis deviation.",
    "",
    "atrial fibrillation.",
    "sinus rhythm. left ventricular hypertrophy with st-t changes.",
]
REFS = [
    "sinus rhythm. normal ECG.",
    "sinus bradycardia, otherwise normal ecg.",
    "sinus rhythm.",
    "atrial fibrillation with rapid ventricular response.",
    "sinus rhythm. left ventricular hypertrophy. st-t changes.",
]
# Computed once with pycocoevalcap 1.2 (Bleu(4), Rouge, Cider) on the metric_tokens above; the
# test below recomputes them live whenever pycocoevalcap is installed.
COCO = {
    "bleu": [0.6068056788259172, 0.5576159373281965, 0.47714812086633374, 0.4206546798519037],
    "rouge_l": 0.5606673764056158,
    "cider_d": 4.01580895658157,
}


def _tok(texts):
    return [metric_tokens(t) for t in texts]


def test_text_cleaning_removes_chat_tags_and_punctuation():
    raw = "<|assistant|>\nSinus rhythm, QRS 0.12 s (borderline). ST-T changes.</s>"
    assert clean_report(raw) == "Sinus rhythm, QRS 0.12 s (borderline). ST-T changes."
    # pycocoevalcap keeps the bracket tokens (its punctuation list has them upper-case)
    assert metric_tokens(raw) == ["sinus", "rhythm", "qrs", "0.12", "s", "-lrb-", "borderline",
                                  "-rrb-", "st-t", "changes"]  # fmt: skip


def test_matches_pycocoevalcap_golden_values():
    hyps, refs = _tok(PREDS), _tok(REFS)
    assert bleu(hyps, refs) == pytest.approx(COCO["bleu"], abs=1e-9)
    assert rouge_l(hyps, refs) == pytest.approx(COCO["rouge_l"], abs=1e-9)
    assert cider_d(hyps, refs) == pytest.approx(COCO["cider_d"], abs=1e-9)


def test_matches_pycocoevalcap_live():
    coco_bleu = pytest.importorskip("pycocoevalcap.bleu.bleu")
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    rng = np.random.default_rng(0)
    vocab = "sinus rhythm normal ecg left axis deviation block bundle branch st t wave".split()
    hyps = [list(rng.choice(vocab, rng.integers(1, 12))) for _ in range(40)]
    refs = [list(rng.choice(vocab, rng.integers(1, 12))) for _ in range(40)]
    gts = {i: [" ".join(r)] for i, r in enumerate(refs)}
    res = {i: [" ".join(h)] for i, h in enumerate(hyps)}
    want_bleu, _ = coco_bleu.Bleu(4).compute_score(gts, res, verbose=0)
    assert bleu(hyps, refs) == pytest.approx(want_bleu, abs=1e-12)
    assert rouge_l(hyps, refs) == pytest.approx(Rouge().compute_score(gts, res)[0], abs=1e-12)
    assert cider_d(hyps, refs) == pytest.approx(Cider().compute_score(gts, res)[0], abs=1e-9)


def test_bleu_agrees_with_nltk_corpus_bleu():
    from nltk.translate.bleu_score import corpus_bleu

    # nltk counts a hypothesis shorter than n as one n-gram slot (denominator max(1, count));
    # pycocoevalcap counts zero. They agree whenever every hypothesis has >= 4 tokens.
    pairs = [(h, r) for h, r in zip(_tok(PREDS), _tok(REFS), strict=True) if len(h) >= 4]
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    assert len(hyps) == 3
    ours = bleu(hyps, refs)
    for n in range(1, 5):
        weights = tuple([1.0 / n] * n)
        theirs = corpus_bleu([[r] for r in refs], hyps, weights=weights)
        assert ours[n - 1] == pytest.approx(theirs, abs=1e-6)


def test_rouge_l_by_hand_and_edge_cases():
    # LCS("a b c d e", "a c e f") = 3: P = 3/4, R = 3/5, F_beta(1.2)
    p, r, b2 = 3 / 4, 3 / 5, 1.2**2
    [score] = rouge_l_scores([["a", "c", "e", "f"]], [["a", "b", "c", "d", "e"]])
    assert score == pytest.approx((1 + b2) * p * r / (r + b2 * p))
    assert rouge_l_scores([[]], [["a"]]) == [0.0]  # empty prediction scores 0, no crash


def test_perfect_and_empty_predictions():
    refs = _tok(REFS)
    assert bleu(refs, refs)[3] == pytest.approx(1.0)
    assert rouge_l(refs, refs) == pytest.approx(1.0)
    assert bleu([[] for _ in refs], refs)[0] < 1e-6
    assert cider_d(refs, refs) > cider_d(_tok(PREDS), refs)
    with pytest.raises(ValueError):
        bleu(refs[:2], refs)


@pytest.fixture(scope="module")
def wordnet_cache(tmp_path_factory):
    import os

    old = os.environ.get("ECG_INSTRUCT_CACHE")
    os.environ["ECG_INSTRUCT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("ECG_INSTRUCT_CACHE")
    else:
        os.environ["ECG_INSTRUCT_CACHE"] = old


def test_meteor_runs_offline_with_bundled_wordnet(wordnet_cache):
    from ecg_instruct.evaluate.meteor import ensure_wordnet, nltk_meteor

    root = ensure_wordnet()
    data = (root / "corpora" / "wordnet" / "data.noun").read_bytes()
    assert b"\r\n" not in data and len(data) > 10_000_000
    same = nltk_meteor([["sinus", "rhythm"]], [["sinus", "rhythm"]])
    assert same > 0.9
    # "quick" and "fast" share a WordNet synset: only the WordNet stage can match them
    synonym = nltk_meteor([["heart", "rate", "quick"]], [["heart", "rate", "fast"]])
    unrelated = nltk_meteor([["heart", "rate", "purple"]], [["heart", "rate", "fast"]])
    assert synonym > unrelated + 0.2


def test_score_reports_implementation(wordnet_cache):
    from ecg_instruct.evaluate.scoring import score

    s = score(PREDS, REFS, meteor="nltk")
    assert s["bleu_4"] == pytest.approx(COCO["bleu"][3], abs=1e-9)
    assert 0 < s["meteor_nltk"] < 1 and s["meteor_1_5"] is None and "meteor" not in s
    assert "nltk" in s["implementation"]["meteor_nltk"] and "nltk" in s["implementation"]["versions"]
    assert "PTBTokenizer" in s["implementation"]["tokenization"]
    with pytest.raises(UserError):
        score(PREDS, REFS, meteor="bogus")


def test_meit_noise_touches_one_stretch_of_5_to_20_percent():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 5000)).astype(np.float32)
    assert Noise("meit", 1.0).apply(x, "ptbxl/1", 0) is x
    y = Noise("meit", 0.8).apply(x, "ptbxl/1", 0)
    changed = np.flatnonzero((y != x).any(axis=0))
    assert 0.05 * 5000 - 1 <= len(changed) <= 0.20 * 5000 + 1
    assert changed[-1] - changed[0] + 1 == len(changed)  # contiguous
    assert ((y != x)[:, changed]).all()  # every lead, same stretch
    np.testing.assert_array_equal(y, Noise("meit", 0.8).apply(x, "ptbxl/1", 0))  # seeded
    assert not np.array_equal(y, Noise("meit", 0.8).apply(x, "ptbxl/2", 0))


def test_each_ecg_of_a_question_gets_its_own_records_noise():
    """A question's ECGs are corrupted one by one, seeded by their record ids: an ECG gets the
    noise its record gets alone (in a report evaluation, in any other question); an absent
    second ECG (all NaN) stays absent."""
    rng = np.random.default_rng(1)
    first, second = rng.standard_normal((2, 12, 1000)).astype(np.float32)
    for noise in (Noise("meit", 0.8), Noise("snr", 5.0)):
        pair = noise.apply_to_ecgs(np.stack([first, second]), ["ptbxl/1", "ptbxl/2"], 3)
        np.testing.assert_array_equal(pair[0], noise.apply(first, "ptbxl/1", 3))
        np.testing.assert_array_equal(pair[1], noise.apply(second, "ptbxl/2", 3))
        swapped = noise.apply_to_ecgs(np.stack([second, first]), ["ptbxl/2", "ptbxl/1"], 3)
        np.testing.assert_array_equal(swapped[::-1], pair)
        absent = np.stack([first, np.full_like(first, np.nan)])
        one = noise.apply_to_ecgs(absent, ["ptbxl/1"], 3)
        np.testing.assert_array_equal(one[0], pair[0])
        assert np.isnan(one[1]).all()
        np.testing.assert_array_equal(noise.apply_to_ecgs(first, ["ptbxl/1"], 3), pair[0])


def test_snr_noise_has_the_stated_snr():
    t = np.arange(20000) / 500
    x = np.tile(np.sin(2 * np.pi * 1.2 * t), (12, 1)).astype(np.float32)
    y = Noise("snr", 10.0).apply(x, "r", 0)
    snr = 10 * math.log10(x.var() / (y - x).var())
    assert snr == pytest.approx(10.0, abs=0.2)


def test_noise_spec_parsing():
    assert [n.label for n in parse_noise("meit:0.9,snr:5")] == ["clean", "meit:0.90", "snr:5dB"]
    labels = [n.label for n in default_sweep()]
    assert labels[:5] == ["clean", "meit:0.95", "meit:0.90", "meit:0.85", "meit:0.80"]
    for bad in ("meit:x", "pink:3", "meit:1.5"):
        with pytest.raises(UserError):
            parse_noise(bad)


def test_snr_zero_is_zero_db_not_off():
    """Level 0 is the strongest SNR step (noise power = signal power), never read as "off"."""
    [_, zero] = parse_noise("snr:0")
    assert zero.kind == "snr" and zero.level == 0.0 and zero.label == "snr:0dB"
    t = np.arange(5000) / 500
    x = np.tile(np.sin(2 * np.pi * 1.2 * t), (12, 1)).astype(np.float32)
    y = zero.apply(x, "r", 0)
    assert 10 * math.log10(x.var() / (y - x).var()) == pytest.approx(0.0, abs=0.2)
    assert [n.level for n in default_sweep() if n.kind == "snr"][-1] == 0.0
