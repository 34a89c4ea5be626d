"""Fixtures: a tiny published dataset and one trained run shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_data import small_config, write_tiny_dataset


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP's spinning threads made a tiny
    training step 20x slower (50 ms -> 1 s) whenever other processes were busy."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PTB-XL-like config at 100 Hz (default) and a MIMIC-like one at 500 Hz."""
    return write_tiny_dataset(
        tmp_path_factory.mktemp("tiny"),
        {"train": 64, "validation": 16, "test": 16},
        configs={"ptbxl": 100, "mimic": 500},
    )


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trained run shared by the evaluation tests (trained once per session)."""
    from ecg_instruct.train.trainer import train

    out = tmp_path_factory.mktemp("runs") / "ptbxl"
    train(small_config(tiny_dataset, out, max_steps=150), progress=False)
    return out
