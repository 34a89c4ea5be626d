"""Two ECGs per example: the built-in model's slots, masks and order marks, and training plus
evaluation on a built `ecgqa` config against the majority-answer baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ecg_instruct.train.config import ModelConfig  # noqa: E402
from ecg_instruct.train.model import ECGReportModel  # noqa: E402

ECG_ID, PAD_ID, VOCAB, TOKENS = 5, 0, 40, 4


def _model(fusion: str) -> ECGReportModel:
    torch.manual_seed(0)
    cfg = ModelConfig(fusion=fusion, d_model=32, n_layer=1, n_head=2, dropout=0.0,
                      ecg_tokens=TOKENS, encoder_width=8, max_ecgs=2)
    return ECGReportModel(cfg, VOCAB, ECG_ID, PAD_ID).eval()


def _ids(fusion: str, n_ecgs: int) -> torch.Tensor:
    slots = [ECG_ID] * (TOKENS * n_ecgs) if fusion == "prefix" else []
    return torch.tensor([[7, *slots, 8, 9, 10, 11]])


@pytest.mark.parametrize("fusion", ["kv", "prefix"])
def test_an_absent_second_ecg_changes_nothing(fusion: str):
    """A one-ECG question batched beside two-ECG ones (its second ECG all NaN) gets the
    output it gets alone: the missing ECG's slots are masked (kv) or never filled (prefix)."""
    model = _model(fusion)
    one = torch.randn(1, 1, 12, 200)
    padded = torch.cat([one, torch.full_like(one, float("nan"))], dim=1)
    ids = _ids(fusion, 1)
    targets = ids.clone()
    with torch.no_grad():
        alone = model.loss(ids, targets, one)
        beside = model.loss(ids, targets, padded)
        assert torch.isfinite(beside)
        torch.testing.assert_close(alone, beside)


@pytest.mark.parametrize("fusion", ["kv", "prefix"])
def test_first_and_second_ecg_are_told_apart(fusion: str):
    """Swapping the two ECGs changes the output (each has its own slots and order mark); with
    the same ECG twice, only the order marks differ. (The marks start near 0, like every
    embedding, and are learnt: set to distinct values here.)"""
    model = _model(fusion)
    with torch.no_grad():
        model.ecg_order.weight.normal_()
    a, b = torch.randn(1, 1, 12, 200), torch.randn(1, 1, 12, 200)
    ids = _ids(fusion, 2)
    positions = torch.arange(ids.shape[1])[None]

    def states(signal: torch.Tensor) -> torch.Tensor:
        tokens, valid = model.encode(signal)
        return model.hidden(ids, positions, ids != PAD_ID, tokens, ecg_valid=valid)

    with torch.no_grad():
        ab, ba = states(torch.cat([a, b], 1)), states(torch.cat([b, a], 1))
    assert (ab - ba).abs().max() > 1e-3
    tokens, valid = model.encode(torch.cat([a, a], 1))
    assert tokens.shape == (1, 2 * TOKENS, 32) and valid.all()
    assert not torch.allclose(tokens[:, :TOKENS], tokens[:, TOKENS:])


def test_train_and_evaluate_on_ecgqa_against_the_majority_baseline(ecgqa_build, tmp_path: Path,
                                                                   monkeypatch):
    from typer.testing import CliRunner

    from ecg_instruct.cli import app

    _, out, _ = ecgqa_build
    run = tmp_path / "qa"
    result = CliRunner().invoke(app, [
        "train-baseline", "--data", str(out), "--config", "ecgqa", "--out", str(run),
        "--max-steps", "12", "--batch-size", "8", "--warmup-steps", "2", "--eval-interval", "6",
        "--d-model", "64", "--n-layer", "1", "--encoder-pretrain-steps", "4", "--no-progress"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "run.json").read_text())
    assert saved["model"]["max_ecgs"] == 2
    assert saved["freeze_encoder_trunk"] and saved["encoder_pretrain_steps"] == 4
    stage = json.loads((run / "model.json").read_text())["encoder_pretrain"]
    assert stage["statements"] > 5 and stage["first_loss"] > 0  # the questions' per-ECG labels
    from ecg_instruct.evaluate.noise import Noise

    seen: list[tuple[int, list[str]]] = []  # (dimensions, record ids) of every noisy row
    real = Noise.apply_to_ecgs

    def spy(self, x, record_ids, seed):
        seen.append((x.ndim, list(record_ids)))
        return real(self, x, record_ids, seed)

    monkeypatch.setattr(Noise, "apply_to_ecgs", spy)
    result = CliRunner().invoke(app, [
        "evaluate", "--run", str(run), "--split", "validation", "--controls", "--bootstrap", "50",
        "--noise", "meit:0.8,snr:0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "majority-answer baseline: accuracy" in result.output
    folder = run / "eval" / "ecgqa-validation"
    # --noise: each question's own ECGs, by their record ids, once per level
    import pandas as pd

    questions = pd.read_parquet(out / "data" / "ecgqa", columns=["id", "split", "ecg_ids"])
    ecg_ids = [list(ids) for ids in questions.loc[questions["split"] == "validation", "ecg_ids"]]
    assert seen == [(3, ids) for ids in ecg_ids] * 2
    robustness = json.loads((folder / "robustness.json").read_text())
    assert [r["condition"] for r in robustness] == ["clean", "meit:0.80", "snr:0dB"]
    assert all(0.0 <= r["overall"]["accuracy"] <= 1.0 for r in robustness)
    assert "difference" in robustness[2]["vs_clean"] and "vs_clean" not in robustness[0]
    assert "| snr:0dB |" in (folder / "robustness.md").read_text()
    conditions = pd.read_parquet(folder / "predictions.parquet")["condition"]
    assert set(conditions) == {"clean", "ecg=zeros", "ecg=shuffle", "meit:0.80", "snr:0dB"}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["metric"] == "ecgqa_exact_match"
    assert set(metrics["question_type"]) <= {
        "single-verify", "single-choose", "single-query", "comparison_consecutive-verify",
        "comparison_consecutive-query", "comparison_irrelevant-verify",
        "comparison_irrelevant-query"}
    assert 0.0 <= metrics["majority_baseline"]["overall"]["accuracy"] <= 1.0
    assert "difference" in metrics["vs_majority"]
    controls = json.loads((folder / "controls.json").read_text())
    assert [c["condition"] for c in controls] == ["clean", "ecg=zeros", "ecg=shuffle",
                                                  "majority answer"]
    assert {"difference", "ci95"} <= set(controls[2]["vs_signal"])
    use = metrics["input_use"]
    assert 0 <= use["changed_by_shuffle"] <= metrics["n_questions"]
    table = (folder / "controls.md").read_text()
    assert "| real - ecg=shuffle |" in table and "| real - majority answer |" in table


def test_a_pretrained_lm_trains_evaluates_and_resumes_on_ecgqa(ecgqa_build, tiny_lm: Path,
                                                               tmp_path: Path):  # fmt: skip
    """`train-baseline --model` on questions of 1-2 ECGs (kv, the default; stage 0 learns the
    questions' per-ECG labels), `evaluate` on a split whose batches mix one- and two-ECG
    questions, `--resume` from the checkpoint (which holds the first/second-ECG vectors);
    prefix fusion too. A one-ECG run asked about comparisons says so in one line."""
    pytest.importorskip("peft")
    from tiny_data import small_config
    from typer.testing import CliRunner

    from ecg_instruct.cli import app
    from ecg_instruct.evaluate.runner import EvalOptions, evaluate_run
    from ecg_instruct.train.trainer import train

    _, out, _ = ecgqa_build
    run = tmp_path / "kv"
    common = ["--data", str(out), "--model", str(tiny_lm), "--batch-size", "8", "--ecg-tokens",
              "2", "--frozen-lm-steps", "1", "--encoder-pretrain-steps", "3", "--eval-interval",
              "0", "--threads", "1", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, ["train-baseline", "--config", "ecgqa", "--out", str(run),
                                      "--max-steps", "2", *common])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "encoder stage: step" in result.output
    assert json.loads((run / "run.json").read_text())["model"]["max_ecgs"] == 2
    assert json.loads((run / "model.json").read_text())["encoder_pretrain"]["statements"] > 5
    state = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    assert state["ecg_order"].shape == (2, 64) and state["ecg_order"].abs().amax() > 0
    assert state["ecg_gate"].abs().amax() > 0
    # the sample's comparisons are train questions: rows 40-59 mix both kinds in one batch
    result = CliRunner().invoke(app, [
        "evaluate", "--run", str(run), "--split", "train", "--limit", "60", "--controls",
        "--bootstrap", "20", "--max-new-tokens", "3", "--batch-size", "20", "--threads", "1",
        "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = run / "eval" / "ecgqa-train"
    questions = json.loads((folder / "metrics.json").read_text())
    assert questions["metric"] == "ecgqa_exact_match"
    assert any(t.startswith("comparison") for t in questions["question_type"])
    result = CliRunner().invoke(app, ["train-baseline", "--config", "ecgqa", "--out", str(run),
                                      "--max-steps", "3", "--resume", *common])  # fmt: skip
    assert result.exit_code == 0, result.output
    full = tmp_path / "full"  # the same 3 steps in one go: the resumed run is bit-exact
    result = CliRunner().invoke(app, ["train-baseline", "--config", "ecgqa", "--out", str(full),
                                      "--max-steps", "3", *common])  # fmt: skip
    assert result.exit_code == 0, result.output
    a, b = (torch.load(r / "checkpoint.pt", weights_only=True) for r in (run, full))
    assert a["step"] == b["step"] == 3 and a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])

    prefix = tmp_path / "prefix"
    train(small_config(out, prefix, config="ecgqa", hf_model=str(tiny_lm), max_steps=2,
                       model={"fusion": "prefix", "ecg_tokens": 2, "max_ecgs": 2}), progress=False)
    evaluate_run(EvalOptions(run=prefix, split="train", limit=60, meteor="none", progress=False,
                             max_new_tokens=2, batch_size=20, bootstrap=20))  # fmt: skip

    one = tmp_path / "one"
    result = CliRunner().invoke(app, ["train-baseline", "--config", "ptbxl", "--out", str(one),
                                      "--max-steps", "1", "--encoder-pretrain-steps", "0", *common])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["evaluate", "--run", str(one), "--eval-config", "ecgqa",
                                      "--split", "train", "--no-progress"])  # fmt: skip
    assert result.exit_code == 2
    assert "questions about 2 ECGs; this run (trained on ptbxl) takes 1" in result.output
