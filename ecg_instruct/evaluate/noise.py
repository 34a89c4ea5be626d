"""Signal corruptions for the robustness table, seeded per record so every run sees the same noise.

- ``meit:L`` (MEIT's protocol): one random contiguous stretch covering 5-20 % of the record (the
  same stretch in all 12 leads) is replaced by ``L * x + (1 - L) * e``, with ``e`` Gaussian noise
  whose standard deviation is that lead's own standard deviation over the whole record. ``L`` is
  the share of clean signal: 1.0 is clean, 0.80 the strongest level in the paper.
- ``snr:D``: additive white Gaussian noise over the whole record at D dB SNR per lead
  (noise power = mean-removed signal power / 10^(D/10)).

An ECG-QA question shows one or two ECGs: each is corrupted on its own, seeded by its own record
id (`Noise.apply_to_ecgs`), so an ECG gets the same noise in every question that shows it, and
the same as its record in a report evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecg_instruct.errors import UserError
from ecg_instruct.rng import rng_for

MEIT_LEVELS = (1.0, 0.95, 0.90, 0.85, 0.80)
SNR_LEVELS_DB = (20.0, 10.0, 5.0, 0.0)


@dataclass(frozen=True)
class Noise:
    kind: str  # "clean", "meit" or "snr"
    level: float = 1.0

    @property
    def label(self) -> str:
        if self.kind == "clean":
            return "clean"
        return f"meit:{self.level:.2f}" if self.kind == "meit" else f"snr:{self.level:g}dB"

    def apply(self, x: np.ndarray, record_id: str, seed: int) -> np.ndarray:
        """Corrupted copy of one (12, n) record."""
        if self.kind == "clean" or (self.kind == "meit" and self.level >= 1.0):
            return x
        rng = rng_for(seed, record_id, self.label)
        x = np.asarray(x, dtype=np.float32)
        if self.kind == "meit":
            n = x.shape[-1]
            length = max(1, int(round(n * rng.uniform(0.05, 0.20))))
            start = int(rng.integers(0, n - length + 1))
            sd = x.std(axis=-1, keepdims=True)
            e = rng.standard_normal((x.shape[0], length)).astype(np.float32) * sd
            y = x.copy()
            seg = y[:, start : start + length]
            y[:, start : start + length] = self.level * seg + (1 - self.level) * e
            return y
        power = x.var(axis=-1, keepdims=True)
        sd = np.sqrt(power / 10 ** (self.level / 10))
        return (x + rng.standard_normal(x.shape).astype(np.float32) * sd).astype(np.float32)


    def apply_to_ecgs(self, x: np.ndarray, record_ids: Sequence[str], seed: int) -> np.ndarray:
        """One evaluation row: a (12, n) record, or a question's (k, 12, n) ECGs named by
        `record_ids` in order (slots past them are absent ECGs, all NaN, left as they are);
        each ECG as `apply` corrupts it under its own record id."""
        if x.ndim == 2:
            return self.apply(x, record_ids[0], seed)
        out = np.array(x, dtype=np.float32)
        for k, record_id in enumerate(record_ids):
            out[k] = self.apply(out[k], record_id, seed)
        return out


def default_sweep() -> list[Noise]:
    """Clean, the four MEIT levels, then the SNR ladder."""
    return [Noise("clean")] + [Noise("meit", lv) for lv in MEIT_LEVELS[1:]] + [
        Noise("snr", db) for db in SNR_LEVELS_DB
    ]


def parse_noise(spec: str) -> list[Noise]:
    """``default`` or a comma list like ``meit:0.9,snr:10``."""
    if spec.strip() == "default":
        return default_sweep()
    out = [Noise("clean")]
    for part in spec.split(","):
        kind, _, value = part.strip().partition(":")
        try:
            level = float(value)
        except ValueError:
            level = float("nan")
        if kind not in ("meit", "snr") or level != level:
            raise UserError(
                f"bad noise spec {part!r}", fix="use e.g. 'meit:0.9,snr:10' or 'default'"
            )
        if kind == "meit" and not 0.0 <= level <= 1.0:
            raise UserError(f"MEIT level {level} outside [0, 1] (share of clean signal)")
        out.append(Noise(kind, level))
    return out
