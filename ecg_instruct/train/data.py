"""The published dataset as tensors: ``datasets.load_dataset(path, config)`` and nothing else.

Text is tokenised once up front (a few seconds for PTB-XL); signals stay in the Arrow table and
are read per batch through ``with_format("torch")``, so memory stays flat for MIMIC-sized splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecg_instruct.errors import UserError
from ecg_instruct.train._torch import require_torch

SIGNAL_COLUMNS = ("signal",)
#: Columns a config must have: one ECG per row (the source configs), or ECGs by reference
#: (`ecgqa`: one or two record ids per question, signals read from the source configs).
RECORD_COLUMNS = ("id", "signal", "messages", "report")
QUESTION_COLUMNS = ("id", "ecg_ids", "messages")
#: What a question row says about its ECGs (``Split.questions``).
QUESTION_FIELDS = ("question_type", "template_id", "attribute", "answer", "ecg_ids")


class QuestionSignals:
    """``signals[rows]["signal"]`` for rows that name their ECGs (``ecg_ids``): each a
    (k, 12, n) array read from the dataset's source configs (``questions.signals``)."""

    def __init__(self, data: str | Path, ecg_ids: Sequence[Sequence[str]]):
        from ecg_instruct.questions.signals import SignalStore

        self.store = SignalStore(data)
        self.ecg_ids = [list(ids) for ids in ecg_ids]

    def __getitem__(self, rows: Sequence[int]) -> dict:
        return {"signal": [self.store.signals(self.ecg_ids[i]) for i in rows]}

    def for_ecgs(self, ecg_ids: Sequence[str]) -> QuestionSignals:
        """One row per ECG (``ecg_ids``), sharing this store and its cache: stage 0 trains
        the encoder on ECGs, not on questions."""
        view = QuestionSignals.__new__(QuestionSignals)
        view.store, view.ecg_ids = self.store, [[e] for e in ecg_ids]
        return view

    def fs(self) -> list[int]:
        return [self.store.fs(ids[0]) for ids in self.ecg_ids]


def load_split(data: str | Path, config: str, split: str):
    """One split of one published config, with a one-line error for the usual mistakes."""
    import datasets

    path = Path(data)
    if not (path / "README.md").exists():
        raise UserError(
            "no published dataset here (README.md missing)",
            path=path,
            fix="pass the --out folder of `ecg-instruct build`",
        )
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(str(path), config, split=split)
    except ValueError as exc:  # unknown config or split
        raise UserError(f"cannot load config {config!r} split {split!r}: {exc}", path=path) from exc
    wanted = QUESTION_COLUMNS if "ecg_ids" in ds.column_names else RECORD_COLUMNS
    missing = set(wanted) - set(ds.column_names)
    if missing:
        raise UserError(f"config {config!r} lacks columns {sorted(missing)}", path=path)
    if len(ds) == 0:
        raise UserError(f"config {config!r} split {split!r} is empty", path=path)
    return ds


@dataclass
class Split:
    """A tokenised split: text ids in Python lists, signals read lazily from Arrow."""

    ids: list[str]
    reports: list[str]  # the assistant turn of each row: training target and reference
    prompts: list[list[int]]
    targets: list[list[int]]
    fs: list[int]
    signals: object  # datasets.Dataset with only "signal", torch-formatted
    #: ``ecgqa`` rows: question_type, template_id, attribute, answer and ecg_ids per row (what
    #: stage 0 learns per ECG, ``encoder_pretrain.question_targets``); None for record configs
    questions: list[dict] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def record_ids(self, i: int) -> list[str]:
        """The record ids of row `i`'s ECGs, in order: its own id, or a question's `ecg_ids`."""
        if isinstance(self.signals, QuestionSignals):
            return self.signals.ecg_ids[i]
        return [self.ids[i]]

    def signal_batch(self, index: Sequence[int], target_fs: int | None):
        """Signals for ``index`` as one float32 tensor (B, 12, n), NaN set to 0 and, if asked,
        resampled to ``target_fs`` so a model sees the rate it was trained on."""
        torch = require_torch()
        raw = self.signals[list(index)]["signal"]
        rows = list(raw) if not isinstance(raw, torch.Tensor) else list(raw.unbind(0))
        out = []
        for i, x in zip(index, rows, strict=True):
            x = torch.as_tensor(x, dtype=torch.float32)
            fs = self.fs[i]
            if target_fs and fs and fs != target_fs:
                x = torch.from_numpy(resample(x.numpy(), fs, target_fs))
            out.append(torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))
        n = max(x.shape[-1] for x in out)
        if any(x.shape[-1] != n for x in out):  # mixed lengths: zero-pad at the end
            out = [torch.nn.functional.pad(x, (0, n - x.shape[-1])) for x in out]
        if out[0].dim() == 3:  # rows of k ECGs: (B, K, 12, n), absent ECGs all NaN
            k = max(x.shape[0] for x in out)
            out = [torch.cat([x, x.new_full((k - x.shape[0], *x.shape[1:]), float("nan"))])
                   for x in out]
        return torch.stack(out)


def resample(x: np.ndarray, fs: int, target_fs: int) -> np.ndarray:
    """Polyphase resampling along time (same method as the build's signal stage)."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(fs), int(target_fs))
    y = resample_poly(x, int(target_fs) // g, int(fs) // g, axis=-1, padtype="line")
    return y.astype(np.float32)


def tokenise_split(ds, encoder, max_report_tokens: int, data: str | Path | None = None) -> Split:
    """Tokenise prompts and reports of a loaded split. ``data``: the dataset folder, needed
    for rows that reference their ECGs (``ecgqa``)."""
    wanted = [c for c in dict.fromkeys(("id", "messages", "report", "fs", *QUESTION_FIELDS))
              if c in ds.column_names]
    cols = ds.select_columns(wanted).to_dict()
    n = len(cols["id"])
    if "ecg_ids" in cols:  # questions: signals by reference, from the source configs
        if data is None:
            raise UserError("rows reference their ECGs (ecg_ids): pass the dataset folder",
                            fix="tokenise_split(ds, encoder, n, data=DATASET)")
        signals = QuestionSignals(data, cols["ecg_ids"])
        fs = signals.fs()
    else:
        signals = ds.select_columns(list(SIGNAL_COLUMNS)).with_format("torch")
        fs = cols.get("fs") or [0] * n
    reports = cols.get("report") or [""] * n
    answers = [assistant_text(m, r) for m, r in zip(cols["messages"], reports, strict=True)]
    return Split(
        ids=list(cols["id"]),
        reports=answers,
        prompts=encoder.encode_prompts(cols["messages"]),
        targets=encoder.encode_reports(answers, max_report_tokens),
        fs=[int(f or 0) for f in fs],
        signals=signals,
        questions=[dict(zip(QUESTION_FIELDS, values, strict=True))
                   for values in zip(*(cols[f] for f in QUESTION_FIELDS), strict=True)]
        if all(f in cols for f in QUESTION_FIELDS) else None,
    )



def assistant_text(messages: Sequence[dict], report: str) -> str:
    """The supervised answer: the assistant turn (the report for the MEIT task)."""
    for m in messages:
        if m["role"] == "assistant":
            return m["content"]
    return report


def expand_prompt(prompt: Sequence[int], ecg_id: int, fusion: str, n_ecg: int) -> list[int]:
    """Replace the one ``<ecg>`` id with ``n_ecg`` slots (prefix) or drop it (kv)."""
    out: list[int] = []
    for t in prompt:
        if t == ecg_id:
            out.extend([ecg_id] * (n_ecg if fusion == "prefix" else 0))
        else:
            out.append(t)
    return out


def training_batch(
    split: Split, index: Sequence[int], encoder, fusion: str, n_ecg: int, target_fs: int | None
) -> dict:
    """Right-padded next-token batch; ``targets`` is -100 on prompt, ECG and padding positions."""
    torch = require_torch()
    seqs, n_prompt = [], []
    for i in index:
        p = expand_prompt(split.prompts[i], encoder.ecg_id, fusion, n_ecg)
        seqs.append(p + split.targets[i])
        n_prompt.append(len(p))
    length = max(len(s) for s in seqs) - 1
    ids = torch.full((len(seqs), length), encoder.pad_id, dtype=torch.long)
    targets = torch.full((len(seqs), length), -100, dtype=torch.long)
    for row, (s, n_p) in enumerate(zip(seqs, n_prompt, strict=True)):
        s = torch.tensor(s, dtype=torch.long)
        ids[row, : len(s) - 1] = s[:-1]
        targets[row, n_p - 1 : len(s) - 1] = s[n_p:]  # predict report tokens and </s> only
    return {"ids": ids, "targets": targets, "signal": split.signal_batch(index, target_fs)}


def prompt_batch(split: Split, index: Sequence[int], encoder, fusion: str, n_ecg: int) -> dict:
    """Left-padded prompts for batched greedy decoding (all rows end at the same position)."""
    torch = require_torch()
    prompts = [expand_prompt(split.prompts[i], encoder.ecg_id, fusion, n_ecg) for i in index]
    length = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), length), encoder.pad_id, dtype=torch.long)
    valid = torch.zeros((len(prompts), length), dtype=torch.bool)
    for row, p in enumerate(prompts):
        ids[row, length - len(p) :] = torch.tensor(p, dtype=torch.long)
        valid[row, length - len(p) :] = True
    return {"ids": ids, "valid": valid}


def batch_index(step: int, n: int, batch_size: int, seed: int) -> np.ndarray:
    """Rows of batch ``step``: epochs are seeded permutations, the last partial batch dropped."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed & 0xFFFFFFFF, epoch]).permutation(n)
    return perm[k * batch_size : (k + 1) * batch_size]
