"""Run configuration, saved as ``run.json`` beside the checkpoint so a run describes itself."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from ecg_instruct.errors import UserError

Fusion = Literal["prefix", "kv"]


@dataclass
class ModelConfig:
    """Shape of the encoder-decoder. Defaults train at ~5 steps/s on 2 CPU cores (12x1000)."""

    fusion: Fusion = "kv"  # "prefix" (LLaVA-style) or "kv" (MEIT: ECG as extra key/value slots)
    d_model: int = 256
    n_layer: int = 2
    n_head: int = 4
    dropout: float = 0.1
    ecg_tokens: int = 8  # the encoder pools any signal length to this many ECG tokens
    encoder_width: int = 32  # channels of the first ResNet stage; doubled at each later stage
    block_size: int = 512  # max positions of the decoder (prompt + ECG prefix + report)
    max_ecgs: int = 1  # ECGs per example: 2 for ECG-QA's comparison questions (`ecgqa`)

    def __post_init__(self) -> None:
        if self.fusion not in ("prefix", "kv"):
            raise UserError(f"unknown fusion mode {self.fusion!r}", fix="use 'prefix' or 'kv'")
        if self.d_model % self.n_head:
            raise UserError(
                f"d_model {self.d_model} is not divisible by n_head {self.n_head}",
                fix="pick a width that is a multiple of the head count",
            )


#: Defaults of ``train-baseline --model`` where they differ from the built-in model's: the recipe
#: measured to make SmolLM2 read the ECG on 2 CPU cores (docs/training.md, "Reading the ECG").
MODEL_DEFAULTS = {
    "ecg_tokens": 16,
    "max_steps": 100,  # with stage 0 and validation: 21 min on 2 busy cores (make bench-llm)
    "warmup_steps": 10,
    "fusion_lr_scale": 10.0,
    "frozen_lm_steps": 20,
    "encoder_pretrain_steps": 300,
    "prompt_grad": False,
    "lora_dropout": 0.0,
    "length_bucketing": False,  # measured: homogeneous batches made it write one report
}


@dataclass
class TrainConfig:
    """Everything that determines a run; a resumed run reuses the saved one."""

    data: str
    config: str
    out: str
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0
    max_steps: int = 300
    batch_size: int = 16
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    vocab_size: int = 2000
    max_report_tokens: int = 128  # MEIT trains on 128 tokens
    signal_fs: int | None = None  # resample every record to this rate; None keeps the data's
    eval_interval: int = 100  # validation loss every N steps (0: only at the end)
    eval_records: int = 256  # validation records used for the loss
    save_interval: int = 200
    device: str = "auto"
    hf_model: str | None = None  # pretrained causal LM (smollm2, HF folder, .gguf) as decoder
    base_model: dict | None = None  # identity of hf_model when trained (hf_load.base_identity)
    lora: bool = False  # with hf_model: LoRA adapters + the new token rows only (MEIT)
    lora_r: int = 64  # MEIT: r=64, alpha=128, dropout 0.1
    lora_alpha: int = 128
    lora_dropout: float = 0.1
    dtype: str = "fp32"  # weights of hf_model: fp32, bf16 or fp16
    gradient_checkpointing: bool = False
    grad_accum: int = 1  # micro-batches per optimizer step (batch_size is the global batch)
    length_bucketing: bool = False  # batches of similar lengths (less padding), still seeded
    # Recipe for reading the ECG with a pretrained LM (docs/training.md, "Reading the ECG"):
    fusion_lr_scale: float = 1.0  # encoder + ECG gates train at lr * this
    frozen_lm_steps: int = 0  # first N steps: LoRA/token rows frozen, only encoder + gates learn
    encoder_pretrain_steps: int = 0  # stage 0: encoder as a statement classifier, before the LM
    encoder_pretrain_lr: float = 1e-3
    freeze_encoder_trunk: bool = True  # after stage 0, only the encoder's projection learns
    prompt_grad: bool = True  # False (--model default): the prompt runs under no_grad (kv fusion)

    def __post_init__(self) -> None:
        if self.dtype not in ("fp32", "bf16", "fp16"):
            raise UserError(f"unknown dtype {self.dtype!r}", fix="use fp32, bf16 or fp16")
        if self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise UserError(
                f"--batch-size {self.batch_size} is not a multiple of --grad-accum {self.grad_accum}",
                fix="the batch is split into --grad-accum equal micro-batches",
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in raw.items() if k in known}
        raw["model"] = ModelConfig(**raw.get("model", {}))
        return cls(**raw)

    @classmethod
    def load(cls, run_dir: Path) -> TrainConfig:
        path = Path(run_dir) / "run.json"
        if not path.exists():
            raise UserError(
                "not a training run (no run.json)",
                path=run_dir,
                fix="pass the --out folder of `ecg-instruct train-baseline`",
            )
        return cls.from_dict(json.loads(path.read_text()))
