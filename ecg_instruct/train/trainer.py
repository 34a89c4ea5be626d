"""The training loop, in one place, top to bottom.

A run folder holds everything needed to resume or evaluate it::

    run.json         TrainConfig (data path, config, model shape, seed, schedule)
    tokenizer.json   the BPE tokenizer learned from the training split
    checkpoint.pt    model + optimizer + step (written atomically)
    train_log.jsonl  one line per logged step: loss, lr, grad norm, examples/s, val loss

Determinism: batch ``s`` is a slice of a permutation seeded by ``(seed, epoch)`` and dropout is
reseeded from ``(seed, s)`` at every step, so a resumed run takes exactly the steps the
uninterrupted one would have taken, with no sampler state in the checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ecg_instruct.errors import UserError
from ecg_instruct.rng import stable_hash
from ecg_instruct.train._torch import require_torch
from ecg_instruct.train.config import TrainConfig
from ecg_instruct.train.data import load_split, tokenise_split, training_batch
from ecg_instruct.train.text import ChatEncoder, load_tokenizer, prompt_text, train_tokenizer


def pick_device(name: str):
    """``auto`` is CUDA when available, else CPU."""
    torch = require_torch()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def set_threads(n: int) -> int:
    """Intra-op CPU threads; 0 picks ``available_cores()``. Returns the number set.

    torch's own default (one thread per core) is many times slower on a shared or oversubscribed
    machine: its OpenMP workers spin waiting for cores other processes hold.
    """
    n = n if n > 0 else available_cores()
    require_torch().set_num_threads(n)
    return n


def available_cores() -> int:
    """Cores this process may use that other processes are not already busy on (>= 1):
    the CPU affinity count minus the 1-minute load average, rounded."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(cores, cores - round(busy)))


def autocast(device):
    """bf16 autocast on GPUs that support it; plain float32 on CPU (faster there)."""
    torch = require_torch()
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def batch_index(step: int, n: int, batch_size: int, seed: int) -> np.ndarray:
    """Rows of batch ``step``: epochs are seeded permutations, the last partial batch dropped."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed & 0xFFFFFFFF, epoch]).permutation(n)
    return perm[k * batch_size : (k + 1) * batch_size]


def build_model(cfg: TrainConfig, encoder: ChatEncoder):
    """The built-in encoder-decoder, or the encoder + a local Hugging Face LM (``--model``)."""
    if cfg.hf_model:
        from ecg_instruct.train import hf

        return hf.build_model(cfg, encoder)
    from ecg_instruct.train.model import ECGReportModel

    return ECGReportModel(cfg.model, encoder.vocab_size, encoder.ecg_id, encoder.pad_id)


def model_state(model, cfg: TrainConfig) -> dict:
    """What a checkpoint stores: every weight, or with ``--model`` only the trainable ones
    (the frozen base LM is reloaded from its local path)."""
    if not cfg.hf_model:
        return model.state_dict()
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def load_model_state(model, state: dict, cfg: TrainConfig) -> None:
    result = model.load_state_dict(state, strict=not cfg.hf_model)
    if result.unexpected_keys:
        raise UserError(f"checkpoint does not fit the model: {result.unexpected_keys[:3]}")


def load_run(run_dir: Path, device=None):
    """(config, chat encoder, model in eval mode) from a run folder."""
    torch = require_torch()
    run_dir = Path(run_dir)
    cfg = TrainConfig.load(run_dir)
    ckpt_path = run_dir / "checkpoint.pt"
    if not ckpt_path.exists():
        raise UserError("run has no checkpoint.pt yet", path=run_dir, fix="train it first")
    encoder = ChatEncoder(load_tokenizer(run_dir / "tokenizer.json"))
    model = build_model(cfg, encoder)
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    load_model_state(model, state["model"], cfg)
    device = device or pick_device(cfg.device)
    return cfg, encoder, model.to(device).eval()


def _save(path: Path, payload: dict) -> None:
    torch = require_torch()
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a truncated checkpoint


def _progress(enabled: bool | None, total: int, initial: int):
    from tqdm import tqdm

    disable = not (sys.stderr.isatty() if enabled is None else enabled)
    return tqdm(total=total, initial=initial, disable=disable, file=sys.stderr, unit="step")


def validation_loss(model, split, encoder, cfg: TrainConfig, device) -> float:
    """Mean report-token loss over the first ``eval_records`` validation rows (fixed subset)."""
    torch = require_torch()
    n = min(len(split), cfg.eval_records)
    total, weight = 0.0, 0
    model.eval()
    with torch.no_grad(), autocast(device):
        for start in range(0, n, cfg.batch_size):
            idx = list(range(start, min(n, start + cfg.batch_size)))
            b = training_batch(
                split, idx, encoder, cfg.model.fusion, cfg.model.ecg_tokens, cfg.signal_fs
            )
            tokens = int((b["targets"] != -100).sum())
            loss = model.loss(*(b[k].to(device) for k in ("ids", "targets", "signal")))
            total += float(loss) * tokens
            weight += tokens
    model.train()
    return total / max(1, weight)


def train(cfg: TrainConfig, resume: bool = False, progress: bool | None = None) -> dict:
    """Train (or resume) a run; returns a summary with the first and last logged losses."""
    torch = require_torch()
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists() and not resume:
        raise UserError(
            "already holds a training run", path=out, fix="pass --resume or choose another --out"
        )
    fresh = not (resume and ckpt_path.exists())
    if not fresh:
        saved = TrainConfig.load(out)
        saved.max_steps, saved.device = cfg.max_steps, cfg.device  # may extend a finished run
        cfg = saved
    out.mkdir(parents=True, exist_ok=True)

    # Data and tokenizer: learned from the training split only, saved with the run. A fresh
    # run rebuilds it, so leftovers of a run that crashed before its first checkpoint never leak.
    train_ds = load_split(cfg.data, cfg.config, "train")
    tok_path = out / "tokenizer.json"
    if fresh and cfg.hf_model:
        from ecg_instruct.train.hf import prepare_tokenizer

        prepare_tokenizer(cfg.hf_model, tok_path)
    elif fresh:
        cols = train_ds.select_columns(["messages", "report"]).to_dict()
        texts = list(cols["report"]) + sorted({prompt_text(m) for m in cols["messages"]})
        train_tokenizer(texts, cfg.vocab_size).save(str(tok_path))
    encoder = ChatEncoder(load_tokenizer(tok_path))
    train_split = tokenise_split(train_ds, encoder, cfg.max_report_tokens)
    try:
        val_split = tokenise_split(
            load_split(cfg.data, cfg.config, "validation"), encoder, cfg.max_report_tokens
        )
    except UserError:
        val_split = None  # a dataset without a validation split still trains
    (out / "run.json").write_text(cfg.to_json())

    # Model and optimizer. Weight decay only on matrices, as in nanoGPT.
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, encoder).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))
    step = 0
    if not fresh:
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        load_model_state(model, state["model"], cfg)
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])

    def save() -> None:
        payload = {"model": model_state(model, cfg), "optimizer": opt.state_dict(), "step": step}
        _save(ckpt_path, payload)

    n_params = sum(p.numel() for p in model.parameters())
    log_path = out / "train_log.jsonl"
    kept = []  # on resume, drop log lines of steps taken after the checkpoint (they are redone)
    if not fresh and log_path.exists():
        kept = [x for x in log_path.read_text().splitlines() if json.loads(x)["step"] <= step]
    log = log_path.open("w")
    log.writelines(line + "\n" for line in kept)
    losses: list[float] = []
    bar = _progress(progress, cfg.max_steps, step)
    bar.set_description(f"{n_params / 1e6:.1f}M params")
    model.train()
    t0, seen = time.perf_counter(), 0
    while step < cfg.max_steps:
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        torch.manual_seed(stable_hash(cfg.seed, "dropout", step) & 0x7FFFFFFFFFFFFFFF)
        idx = batch_index(step, len(train_split), cfg.batch_size, cfg.seed)
        b = training_batch(
            train_split, idx, encoder, cfg.model.fusion, cfg.model.ecg_tokens, cfg.signal_fs
        )
        with autocast(device):
            loss = model.loss(*(b[k].to(device) for k in ("ids", "targets", "signal")))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
        opt.step()
        step += 1
        seen += len(idx)
        losses.append(loss.item())
        record = {"step": step, "loss": round(losses[-1], 5), "lr": lr, "grad_norm": grad_norm}
        last = step == cfg.max_steps
        due = last or (cfg.eval_interval and step % cfg.eval_interval == 0)
        if val_split is not None and due:
            record["val_loss"] = round(validation_loss(model, val_split, encoder, cfg, device), 5)
        record["examples_per_s"] = round(seen / (time.perf_counter() - t0), 2)
        log.write(json.dumps(record) + "\n")
        log.flush()
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{lr:.1e}")
        if last or step % cfg.save_interval == 0:
            save()
    if step == 0 or not ckpt_path.exists():
        save()
    bar.close()
    log.close()
    return {
        "out": str(out),
        "steps": step,
        "params": n_params,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "examples_per_s": seen / max(1e-9, time.perf_counter() - t0),
        "config": asdict(cfg),
    }
