"""What a figure shows: one record's signal plus the text a reader needs to judge it.

Kept apart from the drawing code so that the published dataset, a raw WFDB record and a
rejected record all become the same :class:`EcgView`, and the renderer knows nothing about
where a record came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ecg_instruct.signals.leads import CANONICAL_LEADS


@dataclass(frozen=True)
class Mark:
    """A stretch of one lead that a quality check objected to (drawn as a shaded box)."""

    lead: int  # index into the view's leads
    start_s: float
    end_s: float
    what: str  # short caption, e.g. "NaN run 0.12 s"


@dataclass
class EcgView:
    """One 12-lead record in millivolts, ready to draw.

    ``signal`` is ``(12, n)`` in :data:`CANONICAL_LEADS` order (NaN where samples are missing).
    ``reject`` is ``(stage, reason, detail)`` for a record the build rejected; ``marks`` are the
    offending stretches to highlight; ``origin`` says where the record was read from.
    """

    id: str
    signal: np.ndarray
    fs: float
    report: str = ""
    labels: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    origin: str = ""
    reject: tuple[str, str, str] | None = None
    marks: list[Mark] = field(default_factory=list)
    leads: tuple[str, ...] = CANONICAL_LEADS

    def __post_init__(self) -> None:
        self.signal = np.asarray(self.signal, dtype=np.float64)
        if self.signal.ndim != 2 or self.signal.shape[0] != len(self.leads):
            raise ValueError(f"{self.id}: expected a ({len(self.leads)}, n) signal, "
                             f"got shape {self.signal.shape}")

    @property
    def duration_s(self) -> float:
        return self.signal.shape[1] / self.fs

    def offending_lead(self) -> int | None:
        """The lead a reject's detail names first (``"V1: std 3.0 µV ..."``), if any."""
        if self.reject is None:
            return None
        detail = self.reject[2]
        head = detail.split(":", 1)[0].strip()
        return self.leads.index(head) if head in self.leads else None
