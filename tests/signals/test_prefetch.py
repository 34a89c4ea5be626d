"""Read-ahead of the records a shard needs next: never blocks, never fails, changes nothing."""

from __future__ import annotations

import os
import threading

import pytest

from ecg_instruct.signals.prefetch import prefetch


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_prefetch_returns_for_missing_odd_and_fifo_files(tmp_path):
    """A `.dat` that is a FIFO would block a plain open until a writer came: the worker, and
    the build, would hang. The reader names such files (`missing_file`); prefetch must only
    get out of the way."""
    (tmp_path / "dir.dat").mkdir()
    (tmp_path / "ok.hea").write_text("ok 12 500 5000\n")
    (tmp_path / "ok.dat").write_bytes(b"\0" * 1200)
    os.mkfifo(tmp_path / "fifo.dat")
    done = threading.Event()

    def run() -> None:
        for name in ("missing", "dir", "ok", "fifo"):
            prefetch(str(tmp_path / name))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(5), "prefetch blocked"
    assert (tmp_path / "ok.dat").read_bytes() == b"\0" * 1200
