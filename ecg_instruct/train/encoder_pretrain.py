"""Stage 0 of a ``--model`` run: teach the ECG encoder the findings before the LM sees it.

A pretrained LM with a fresh encoder has nothing to read: its zero-initialised gates get a
useful gradient only once the encoder's tokens carry the findings, and the few hundred LM steps
a CPU affords are spent learning the report template instead (measured: SmolLM2 then writes
2 distinct reports, whatever the ECG). This stage trains the encoder alone, a few seconds per
hundred steps, as a multi-label classifier of the SCP statements that the *training* reports
state (``evaluate.clinical.statements_of``: the same supervision as the reports, no labels
from elsewhere): a linear head on the mean of the ECG tokens, binary cross-entropy. The head
is thrown away; the encoder keeps what it learned and the LM stages start from it.
"""

from __future__ import annotations

import sys

import numpy as np

from ecg_instruct.rng import stable_hash
from ecg_instruct.train._torch import require_torch


def statement_targets(reports: list[str]) -> tuple[list[str], np.ndarray]:
    """(statement codes seen in the training reports, sorted; multi-hot matrix per report)."""
    from ecg_instruct.evaluate.clinical import statements_of

    sets = [statements_of(r) for r in reports]
    codes = sorted(set().union(*sets))
    index = {c: i for i, c in enumerate(codes)}
    y = np.zeros((len(reports), max(1, len(codes))), dtype=np.float32)
    for row, found in enumerate(sets):
        for code in found:
            y[row, index[code]] = 1.0
    return codes, y


def pretrain_encoder(encoder, split, cfg, device) -> dict:
    """Train ``encoder`` (in place) for ``cfg.encoder_pretrain_steps`` steps; returns a summary.

    Deterministic: its own seeded batch order and initialisation, independent of the LM stages.
    """
    torch = require_torch()
    from ecg_instruct.train.data import batch_index

    steps = cfg.encoder_pretrain_steps
    codes, y = statement_targets(split.reports)
    torch.manual_seed(stable_hash(cfg.seed, "encoder-pretrain") & 0x7FFFFFFFFFFFFFFF)
    width = encoder.proj.out_features
    head = torch.nn.Linear(width, y.shape[1]).to(device)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.encoder_pretrain_lr, weight_decay=cfg.weight_decay)
    targets = torch.from_numpy(y)
    encoder.train()
    losses = []
    seed = stable_hash(cfg.seed, "encoder-pretrain-batches") & 0xFFFFFFFF
    for step in range(steps):
        idx = batch_index(step, len(split), cfg.batch_size * 2, seed)
        signal = split.signal_batch(idx, cfg.signal_fs).to(device)
        tokens = encoder(signal).float()
        logits = head(tokens.mean(1))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        for g in opt.param_groups:  # cosine from the peak to 10 %
            g["lr"] = cfg.encoder_pretrain_lr * (0.55 + 0.45 * np.cos(np.pi * step / steps))
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == steps:  # progress that moves
            print(f"encoder stage: step {step + 1}/{steps}, statement loss {np.mean(losses[-50:]):.4f}",
                  file=sys.stderr)  # fmt: skip
    return {"statements": codes, "first_loss": losses[0] if losses else None,
            "last_loss": float(np.mean(losses[-20:])) if losses else None}  # fmt: skip
