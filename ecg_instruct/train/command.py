"""`ecg-instruct train-baseline`: a thin typer wrapper over ``trainer.train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecg_instruct.train.config import ModelConfig, TrainConfig


def train_baseline(
    data: Annotated[Path, typer.Option(help="Published dataset folder (`build --out`).")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoint, tokenizer, logs.")],
    config: Annotated[str, typer.Option(help="Dataset config: ptbxl, mimic or all.")] = "ptbxl",
    max_steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 300,
    batch_size: Annotated[int, typer.Option()] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 1e-3,
    warmup_steps: Annotated[int, typer.Option()] = 50,
    fusion: Annotated[
        str, typer.Option(help="'kv' (MEIT: ECG as key/value slots) or 'prefix' (LLaVA).")
    ] = "kv",
    d_model: Annotated[int, typer.Option(help="Decoder width.")] = 256,
    n_layer: Annotated[int, typer.Option(help="Decoder depth.")] = 2,
    n_head: Annotated[int, typer.Option()] = 4,
    dropout: Annotated[float, typer.Option()] = 0.1,
    ecg_tokens: Annotated[int, typer.Option(help="ECG tokens per record.")] = 8,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 2000,
    max_report_tokens: Annotated[int, typer.Option()] = 128,
    signal_fs: Annotated[
        int, typer.Option(help="Resample signals to this rate (Hz); 0 keeps the data's rate.")
    ] = 100,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda.")] = "auto",
    eval_interval: Annotated[int, typer.Option(help="Validation loss every N steps.")] = 100,
    save_interval: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 200,
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch (0: torch's default, all cores).")
    ] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar.")
    ] = None,
) -> None:
    """Train the baseline ECG-to-report model on a published dataset."""
    from ecg_instruct.train.trainer import set_threads, train

    set_threads(threads)

    cfg = TrainConfig(
        data=str(Path(data).resolve()),
        config=config,
        out=str(out),
        model=ModelConfig(
            fusion=fusion, d_model=d_model, n_layer=n_layer, n_head=n_head, dropout=dropout,
            ecg_tokens=ecg_tokens,
        ),  # fmt: skip
        seed=seed,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=warmup_steps,
        vocab_size=vocab_size,
        max_report_tokens=max_report_tokens,
        signal_fs=signal_fs or None,
        eval_interval=eval_interval,
        save_interval=save_interval,
        device=device,
    )
    s = train(cfg, resume=resume, progress=progress)
    typer.echo(
        f"{s['out']}: {s['steps']} steps, {s['params'] / 1e6:.2f}M params, "
        f"loss {s['first_loss']:.3f} -> {s['last_loss']:.3f}, {s['examples_per_s']:.1f} ECG/s"
        if s["first_loss"] is not None
        else f"{s['out']}: already at step {s['steps']}"
    )
