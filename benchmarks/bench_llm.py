"""SmolLM2 + MEIT kv fusion on CPU: peak memory, speed, losses and checkpoint sizes.

Builds the default synthetic sample (as ``make dataset`` does), then runs as a user would::

    ecg-instruct train-baseline --data WORK/meit --config ptbxl --out WORK/run --model smollm2 \\
        --fusion kv --max-steps STEPS --threads 1
    (the same with --gradient-checkpointing, GC_STEPS steps)
    ecg-instruct evaluate --run WORK/run --split test

each in a subprocess of its own (peak RSS from ``wait4``), and renders the measured table between
the ``<!-- llm-run:start -->`` / ``<!-- llm-run:end -->`` markers of docs/training.md with
``--write-docs``. No figure in that section is typed by hand.

    .venv/bin/python benchmarks/bench_llm.py --work /tmp/llm [--steps 20] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "training.md"
START, END = "<!-- llm-run:start -->", "<!-- llm-run:end -->"


def cli(*args: str) -> tuple[float, float]:
    """One ecg-instruct command in its own process: (wall seconds, peak RSS in GB)."""
    print("$ ecg-instruct " + " ".join(args), flush=True)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "ecg_instruct.cli", *args], cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ecg-instruct {args[0]} failed")
    return time.perf_counter() - started, usage.ru_maxrss / 2**20  # kB -> GB


def train(work: Path, name: str, steps: int, *extra: str) -> dict:
    run = work / name
    wall, rss = cli("train-baseline", "--data", str(work / "meit"), "--config", "ptbxl",
                    "--out", str(run), "--model", "smollm2", "--fusion", "kv",
                    "--max-steps", str(steps), "--threads", "1", "--no-progress", *extra)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    speeds = [row["examples_per_s"] for row in log if "examples_per_s" in row]
    return {"run": run, "wall": wall, "rss": rss, "steps": steps, "first": log[0]["loss"],
            "last": log[-1]["loss"], "val": next((r["val_loss"] for r in reversed(log)
                                                   if r.get("val_loss") is not None), None),
            "ecg_per_s": speeds[-1] if speeds else None,
            "model": json.loads((run / "model.json").read_text())}


def render(plain: dict, checkpointed: dict, evaluation: tuple[float, float]) -> str:
    def row(label: str, r: dict) -> str:
        val = f" (val {r['val']:.2f})" if r["val"] is not None else ""
        return (f"| {label} | {r['rss']:.1f} GB | {r['ecg_per_s']:.2f} | {r['wall'] / r['steps']:.0f}"
                f" | {r['first']:.2f} → {r['last']:.2f} at step {r['steps']}{val} |")

    size = lambda path: f"{path.stat().st_size / 2**20:.0f} MB"  # noqa: E731
    m = plain["model"]
    return "\n".join([
        f"`benchmarks/bench_llm.py --steps {plain['steps']}` on the default synthetic sample build "
        f"(PTB-XL train split), batch 16, fp32, LoRA r=64, `--threads 1`, {os.cpu_count()} cores; "
        f"{m['total_params'] / 1e6:.1f} M parameters, {m['trainable_params'] / 1e6:.2f} M trainable; "
        "peak RSS of each command's process:",
        "",
        "| setting | peak RSS | ECG/s | s/step | loss |",
        "|---|---|---|---|---|",
        row("default (no checkpointing)", plain),
        row("`--gradient-checkpointing`", checkpointed),
        "",
        "| artefact | size |",
        "|---|---|",
        f"| `checkpoint.pt` (LoRA + encoder + gates + new token rows, fp32; no base weights) "
        f"| {size(plain['run'] / 'checkpoint.pt')} |",
        f"| `optimizer.pt` (AdamW moments, only for `--resume`) | {size(plain['run'] / 'optimizer.pt')} |",
        "",
        f"`ecg-instruct evaluate --run RUN --split test`: {evaluation[0]:.0f} s, peak RSS "
        f"{evaluation[1]:.1f} GB. Estimate printed at start: {m['estimated_memory_gb']:.2f} GB for "
        "weights + training state; the rest of the peak is activations.",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for sample, data, runs")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--gc-steps", type=int, default=3,
                        help="steps of the --gradient-checkpointing run")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    if not (work / "meit" / "README.md").exists():
        cli("build", "--raw-dir", str(work / "raw"), "--out", str(work / "meit"),
            "--sample-fallback", str(work / "sample"), "--no-progress")
    plain = train(work, "run", args.steps)
    checkpointed = train(work, "run-gc", args.gc_steps, "--gradient-checkpointing")
    evaluation = cli("evaluate", "--run", str(plain["run"]), "--split", "test")
    text = render(plain, checkpointed, evaluation)
    print(text)
    if args.write_docs:
        doc = DOC.read_text()
        head, rest = doc.split(START, 1)
        DOC.write_text(head + START + "\n" + text + "\n" + END + rest.split(END, 1)[1])
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
