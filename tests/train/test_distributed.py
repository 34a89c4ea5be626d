"""`torchrun --nproc_per_node 2` and `accelerate launch --num_processes 2` (gloo on CPU) train like
one process: same command, same flags."""

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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launcher(name: str) -> list[str]:
    """The same two-process launch through torchrun or accelerate (whose multi-process
    launcher is torchrun's: on a machine without GPUs the script picks gloo on CPU)."""
    if name == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",  # a free port
                "--nproc_per_node", "2", "-m", "ecg_instruct.cli"]  # fmt: skip
    pytest.importorskip("accelerate")
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
            "-m", "ecg_instruct.cli"]  # fmt: skip


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_match_one(tiny_lm: Path, tiny_dataset: Path, tmp_path: Path, launcher: str):
    from typer.testing import CliRunner

    from ecg_instruct.cli import app

    one_process = CliRunner().invoke(app, _args(tmp_path / "one", tiny_dataset, tiny_lm))
    assert one_process.exit_code == 0, one_process.output
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(_launcher(launcher) + _args(tmp_path / "two", tiny_dataset, tiny_lm), env=env,
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "; 2 processes (data parallel)" in done.stderr  # the launcher really started two
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 3
    assert one == pytest.approx(two, rel=1e-4, abs=1e-5)
    assert one[0] != one[-1]  # it trained
    # rank 0 alone wrote the run: one log line per step, one checkpoint
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
