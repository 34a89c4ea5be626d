"""`--model`: a local Hugging Face causal LM as decoder (tiny random GPT-2 written to disk)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tiny_data import assert_resume_matches_uninterrupted, small_config, write_tiny_dataset  # noqa: E402

from ecg_instruct.errors import UserError  # noqa: E402
from ecg_instruct.evaluate.runner import EvalOptions, evaluate_run  # noqa: E402
from ecg_instruct.train.trainer import train  # noqa: E402


def _losses(run: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run / "train_log.jsonl").read_text().splitlines()]


def test_local_lm_trains_and_generates(tiny_lm: Path, tmp_path: Path):
    data = write_tiny_dataset(tmp_path / "eight", {"train": 8, "test": 8})
    run = tmp_path / "run"
    cfg = small_config(data, run, max_steps=150, hf_model=str(tiny_lm), model={"fusion": "prefix"})
    train(cfg, progress=False)
    losses = _losses(run)
    assert sum(losses[-5:]) < 0.2 * sum(losses[:5])
    tok = json.loads((run / "tokenizer.json").read_text())
    added = {t["content"] for t in tok["added_tokens"]}
    assert {"<ecg>", "<|assistant|>", "</s>", "<pad>"} <= added
    [row] = evaluate_run(EvalOptions(run=run, split="train", meteor="none", progress=False))["rows"]
    assert row["bleu_4"] > 0.8  # reproduces the eight reports (only the ECG tells them apart)


def test_lora_checkpoint_holds_only_trainable_weights(tiny_lm: Path, tiny_dataset: Path,
                                                      tmp_path: Path):  # fmt: skip
    pytest.importorskip("peft")
    run = tmp_path / "lora"
    cfg = small_config(tiny_dataset, run, max_steps=4, hf_model=str(tiny_lm), lora=True,
                       lora_r=4, model={"fusion": "prefix"})  # fmt: skip
    train(cfg, progress=False)
    state = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    assert any("lora_" in k for k in state) and any(k.startswith("encoder.") for k in state)
    assert not any(k.endswith("attn.c_attn.base_layer.weight") for k in state)  # frozen base
    evaluate_run(EvalOptions(run=run, split="test", meteor="none", progress=False, limit=2,
                             max_new_tokens=4))  # fmt: skip
    assert (run / "metrics.json").exists()


def test_kv_lora_run_stores_only_new_weights_and_checks_its_base(tiny_lm: Path, tiny_dataset: Path,
                                                                  tmp_path: Path):  # fmt: skip
    """MEIT defaults on a GPT-2 folder: kv fusion, LoRA on c_attn/c_proj/c_fc, new token rows."""
    pytest.importorskip("peft")
    run = tmp_path / "kv"
    cfg = small_config(tiny_dataset, run, max_steps=3, hf_model=str(tiny_lm), lora=True, lora_r=4,
                       lora_alpha=8, model={"fusion": "kv", "ecg_tokens": 1})  # fmt: skip
    train(cfg, progress=False)
    state = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    kinds = {
        k.split(".")[0] if k.startswith(("encoder", "ecg_gate"))
        else "lora" if "lora_" in k else "rows" if "trainable_tokens" in k else k
        for k in state
    }  # fmt: skip
    assert kinds == {"encoder", "ecg_gate", "lora", "rows"}
    rows = [v for k, v in state.items() if "trainable_tokens_delta" in k]
    assert [r.shape for r in rows] == [(7, 64)]  # our 7 special tokens; the head is tied
    summary = json.loads((run / "model.json").read_text())
    assert summary["fusion"] == "kv" and summary["lora_r"] == 4
    assert summary["base_model"]["sha256"] and 0 < summary["trainable_params"] < summary["total_params"]
    evaluate_run(EvalOptions(run=run, split="test", meteor="none", progress=False, limit=2,
                             max_new_tokens=3))  # fmt: skip

    # a checkpoint missing a tensor is an error, never a silent random init
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["model"].pop("ecg_gate")
    torch.save(ckpt, run / "checkpoint.pt")
    with pytest.raises(UserError, match="lacks.*ecg_gate"):
        evaluate_run(EvalOptions(run=run, split="test", meteor="none", progress=False, limit=1))

    # another base model under the same path is refused
    meta = json.loads((run / "run.json").read_text())
    meta["base_model"]["sha256"] = "0" * 64
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="not the base model"):
        evaluate_run(EvalOptions(run=run, split="test", meteor="none", progress=False, limit=1))


def test_bf16_weights_with_fp32_adapters(tiny_lm: Path, tiny_dataset: Path, tmp_path: Path):
    pytest.importorskip("peft")
    from ecg_instruct.train.hf import build_model
    from ecg_instruct.train.hf_chat import load_encoder, prepare_tokenizer
    from ecg_instruct.train.hf_load import load_tokenizer

    prepare_tokenizer(load_tokenizer(str(tiny_lm)), tmp_path)
    encoder = load_encoder(tmp_path)
    cfg = small_config(tiny_dataset, tmp_path, hf_model=str(tiny_lm), lora=True, lora_r=4,
                       dtype="bf16", model={"fusion": "kv", "ecg_tokens": 1})  # fmt: skip
    model = build_model(cfg, encoder)
    dtypes = {("lora_" in n, p.dtype) for n, p in model.lm.named_parameters()}
    assert (False, torch.bfloat16) in dtypes and (True, torch.float32) in dtypes
    ids = torch.tensor([[5, 6, 7, 8]])
    loss = model.loss(ids, ids, torch.randn(1, 12, 1000))
    assert torch.isfinite(loss)
    loss.backward()


def test_a_base_with_other_weight_values_is_refused(tiny_lm: Path, tiny_dataset: Path,
                                                    tmp_path: Path, monkeypatch):  # fmt: skip
    """Same config, same tensor names and shapes, randomised values: evaluate and --resume
    refuse it in one line (the config+index hash alone let it through)."""
    import shutil

    from safetensors.torch import load_file, save_file

    pytest.importorskip("peft")
    monkeypatch.setenv("ECG_INSTRUCT_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "base"
    shutil.copytree(tiny_lm, base)
    run = tmp_path / "run"
    cfg = small_config(tiny_dataset, run, max_steps=1, hf_model=str(base), lora=True, lora_r=4,
                       model={"fusion": "kv", "ecg_tokens": 2})  # fmt: skip
    train(cfg, progress=False)
    identity = json.loads((run / "run.json").read_text())["base_model"]
    assert len(identity["weights_sha256"]) == 64
    digests = json.loads((tmp_path / "cache" / "file-digests.json").read_text())
    assert any(key.startswith(str((base / "model.safetensors").resolve())) for key in digests)

    weights = load_file(base / "model.safetensors")
    torch.manual_seed(1)
    save_file({k: torch.randn_like(v) for k, v in weights.items()}, base / "model.safetensors",
              metadata={"format": "pt"})  # fmt: skip
    with pytest.raises(UserError, match="not the base model.*weight values differ"):
        evaluate_run(EvalOptions(run=run, split="test", meteor="none", progress=False, limit=1))
    cfg.max_steps = 2
    with pytest.raises(UserError, match="not the base model.*weight values differ"):
        train(cfg, resume=True, progress=False)


def test_model_defaults_are_the_measured_recipe(tiny_lm: Path, tiny_dataset: Path, tmp_path: Path):
    """`train-baseline --model` with no recipe flag: 16 ECG tokens (not 1), the encoder stage,
    frozen-LM steps, 10x ECG-side lr, no prompt gradient, LoRA dropout 0, trunk frozen."""
    pytest.importorskip("peft")
    from typer.testing import CliRunner

    app = typer_app()
    run = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "--data", str(tiny_dataset), "--out", str(run), "--model", str(tiny_lm),
        "--max-steps", "2", "--encoder-pretrain-steps", "3", "--frozen-lm-steps", "1",
        "--no-progress", "--threads", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = json.loads((run / "run.json").read_text())
    assert cfg["model"]["ecg_tokens"] == 16 and cfg["model"]["fusion"] == "kv"
    assert cfg["fusion_lr_scale"] == 10.0 and cfg["prompt_grad"] is False
    assert cfg["lora"] is True and cfg["lora_dropout"] == 0.0 and cfg["freeze_encoder_trunk"]
    stage = json.loads((run / "model.json").read_text())["encoder_pretrain"]
    assert stage["steps"] == 3 and stage["first_loss"] > 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    assert "encoder.stem.0.weight" in state  # the frozen trunk is still saved (stage 0 trained it)
    evaluate_run(EvalOptions(run=run, split="test", meteor="none", progress=False, limit=2,
                             max_new_tokens=3))  # fmt: skip


def typer_app():
    import typer

    from ecg_instruct.train.command import train_baseline

    app = typer.Typer()
    app.command()(train_baseline)
    return app


def test_recipe_resumes_exactly_across_its_stages(tiny_lm: Path, tiny_dataset: Path, tmp_path: Path):
    """Encoder stage, frozen-LM steps and trunk freezing: a run resumed after the frozen stage
    ends with the same weights and losses as an uninterrupted one."""
    pytest.importorskip("peft")
    common = dict(hf_model=str(tiny_lm), lora=True, lora_r=4, lora_dropout=0.0, max_report_tokens=8,
                  encoder_pretrain_steps=3, frozen_lm_steps=1, fusion_lr_scale=10.0,
                  prompt_grad=False, model={"fusion": "kv", "ecg_tokens": 3})  # fmt: skip
    assert_resume_matches_uninterrupted(tiny_dataset, tmp_path, 3, 2, save_interval=1, **common)
