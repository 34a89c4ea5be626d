"""`torchrun --nproc_per_node 2` (gloo on CPU) trains like one process: same command, same flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

ROOT = Path(__file__).resolve().parents[2]


def _args(out: Path, data: Path, model: Path) -> list[str]:
    return [
        "train-baseline", "--data", str(data), "--out", str(out),
        "--model", str(model), "--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0",
        "--batch-size", "8", "--grad-accum", "2", "--max-steps", "3", "--lr", "3e-3",
        "--warmup-steps", "1", "--eval-interval", "0", "--device", "cpu", "--threads", "1",
        "--no-progress",
    ]  # fmt: skip


def _losses(run: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run / "train_log.jsonl").read_text().splitlines()]


def test_two_processes_match_one(tiny_lm: Path, tiny_dataset: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from ecg_instruct.cli import app

    one_process = CliRunner().invoke(app, _args(tmp_path / "one", tiny_dataset, tiny_lm))
    assert one_process.exit_code == 0, one_process.output
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",  # a free port
                "--nproc_per_node", "2", "-m", "ecg_instruct.cli"]  # fmt: skip
    done = subprocess.run(torchrun + _args(tmp_path / "two", tiny_dataset, tiny_lm), env=env,
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 3
    assert one == pytest.approx(two, rel=1e-4, abs=1e-5)
    assert one[0] != one[-1]  # it trained
    # rank 0 alone wrote the run: one log line per step, one checkpoint
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
