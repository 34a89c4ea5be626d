"""Stage 0 of a ``--model`` run: teach the ECG encoder the findings before the LM sees it.

A pretrained LM with a fresh encoder has nothing to read: its zero-initialised gates get a
useful gradient only once the encoder's tokens carry the findings, and the few hundred LM steps
a CPU affords are spent learning the report template instead (measured: SmolLM2 then writes
2 distinct reports, whatever the ECG). This stage trains the encoder alone, a few seconds per
hundred steps, as a multi-label classifier of the SCP statements that the *training* reports
state (``evaluate.clinical.statements_of``: the same supervision as the reports, no labels
from elsewhere): a linear head on the mean of the ECG tokens, binary cross-entropy. The head
is thrown away; the encoder keeps what it learned and the LM stages start from it.

On ``ecgqa`` the assistant turns are answers ("yes", "sinus rhythm"), not reports, so the
targets come from the questions instead (``question_targets``): every single-ECG question of
the training split is a label of its ECG (verify: yes / no; choose: each option picked or not;
query: each term of the template's answer vocabulary present or not), and the classifier learns
those labels per ECG, with a mask where a question never asked. The same supervision the
question answering gets, no labels from elsewhere. Without it the built-in model answered from
the question text alone (docs/ecgqa.md: identical answers with zeroed or swapped ECGs).
"""

from __future__ import annotations

import sys

import numpy as np

from ecg_instruct.errors import UserError
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


#: Answers that state no label: the verify answer "not sure" and the query answer "none" (the
#: latter still makes every other term of its template a negative).
UNLABELLED = {"not sure", "none"}


def question_targets(questions: list[dict]) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(label keys, ECG ids, targets, known mask): one row per ECG of a single-ECG question.

    A key is ``<template_id>|<term>``: within a template a term means one thing (the template
    says whether it is a finding, a numeric feature's abnormality, a noise type...). Comparison
    questions are left out: their answers are about a pair, not about one ECG. A key asked
    twice about one ECG with opposite answers is left unknown.
    """
    single = [q for q in questions if len(q["ecg_ids"]) == 1]
    vocabulary: dict[int, set[str]] = {}  # query templates: every term their answers use
    for q in single:
        if q["question_type"].endswith("query"):
            vocabulary.setdefault(q["template_id"], set()).update(
                a for a in q["answer"] if a not in UNLABELLED)
    facts: dict[str, dict[str, float | None]] = {}
    for q in single:
        template, answer = q["template_id"], set(q["answer"])
        kind = q["question_type"].rsplit("-", 1)[-1]
        if kind == "verify":
            if answer in ({"yes"}, {"no"}) and q["attribute"]:
                labels = {"|".join(q["attribute"]): float(answer == {"yes"})}
            else:
                labels = {}
        elif kind == "choose":
            both = answer == {"both"}
            labels = {term: float(both or term in answer) for term in q["attribute"] or []}
        else:
            labels = {term: float(term in answer) for term in vocabulary.get(template, ())}
        known = facts.setdefault(q["ecg_ids"][0], {})
        for term, value in labels.items():
            key = f"{template}|{term}"
            known[key] = value if known.get(key, value) == value else None  # conflict: unknown
    keys = sorted({k for known in facts.values() for k, v in known.items() if v is not None})
    index = {k: i for i, k in enumerate(keys)}
    ecgs = sorted(facts)
    y = np.zeros((len(ecgs), max(1, len(keys))), dtype=np.float32)
    mask = np.zeros_like(y)
    for row, ecg in enumerate(ecgs):
        for key, value in facts[ecg].items():
            if value is not None:
                y[row, index[key]], mask[row, index[key]] = value, 1.0
    return keys, ecgs, y, mask


def _stage_data(split):
    """(label names, split to read signals from, targets, known mask) for ``split``: statements
    of the reports, or per-ECG question labels for ``ecgqa`` rows."""
    from ecg_instruct.train.data import QuestionSignals

    if split.questions is None and isinstance(split.signals, QuestionSignals):
        raise UserError("these rows reference their ECGs but carry no question_type, "
                        "template_id, attribute and answer: stage 0 has no labels for them",
                        fix="pass --encoder-pretrain-steps 0")
    if split.questions is None:
        codes, y = statement_targets(split.reports)
        return codes, split, y, np.ones_like(y)
    from dataclasses import replace

    keys, ecgs, y, mask = question_targets(split.questions)
    if not ecgs:
        raise UserError("no single-ECG question with a yes/no, choice or query answer in the "
                        "training split: stage 0 has nothing to learn",
                        fix="pass --encoder-pretrain-steps 0")
    first_row = {}
    for row, q in enumerate(split.questions):
        for ecg in q["ecg_ids"]:
            first_row.setdefault(ecg, row)
    per_ecg = replace(split, ids=ecgs, reports=[""] * len(ecgs), prompts=[], targets=[],
                      fs=[split.fs[first_row[e]] for e in ecgs],
                      signals=split.signals.for_ecgs(ecgs), questions=None)
    return keys, per_ecg, y, mask


def pretrain_encoder(encoder, split, cfg, device) -> dict:
    """Train ``encoder`` (in place) for ``cfg.encoder_pretrain_steps`` steps; returns a summary.

    Deterministic: its own seeded batch order and initialisation, independent of the LM stages.
    """
    torch = require_torch()
    from ecg_instruct.train.data import batch_index

    steps = cfg.encoder_pretrain_steps
    kind = "report statements" if split.questions is None else "question labels per ECG"
    codes, split, y, known = _stage_data(split)
    torch.manual_seed(stable_hash(cfg.seed, "encoder-pretrain") & 0x7FFFFFFFFFFFFFFF)
    width = encoder.proj.out_features
    head = torch.nn.Linear(width, y.shape[1]).to(device)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.encoder_pretrain_lr, weight_decay=cfg.weight_decay)
    targets, known = torch.from_numpy(y), torch.from_numpy(known)
    encoder.train()
    losses = []
    seed = stable_hash(cfg.seed, "encoder-pretrain-batches") & 0xFFFFFFFF
    for step in range(steps):
        idx = batch_index(step, len(split), cfg.batch_size * 2, seed)
        signal = split.signal_batch(idx, cfg.signal_fs).to(device)
        if signal.dim() == 4:  # per-ECG rows of the questions: (B, 1, 12, n)
            signal = signal[:, 0]
        tokens = encoder(signal).float()
        logits = head(tokens.mean(1))
        weight = known[idx].to(device)
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(
            logits, targets[idx].to(device), reduction="none") * weight).sum() / weight.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        for g in opt.param_groups:  # cosine from the peak to 10 %
            g["lr"] = cfg.encoder_pretrain_lr * (0.55 + 0.45 * np.cos(np.pi * step / steps))
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == steps:  # progress that moves
            print(f"encoder stage: step {step + 1}/{steps}, label loss {np.mean(losses[-50:]):.4f}",
                  file=sys.stderr)  # fmt: skip
    return {"statements": codes, "first_loss": losses[0] if losses else None,
            "targets": kind,
            "last_loss": float(np.mean(losses[-20:])) if losses else None}  # fmt: skip
