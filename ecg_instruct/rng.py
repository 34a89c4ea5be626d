"""Seeded randomness keyed by content, so results never depend on record order or worker count."""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(*keys: object) -> int:
    """A 64-bit hash of the keys that is identical across processes and Python versions."""
    digest = hashlib.blake2b("\x1f".join(map(str, keys)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """A generator for one (seed, record, purpose) combination."""
    return np.random.default_rng([seed & 0xFFFFFFFF, stable_hash(*keys)])
