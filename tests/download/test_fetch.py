"""Fetcher details: retry policy, Retry-After, odd Range answers, local disk errors."""

from __future__ import annotations

import email.utils
import errno
import hashlib
import time
from pathlib import Path

import pytest

from ecg_instruct.download import fetch as fetch_mod
from ecg_instruct.download.fetch import (
    FetchConfig,
    Fetcher,
    Unreachable,
    _content_range_start,
    _retry_after,
    _Transient,
    part_path,
)
from ecg_instruct.download.run import download_release
from ecg_instruct.errors import UserError

from .conftest import FAST
from .physionet_server import PhysioNetServer

P = "ptb-xl/1.0.3/"
HR1 = "records500/00000/00001_hr.dat"


def test_retry_after_parsing() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < _retry_after(later) <= 30


def test_content_range_start() -> None:
    assert _content_range_start("bytes 100-199/200") == 100
    assert _content_range_start("bytes */200") is None
    assert _content_range_start(None) is None


def test_retry_after_is_honoured_but_capped() -> None:
    waits: list[float] = []
    fetcher = Fetcher(FetchConfig(backoff=0.001, max_backoff=20))
    fetcher.stop.wait = lambda delay: waits.append(delay) or False  # type: ignore[method-assign]
    fetcher._sleep(0, 7.0)
    fetcher._sleep(0, 3600.0)
    assert waits == [7.0, 20]


def test_unreachable_first_request_gives_up_after_two_connect_retries() -> None:
    calls = []
    fetcher = Fetcher(FetchConfig(retries=5, backoff=0.0001))

    def refuse(url: str, headers: dict) -> None:
        calls.append(url)
        raise _Transient("Connection refused", connect=True)

    fetcher._get = refuse  # type: ignore[method-assign]
    with pytest.raises(Unreachable, match="Connection refused"):
        fetcher.get_bytes("http://127.0.0.1:9/SHA256SUMS.txt")
    assert len(calls) == 3


def test_server_resuming_at_the_wrong_offset_restarts_the_file(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, tmp_path: Path
) -> None:
    data = (mirror / P / HR1).read_bytes()
    dest = tmp_path / "f.dat"
    part_path(dest).write_bytes(data[:1000])
    server.add_fault(P + HR1, "wrong_range")
    result = Fetcher(FAST).fetch(ptbxl_url + HR1, dest, hashlib.sha256(data).hexdigest(), HR1)
    assert result.status == "fetched" and dest.read_bytes() == data
    assert [s for _, s in server.requests_for(P + HR1)] == [206, 200]
    assert result.nbytes == len(data)  # the misplaced 206 body was never appended


def test_full_disk_stops_the_whole_run_with_one_line(
    monkeypatch: pytest.MonkeyPatch, ptbxl_url: str, tmp_path: Path
) -> None:
    real = fetch_mod.Fetcher._download_once

    def full_disk(self, url, part, counter):
        if part.name.endswith(".dat.part"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, url, part, counter)

    monkeypatch.setattr(fetch_mod.Fetcher, "_download_once", full_disk)
    with pytest.raises(UserError, match="no space left on device — free space"):
        download_release("ptbxl", tmp_path / "raw", base_url=ptbxl_url, progress=False,
                         config=FAST)
