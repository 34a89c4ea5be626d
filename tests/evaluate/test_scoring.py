"""`score`: keys, intervals, empty predictions, paired control differences."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_instruct.evaluate.bootstrap import difference_supported, interval, replicate_weights
from ecg_instruct.evaluate.scoring import METRICS, public, score

REFS = [
    "sinus rhythm. normal ecg.", "sinus bradycardia. otherwise normal ecg.",
    "atrial fibrillation. abnormal qrs(t).", "sinus rhythm. left bundle branch block.",
    "sinus tachycardia. otherwise normal ecg.", "sinus rhythm. low limb lead voltage.",
] * 10  # fmt: skip


def test_replicates_are_seeded_and_resample_records():
    w = replicate_weights(7, 50, seed=3)
    assert w.shape == (50, 7) and (w.sum(1) == 7).all()
    np.testing.assert_array_equal(w, replicate_weights(7, 50, seed=3))
    assert not np.array_equal(w, replicate_weights(7, 50, seed=4))
    assert interval(np.array([np.nan, np.nan])) is None


def test_identical_predictions_score_one_with_intervals():
    s = score(REFS, REFS, meteor="none", replicates=200)
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "clinical_f1_micro",
                "clinical_f1_macro"):  # fmt: skip
        assert s[key] == pytest.approx(1.0, abs=1e-9), key
        assert s["ci95"][key] == pytest.approx([1.0, 1.0], abs=1e-9)
    assert s["cider_d"] == pytest.approx(10.0)
    assert "meteor" not in s and s["meteor_nltk"] is None and "meteor_nltk" in s["absent"]
    assert s["bertscore_f1"] is None and "bertscore_f1" in s["absent"]
    assert set(METRICS) <= set(s)
    assert "_replicates" not in public(s)


def test_empty_predictions_are_counted_not_dropped():
    preds = ["", None] + REFS[2:]
    s = score(preds, REFS, meteor="none", replicates=50)
    assert s["n_records"] == len(REFS) and s["n_empty_predictions"] == 2
    assert s["clinical_recall_micro"] < 1.0 and s["bleu_4"] < 1.0


def test_shuffled_predictions_lose_and_the_difference_is_supported():
    shuffled = REFS[1:] + REFS[:1]
    clean = score(REFS, REFS, meteor="none", replicates=300, seed=1)
    bad = score(shuffled, REFS, meteor="none", replicates=300, seed=1)
    assert bad["clinical_f1_micro"] < 0.6
    lo, hi = bad["ci95"]["clinical_f1_micro"]
    assert lo <= bad["clinical_f1_micro"] <= hi < 1.0
    ci, supported = difference_supported(
        clean["_replicates"]["clinical_f1_micro"], bad["_replicates"]["clinical_f1_micro"]
    )
    assert supported and ci[0] > 0
    # a condition compared with itself: the paired difference is 0, not supported
    assert not difference_supported(bad["_replicates"]["bleu_4"], bad["_replicates"]["bleu_4"])[1]


def test_meteor_1_5_interval_stays_inside_0_1(monkeypatch):
    """The jar's corpus score is not the mean of its segment scores; moving the bootstrap
    interval onto it must not leave [0, 1] (a shift gave [-0.077, 0.791])."""
    from ecg_instruct.evaluate import scoring

    segments = [0.0] * 50 + [0.9] * 10  # mean 0.15, corpus score far below it
    monkeypatch.setattr(scoring.meteor_impl, "java_available", lambda: True)
    monkeypatch.setattr(scoring.meteor_impl, "java_meteor_scores", lambda h, r: (0.02, segments))
    s = score(REFS, REFS, meteor="java", replicates=300)
    lo, hi = s["ci95"]["meteor_1_5"]
    assert 0.0 <= lo <= s["meteor_1_5"] <= hi <= 1.0
