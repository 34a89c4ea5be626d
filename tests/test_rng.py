"""Seeded, content-keyed hashing: the same numbers in every process and Python version."""

from __future__ import annotations

from ecg_instruct.rng import stable_hash, stable_hashes


def test_stable_hashes_equal_stable_hash_of_the_whole_key() -> None:
    """The template draw hashes a record's shared prefix once: every value must still be the
    `stable_hash` of the whole key, or a build would pick other templates than before."""
    prefix = (0, "ptbxl/00001", "report")
    last = ["report/plain", "report/ärztlich", 7, ""]
    assert stable_hashes(prefix, last) == [stable_hash(*prefix, key) for key in last]
    assert stable_hashes((), ["a", 1]) == [stable_hash("a"), stable_hash(1)]
    # pinned: published datasets (which template a record got) depend on these numbers
    assert stable_hashes((0, "ptbxl/00001", "report"), ["report/plain"]) == [4600686352297114032]
