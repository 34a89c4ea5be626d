"""How the sharded stages (reports, signals) cut the index into their units of work."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def shards(
    index: pd.DataFrame, shard_size: int, columns: Sequence[str] = ("id", "source", "path"),
) -> list[tuple[str, pd.DataFrame]]:
    """Deterministic shards: per (source, split), in id order, `shard_size` records each.

    Frames (a few columns), not dicts: a stage turns a shard into records only when its task is
    queued, so this process never holds every record as a dict."""
    found = []
    for (source, split), group in index.groupby(["source", "split"], sort=True):
        group = group.sort_values("id")[list(columns)]
        for number, start in enumerate(range(0, len(group), shard_size)):
            found.append((f"{source}-{split}-{number:05d}", group.iloc[start:start + shard_size]))
    return found
