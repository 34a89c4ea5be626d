"""Every source's lead order and spelling maps to one canonical order."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_instruct.errors import RecordReject
from ecg_instruct.signals.leads import (
    CANONICAL_LEADS,
    canonical_lead_index,
    normalise_lead_name,
    to_canonical,
)


def test_ptbxl_and_mimic_orders_map_to_canonical(sig):
    for names in (sig.PTBXL_NAMES, sig.MIMIC_NAMES):
        x = np.arange(12)[:, None] * np.ones((12, 3))  # row i holds i
        out = to_canonical(x, names)
        got = [names[int(v)] for v in out[:, 0]]
        assert [normalise_lead_name(n) for n in got] == list(CANONICAL_LEADS)
    # MIMIC stores aVF (index 4) before aVL (index 5): canonical aVL comes from index 5
    assert canonical_lead_index(sig.MIMIC_NAMES)[3:6].tolist() == [3, 5, 4]
    assert canonical_lead_index(sig.PTBXL_NAMES).tolist() == list(range(12))


def test_order_and_case_do_not_matter():
    rng = np.random.default_rng(0)
    perm = rng.permutation(12)
    names = [CANONICAL_LEADS[i].upper() if i % 2 else CANONICAL_LEADS[i].lower() for i in perm]
    idx = canonical_lead_index(names)
    assert [perm[i] for i in idx] == list(range(12))


def test_extra_leads_are_dropped():
    names = ["vx", *CANONICAL_LEADS, "vy"]
    assert canonical_lead_index(names).tolist() == list(range(1, 13))


def test_normalise_lead_name():
    assert normalise_lead_name("AVR") == "aVR"
    assert normalise_lead_name(" v 1 ") == "V1"
    assert normalise_lead_name("-aVR") is None
    assert normalise_lead_name("MLII") is None


def test_missing_lead_is_a_reject():
    names = [n for n in CANONICAL_LEADS if n != "V4"]
    with pytest.raises(RecordReject) as exc:
        canonical_lead_index(names)
    assert exc.value.reason == "missing_lead" and "V4" in exc.value.detail


def test_duplicate_lead_is_a_reject():
    names = list(CANONICAL_LEADS[:11]) + ["avr"]
    with pytest.raises(RecordReject) as exc:
        canonical_lead_index(names)
    assert exc.value.reason == "duplicate_lead" and "aVR" in exc.value.detail
