"""The training loop, in one place, top to bottom.

A run folder holds everything needed to resume or evaluate it::

    run.json         TrainConfig (data path, config, model shape, seed, schedule)
    tokenizer.json   the BPE tokenizer learned from the training split (or, with --model,
                     hf_tokenizer/: the LM's tokenizer with <ecg>/<pad> and its chat template)
    checkpoint.pt    model weights + step (written atomically); with --model only the
                     trainable tensors (LoRA, value gates, encoder, new token rows)
    optimizer.pt     AdamW state + step, needed only by --resume (2x the trainable weights)
    model.json       fusion, base model identity, LoRA settings, total/trainable parameters
    train_log.jsonl  one line per logged step: loss, lr, grad norm, examples/s, val loss

Determinism: batch ``s`` is a slice of a permutation seeded by ``(seed, epoch)`` and dropout is
reseeded from ``(seed, s)`` at every step, so a resumed run takes exactly the steps the
uninterrupted one would have taken, with no sampler state in the checkpoint. Under ``torchrun``
every rank takes its share of the same global batch (``distributed.py``) and the loss is
normalised by the global batch's target-token count, so it does not depend on the number of
processes or of ``--grad-accum`` micro-batches.
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
from ecg_instruct.train import distributed
from ecg_instruct.train._torch import require_torch
from ecg_instruct.train.config import TrainConfig
from ecg_instruct.train.data import batch_index, load_split, tokenise_split, training_batch
from ecg_instruct.train.hf_chat import load_encoder
from ecg_instruct.train.text import prompt_text, train_tokenizer


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


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_cores() -> int:
    """Cores this process may use that other processes are not already busy on (>= 1):
    the CPU affinity count minus the 1-minute load average, rounded."""
    import os

    cores = cpu_cores()
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


def bucketed_batch_index(
    step: int, lengths: np.ndarray, batch_size: int, seed: int, window: int = 64
) -> np.ndarray:
    """Length bucketing: each epoch's permutation is cut into windows of ``window`` batches,
    sorted by length inside a window, and the batches are visited in a seeded random order.
    Rows of a batch have similar lengths (less padding); the sequence is still a function of
    (seed, step) only, so resume stays exact."""
    n = len(lengths)
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    order = _bucketed_epoch(lengths.tobytes(), n, batch_size, seed, epoch, window)
    return order[k * batch_size : (k + 1) * batch_size]


_EPOCH_CACHE: dict = {}


def _bucketed_epoch(key: bytes, n: int, batch_size: int, seed: int, epoch: int, window: int):
    cache_key = (hash(key), n, batch_size, seed, epoch, window)
    if cache_key not in _EPOCH_CACHE:
        lengths = np.frombuffer(key, dtype=np.int64)
        perm = np.random.default_rng([seed & 0xFFFFFFFF, epoch]).permutation(n)
        chunks = [perm[i : i + window * batch_size] for i in range(0, n, window * batch_size)]
        perm = np.concatenate([c[np.argsort(lengths[c], kind="stable")] for c in chunks])
        n_batches = n // batch_size
        batches = perm[: n_batches * batch_size].reshape(n_batches, batch_size)
        shuffle = np.random.default_rng([seed & 0xFFFFFFFF, epoch, 1]).permutation(n_batches)
        _EPOCH_CACHE.clear()  # one epoch at a time
        _EPOCH_CACHE[cache_key] = batches[shuffle].reshape(-1)
    return _EPOCH_CACHE[cache_key]


def build_model(cfg: TrainConfig, encoder):
    """The built-in encoder-decoder, or the encoder + a local Hugging Face LM (``--model``)."""
    if cfg.hf_model:
        from ecg_instruct.train import hf

        return hf.build_model(cfg, encoder)
    from ecg_instruct.train.model import ECGReportModel

    return ECGReportModel(cfg.model, encoder.vocab_size, encoder.ecg_id, encoder.pad_id)


def trainable_names(model) -> set[str]:
    """The tensors a ``--model`` checkpoint holds: those trainable when the model was built
    (a frozen-LM stage switches some off for a while; they are still saved)."""
    names = getattr(model, "trainable_names", None)
    return set(names) if names is not None else {
        n for n, p in model.named_parameters() if p.requires_grad}  # fmt: skip


def is_fusion_param(name: str) -> bool:
    """The ECG side of a ``--model`` run: encoder, gates and, with two ECGs, the first/second
    ECG vector ``ecg_order`` (``--fusion-lr-scale``; they learn during the frozen-LM steps).
    The built-in model's ``ecg_order.weight`` keeps its optimizer group, so its runs resume."""
    return name.startswith(("encoder.", "ecg_gate")) or name == "ecg_order"


def model_state(model, cfg: TrainConfig) -> dict:
    """What a checkpoint stores: every weight, or with ``--model`` only the trainable ones
    (the frozen base LM is reloaded from its local path)."""
    if not cfg.hf_model:
        return model.state_dict()
    keep = trainable_names(model)
    return {n: p.detach() for n, p in model.named_parameters() if n in keep}


def load_model_state(model, state: dict, cfg: TrainConfig, path: Path | None = None) -> None:
    """Load a checkpoint; a missing or unexpected tensor is an error, never silently skipped."""
    fix = "the checkpoint was written by another model or code version; retrain the run"
    if cfg.hf_model:
        wanted = trainable_names(model)
        missing, extra = sorted(wanted - state.keys()), sorted(state.keys() - wanted)
        if missing or extra:
            what = f"lacks {missing[:3]}" if missing else f"has unexpected {extra[:3]}"
            raise UserError(f"checkpoint {what}", path=path, fix=fix)
        model.load_state_dict(state, strict=False)
        return
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys or result.missing_keys:
        keys = result.missing_keys[:3] or result.unexpected_keys[:3]
        raise UserError(f"checkpoint does not fit the model: {keys}", path=path, fix=fix)


def check_base_model(model, cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse to put a run's adapters on a base model other than the one it was trained on."""
    if not cfg.hf_model or not cfg.base_model:
        return
    now, then = model.base_identity, cfg.base_model
    # runs written before weight values were hashed carry no weights_sha256: config+index only
    values_differ = "weights_sha256" in then and now.get("weights_sha256") != then["weights_sha256"]
    if now["sha256"] != then["sha256"] or values_differ:
        what = "weight values differ" if now["sha256"] == then["sha256"] else "config/tensor shapes differ"
        raise UserError(
            f"--model {cfg.hf_model} ({now['source']}) is not the base model this run was trained "
            f"on ({then['source']}: {what})",
            path=run_dir,
            fix="install or point run.json's hf_model at the original base model",
        )


def describe_model(model, cfg: TrainConfig) -> dict:
    """Parameter counts and a memory estimate (weights + gradients + AdamW state of the
    trainable tensors; activations come on top and grow with batch and length)."""
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    weights = sum(p.numel() * p.element_size() for p in params)
    train_state = sum(p.numel() * (p.element_size() + 8) for p in trainable)
    out = {
        "decoder": "builtin" if not cfg.hf_model else cfg.hf_model,
        "fusion": cfg.model.fusion,
        "ecg_tokens": cfg.model.ecg_tokens,
        "total_params": sum(p.numel() for p in params),
        "trainable_params": sum(p.numel() for p in trainable),
        "estimated_memory_gb": round((weights + train_state) / 1e9, 3),
    }
    if cfg.hf_model:
        out |= {"base_model": cfg.base_model, "dtype": cfg.dtype, "lora": cfg.lora}
        if cfg.lora:
            out |= {"lora_r": cfg.lora_r, "lora_alpha": cfg.lora_alpha,
                    "lora_dropout": cfg.lora_dropout}  # fmt: skip
    return out


def load_run(run_dir: Path, device=None):
    """(config, chat encoder, model in eval mode) from a run folder."""
    torch = require_torch()
    run_dir = Path(run_dir)
    cfg = TrainConfig.load(run_dir)
    ckpt_path = run_dir / "checkpoint.pt"
    if not ckpt_path.exists():
        raise UserError("run has no checkpoint.pt yet", path=run_dir, fix="train it first")
    encoder = load_encoder(run_dir)
    model = build_model(cfg, encoder)
    check_base_model(model, cfg, run_dir)
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    load_model_state(model, state["model"], cfg, ckpt_path)
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
    model = getattr(model, "module", model)  # DDP's wrapper would wait for the other ranks
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


def _prepare_text(cfg: TrainConfig, out: Path, train_ds, fresh: bool, dist) -> None:
    """Tokenizer files of the run, written by rank 0 only (the others wait and read them)."""
    if fresh and dist.main:
        if cfg.hf_model:
            from ecg_instruct.train.hf_chat import prepare_tokenizer
            from ecg_instruct.train.hf_load import load_tokenizer

            prepare_tokenizer(load_tokenizer(cfg.hf_model), out)
        else:
            from ecg_instruct.train.data import assistant_text

            columns = ["messages", "report"] if "report" in train_ds.column_names else ["messages"]
            cols = train_ds.select_columns(columns).to_dict()
            answers = cols.get("report") or [assistant_text(m, "") for m in cols["messages"]]
            texts = list(answers) + sorted({prompt_text(m) for m in cols["messages"]})
            train_tokenizer(texts, cfg.vocab_size).save(str(out / "tokenizer.json"))
    dist.barrier()


def train(cfg: TrainConfig, resume: bool = False, progress: bool | None = None) -> dict:
    """Train (or resume) a run; returns a summary with the first and last logged losses."""
    torch = require_torch()
    dist = distributed.init_from_env(cfg.device)
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
    if cfg.batch_size % (dist.world * cfg.grad_accum):
        raise UserError(
            f"--batch-size {cfg.batch_size} does not split into {dist.world} processes x "
            f"{cfg.grad_accum} micro-batches",
            fix="make the global batch a multiple of processes x --grad-accum",
        )
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        if fresh:  # leftovers of a run that crashed before its first checkpoint never leak
            for stale in ("tokenizer.json", "hf_tokenizer"):
                if (out / stale).is_file():
                    (out / stale).unlink()
                elif (out / stale).is_dir():
                    import shutil

                    shutil.rmtree(out / stale)

    # Data and tokenizer: learned from the training split only (or the LM's own), saved with
    # the run.
    train_ds = load_split(cfg.data, cfg.config, "train")
    _prepare_text(cfg, out, train_ds, fresh, dist)
    encoder = load_encoder(out)
    train_split = tokenise_split(train_ds, encoder, cfg.max_report_tokens, cfg.data)
    try:
        val_split = tokenise_split(
            load_split(cfg.data, cfg.config, "validation"), encoder, cfg.max_report_tokens,
            cfg.data,
        )
    except UserError:
        val_split = None  # a dataset without a validation split still trains

    # Model and optimizer. Weight decay only on matrices, as in nanoGPT.
    device = distributed.device_for(dist, pick_device(cfg.device))
    torch.manual_seed(cfg.seed)
    raw_model = build_model(cfg, encoder)
    if cfg.hf_model:
        if fresh:
            cfg.base_model = raw_model.base_identity
        else:
            check_base_model(raw_model, cfg, out)
    raw_model = raw_model.to(device)
    raw_model.trainable_names = [n for n, p in raw_model.named_parameters() if p.requires_grad]
    summary = describe_model(raw_model, cfg) | {"train_records": len(train_split)}
    if fresh and cfg.encoder_pretrain_steps:  # stage 0 (encoder_pretrain.py), fresh runs only
        from ecg_instruct.train.encoder_pretrain import pretrain_encoder

        t_stage = time.perf_counter()
        stage = pretrain_encoder(raw_model.encoder, train_split, cfg, device)
        summary["encoder_pretrain"] = {
            "steps": cfg.encoder_pretrain_steps, "targets": stage["targets"],
            "statements": len(stage["statements"]),
            "first_loss": stage["first_loss"], "last_loss": stage["last_loss"],
            "seconds": round(time.perf_counter() - t_stage, 1),
        }  # fmt: skip
    if cfg.encoder_pretrain_steps and cfg.freeze_encoder_trunk:
        # The trained trunk stays as stage 0 left it (LLaVA keeps its vision encoder frozen):
        # at the gates' learning rate it was overwritten within a few steps and the ECG
        # became a constant soft prompt (measured: one report for every record). Projection,
        # positions and norm still learn; the trunk is still saved (trainable_names).
        for name, p in raw_model.encoder.named_parameters():
            if name.startswith(("stem.", "stages.")):
                p.requires_grad_(False)
        frozen = describe_model(raw_model, cfg)  # what the next stages train
        summary |= {k: frozen[k] for k in ("trainable_params", "estimated_memory_gb")}
    if dist.main:
        (out / "run.json").write_text(cfg.to_json())
        (out / "model.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(
            f"{summary['total_params'] / 1e6:.1f}M params, {summary['trainable_params'] / 1e6:.2f}M "
            f"trainable, ~{summary['estimated_memory_gb']:.2f} GB for weights + training state "
            f"(plus activations); fusion {cfg.model.fusion}"
            + (f"; {dist.world} processes (data parallel)" if dist.active else ""),
            file=sys.stderr,
        )
    model = distributed.wrap(raw_model, dist, device)
    named = [(n, p) for n, p in raw_model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    scale = cfg.fusion_lr_scale if cfg.hf_model else 1.0
    groups = [
        {"params": [p for n, p in named if (p.dim() >= 2) == matrix and is_fusion_param(n) == ecg],
         "weight_decay": cfg.weight_decay if matrix else 0.0, "lr_scale": scale if ecg else 1.0,
         "ecg": ecg}
        for matrix in (True, False) for ecg in (False, True)
    ]  # fmt: skip
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))
    # Frozen-LM stage (LLaVA stage 1): LoRA and token rows wait while encoder + gates learn.
    lm_params = [p for n, p in named if not is_fusion_param(n)] if cfg.hf_model else []
    step = 0
    opt_path = out / "optimizer.pt"
    if not fresh:
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        load_model_state(raw_model, state["model"], cfg, ckpt_path)
        step = int(state["step"])
        opt_state = torch.load(opt_path, map_location=device, weights_only=True) if (
            opt_path.exists()) else {"step": None}  # fmt: skip
        if opt_state["step"] != step:
            raise UserError(
                f"optimizer state is missing or from another step than checkpoint.pt ({step})",
                path=opt_path, fix="retrain the run (or start a new one from scratch)",
            )  # fmt: skip
        opt.load_state_dict(opt_state["optimizer"])

    def save() -> None:
        # the optimizer first: a crash between the two writes leaves an older checkpoint.pt,
        # whose step no longer matches, so resume refuses instead of mixing states
        if dist.main:
            _save(opt_path, {"optimizer": opt.state_dict(), "step": step})
            _save(ckpt_path, {"model": model_state(raw_model, cfg), "step": step})

    log_path = out / "train_log.jsonl"
    kept = []  # on resume, drop log lines of steps taken after the checkpoint (they are redone)
    if dist.main and not fresh and log_path.exists():
        kept = [x for x in log_path.read_text().splitlines() if json.loads(x)["step"] <= step]
    log = log_path.open("w") if dist.main else None
    if log:
        log.writelines(line + "\n" for line in kept)
    # what a batch is padded to: the whole sequence, or only the report when the prompt runs
    # apart (kv fusion without prompt gradient: prompts are cached once per distinct text)
    prompt_apart = cfg.hf_model and not cfg.prompt_grad and cfg.model.fusion == "kv"
    lengths = np.array([len(t) + (0 if prompt_apart else len(p)) for p, t in zip(
        train_split.prompts, train_split.targets, strict=True)], dtype=np.int64)  # fmt: skip
    losses: list[float] = []
    bar = _progress(progress if dist.main else False, cfg.max_steps, step)
    bar.set_description(f"{summary['total_params'] / 1e6:.1f}M params")
    model.train()
    t0, seen = time.perf_counter(), 0
    while step < cfg.max_steps:
        lr = lr_at(step, cfg)
        frozen = step < cfg.frozen_lm_steps
        for g in opt.param_groups:
            # DDP needs a fixed set of gradients: it holds a frozen LM by lr 0 instead
            held = frozen and dist.active and not g.get("ecg", True)
            g["lr"] = 0.0 if held else lr * g.get("lr_scale", 1.0)
        if not dist.active:
            for p in lm_params:
                if p.requires_grad == frozen:  # no weight gradients: a cheaper backward
                    p.requires_grad_(not frozen)
        dropout_key = (cfg.seed, "dropout", step) + ((dist.rank,) if dist.active else ())
        torch.manual_seed(stable_hash(*dropout_key) & 0x7FFFFFFFFFFFFFFF)
        if cfg.length_bucketing:
            idx = bucketed_batch_index(step, lengths, cfg.batch_size, cfg.seed)
        else:
            idx = batch_index(step, len(train_split), cfg.batch_size, cfg.seed)
        # every rank knows the global batch's target-token count: losses are normalised by it
        n_tokens = sum(len(train_split.targets[i]) for i in idx)
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for micro in np.array_split(dist.share(idx), cfg.grad_accum):
            b = training_batch(
                train_split, micro, encoder, cfg.model.fusion, cfg.model.ecg_tokens, cfg.signal_fs
            )
            micro_tokens = int((b["targets"] != -100).sum())
            with autocast(device):
                loss = model(*(b[k].to(device) for k in ("ids", "targets", "signal")))
            # DDP averages gradients over ranks: scale so the sum is the global token mean
            (loss * (micro_tokens * dist.world / n_tokens)).backward()
            loss_sum += loss.item() * micro_tokens
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
        opt.step()
        step += 1
        seen += len(idx)
        losses.append(dist.all_sum(loss_sum) / n_tokens)
        record = {"step": step, "loss": round(losses[-1], 5), "lr": lr, "grad_norm": grad_norm}
        last = step == cfg.max_steps
        due = last or (cfg.eval_interval and step % cfg.eval_interval == 0)
        if val_split is not None and due and dist.main:
            record["val_loss"] = round(validation_loss(model, val_split, encoder, cfg, device), 5)
        record["examples_per_s"] = round(seen / (time.perf_counter() - t0), 2)
        if log:
            log.write(json.dumps(record) + "\n")
            log.flush()
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{lr:.1e}")
        if last or step % cfg.save_interval == 0:
            save()
    if step == 0 or not ckpt_path.exists():
        save()
    dist.barrier()
    bar.close()
    if log:
        log.close()
    return {
        "out": str(out),
        "steps": step,
        "params": summary["total_params"],
        "trainable_params": summary["trainable_params"],
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "examples_per_s": seen / max(1e-9, time.perf_counter() - t0),
        "config": asdict(cfg),
    }
