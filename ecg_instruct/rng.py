"""Seeded randomness keyed by content, so results never depend on record order or worker count."""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(*keys: object) -> int:
    """A 64-bit hash of the keys that is identical across processes and Python versions."""
    digest = hashlib.blake2b("\x1f".join(map(str, keys)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def stable_hashes(prefix: tuple[object, ...], last: list[object]) -> list[int]:
    """`[stable_hash(*prefix, x) for x in last]`, hashing the shared prefix once: the
    template draw ranks every template of a task per record with it (~1 us instead of ~2.5 us
    a template)."""
    head = "".join(f"{key}\x1f" for key in prefix)  # the separator after each prefix key
    base = hashlib.blake2b(head.encode("utf-8"), digest_size=8)
    out = []
    for key in last:
        digest = base.copy()
        digest.update(str(key).encode("utf-8"))
        out.append(int.from_bytes(digest.digest(), "little"))
    return out


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """A generator for one (seed, record, purpose) combination."""
    return np.random.default_rng([seed & 0xFFFFFFFF, stable_hash(*keys)])
