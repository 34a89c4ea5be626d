"""One canonical 12-lead order, whatever the source's order or capitalisation.

PTB-XL writes ``AVR, AVL, AVF``; MIMIC-IV-ECG writes ``aVR, aVF, aVL`` (aVF before aVL). A model
trained on a mix must see lead k mean the same thing in every row, so every signal is reordered
to :data:`CANONICAL_LEADS` before anything else looks at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ecg_instruct.errors import RecordReject

CANONICAL_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)

_KEY_TO_POSITION = {name.casefold(): i for i, name in enumerate(CANONICAL_LEADS)}


def normalise_lead_name(name: str) -> str | None:
    """The canonical spelling of ``name`` (``"AVR"`` -> ``"aVR"``), or None if not a 12-lead name.

    Case and surrounding/embedded blanks are ignored (``"v 1"`` and ``" V1 "`` are V1); anything
    else (``"-aVR"``, ``"MLII"``, ``"vx"``) is not one of the twelve.
    """
    pos = _KEY_TO_POSITION.get("".join(name.split()).casefold())
    return None if pos is None else CANONICAL_LEADS[pos]


def canonical_lead_index(sig_names: Sequence[str]) -> np.ndarray:
    """Indices that reorder signals named ``sig_names`` into :data:`CANONICAL_LEADS` order.

    ``signal[canonical_lead_index(names)]`` is the canonical ``(12, n)`` signal. Extra signals
    (e.g. Frank leads in a 15-lead record) are dropped. Raises ``RecordReject("missing_lead")``
    when one of the twelve is absent and ``RecordReject("duplicate_lead")`` when two signals
    normalise to the same lead, because picking either would be a silent guess.
    """
    return _lead_index(tuple(sig_names))


@lru_cache(maxsize=256)
def _lead_index(sig_names: tuple[str, ...]) -> np.ndarray:
    """:func:`canonical_lead_index`, memoised: an archive has a handful of lead layouts and the
    signal stage asks once per record. The result is read-only (it is shared)."""
    index = np.full(len(CANONICAL_LEADS), -1, dtype=np.intp)
    for i, name in enumerate(sig_names):
        pos = _KEY_TO_POSITION.get("".join(name.split()).casefold())
        if pos is None:
            continue
        if index[pos] >= 0:
            raise RecordReject("duplicate_lead",
                               f"lead {CANONICAL_LEADS[pos]} appears twice "
                               f"({sig_names[index[pos]]!r} and {name!r})")
        index[pos] = i
    missing = [CANONICAL_LEADS[p] for p in np.flatnonzero(index < 0)]
    if missing:
        raise RecordReject("missing_lead",
                           f"no signal for lead(s) {', '.join(missing)} among {list(sig_names)}")
    index.setflags(write=False)
    return index


def to_canonical(signal: np.ndarray, sig_names: Sequence[str]) -> np.ndarray:
    """``signal`` (n_sig, n) reordered to the canonical 12 leads (a new contiguous array)."""
    return signal[canonical_lead_index(sig_names)]
