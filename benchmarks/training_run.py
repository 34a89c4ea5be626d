"""One measured run of the built-in model on a learnable sample, written into docs/training.md.

Runs, with the CLI's default flags (each step skipped when its output is already there):

    ecg-instruct sample --records N --mimic-records M --out WORK/sample
    ecg-instruct build --raw-dir WORK/sample --out WORK/meit --recipe meit-100hz
    ecg-instruct train-baseline --data WORK/meit --config ptbxl --out WORK/run [--max-steps S]
    ecg-instruct evaluate --run WORK/run --split test --controls --noise default

then renders the training log, metrics.json, controls.md and robustness.md of that run, with the
wall time of every step, between the ``<!-- training-run:start -->`` and ``<!-- training-run:end
-->`` markers of docs/training.md. No figure in that section is typed by hand.

    .venv/bin/python benchmarks/training_run.py --work /tmp/measure [--records 3000] [--write-docs]

``--quickstart`` instead times the Quick start of docs/training.md exactly as written there (the
default small sample, default flags) and writes the measured minutes into its heading.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "training.md"
START, END = "<!-- training-run:start -->", "<!-- training-run:end -->"
QS_START, QS_END = "<!-- quickstart:start -->", "<!-- quickstart:end -->"


def cli(*args: str) -> float:
    """Run one ecg-instruct command (this interpreter, this checkout); returns its wall time."""
    t0 = time.perf_counter()
    print("$ ecg-instruct " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "ecg_instruct.cli", *args], check=True)
    return time.perf_counter() - t0


def run_steps(work: Path, records: int, mimic_records: int, max_steps: int | None) -> dict:
    times: dict = json.loads((work / "times.json").read_text()) if (work / "times.json").exists() else {}
    sample, data, run = work / "sample", work / "meit", work / "run"
    if "sample" not in times:
        times["sample"] = cli("sample", "--out", str(sample), "--records", str(records),
                              "--mimic-records", str(mimic_records))  # fmt: skip
    if "build" not in times:
        times["build"] = cli("build", "--raw-dir", str(sample), "--out", str(data),
                             "--recipe", "meit-100hz")  # fmt: skip
    if "train" not in times:
        from ecg_instruct.train.trainer import available_cores

        times["threads"] = available_cores()  # what the default --threads 0 picks right now
        times["load_before_train"] = os.getloadavg()[0]
        extra = [] if max_steps is None else ["--max-steps", str(max_steps)]
        times["train"] = cli("train-baseline", "--data", str(data), "--config", "ptbxl",
                             "--out", str(run), "--no-progress", *extra)  # fmt: skip
    if "evaluate" not in times:
        times["evaluate"] = cli("evaluate", "--run", str(run), "--split", "test", "--controls",
                                "--noise", "default", "--no-progress")  # fmt: skip
    if "threads_check" not in times:
        times["threads_check"] = threads_check(data, work)
    (work / "times.json").write_text(json.dumps(times, indent=2))
    return times


def threads_check(data: Path, work: Path, steps: int = 30) -> dict:
    """ECG/s of a short training with 1 thread and with one per core (torch's own default)."""
    out = {}
    for n in sorted({1, os.cpu_count() or 1}):
        run = work / f"threads-{n}"
        load = os.getloadavg()[0]
        cli("train-baseline", "--data", str(data), "--config", "ptbxl", "--out", str(run),
            "--max-steps", str(steps), "--eval-interval", "0", "--threads", str(n),
            "--no-progress")  # fmt: skip
        log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
        speeds = sorted(r["examples_per_s"] for r in log if r.get("examples_per_s"))
        out[str(n)] = {"ecg_per_s": speeds[len(speeds) // 2], "load": load}
    return out


def split_sizes(data: Path) -> dict:
    import pyarrow.parquet as pq

    sizes = {}
    for split in ("train", "validation", "test"):
        files = sorted((data / "data" / "ptbxl").glob(f"{split}-*.parquet"))
        sizes[split] = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return sizes


def changed_predictions(run: Path) -> str:
    import pyarrow.parquet as pq

    rows = pq.read_table(run / "predictions.parquet").to_pylist()
    clean = {r["id"]: r["prediction"] for r in rows if r["condition"] == "clean"}
    counts: dict[str, int] = {}
    for r in rows:
        if r["condition"] != "clean":
            counts[r["condition"]] = counts.get(r["condition"], 0) + (r["prediction"] != clean[r["id"]])
    return ", ".join(f"{c} {n} of {len(clean)}" for c, n in counts.items())


def rejects(data: Path) -> str:
    import pandas as pd

    table = pd.read_parquet(data / "rejects.parquet")
    counts = table[table["source"] == "ptbxl"]["reason"].value_counts()
    return ", ".join(f"{reason} {n}" for reason, n in counts.items()) or "none"


def render(work: Path, times: dict) -> str:
    run = work / "run"
    cfg = json.loads((run / "run.json").read_text())
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r and "step" in r]
    val = [r for r in log if r.get("val_loss") is not None]
    metrics = json.loads((run / "metrics.json").read_text())
    controls = {r["condition"]: r for r in json.loads((run / "controls.json").read_text())}
    sizes = split_sizes(work / "meit")
    loss_at = {s: next((r["loss"] for r in steps if r["step"] == s), None) for s in (1, 50, 100)}
    speeds = [r["examples_per_s"] for r in steps if r.get("examples_per_s")]
    clean, shuffle = controls["clean"], controls["ecg=shuffle"]
    c_ci, s_ci = clean["ci95"]["clinical_f1_micro"], shuffle["ci95"]["clinical_f1_micro"]
    separated = c_ci[0] > s_ci[1]
    total = sum(times[k] for k in ("sample", "build", "train", "evaluate"))
    lines = [
        START,
        f"Measured by `benchmarks/training_run.py` on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, shared: 1-minute load {times['load_before_train']:.1f} before "
        f"training; default `--threads 0` picked {times['threads']} thread(s)). Synthetic sample "
        f"from `ecg-instruct sample --records ...`: reports follow from the signals; PTB-XL config "
        f"at 100 Hz, {sizes['train']} train / {sizes['validation']} validation / {sizes['test']} "
        f"test records. NOT real data.",
        "",
        f"Build rejects (PTB-XL, by reason): {rejects(work / 'meit')}.",
        "",
        "| step | wall (s) |",
        "|---|---:|",
        *[f"| {k} | {times[k]:.0f} |" for k in ("sample", "build", "train", "evaluate")],
        f"| total | {total:.0f} |",
        "",
        f"Training: {cfg['max_steps']} steps, batch {cfg['batch_size']}, seed {cfg['seed']}, "
        f"fusion `{cfg['model']['fusion']}`; loss step 1 / 50 / 100 / {steps[-1]['step']}: "
        + " / ".join("-" if loss_at[s] is None else f"{loss_at[s]:.3f}" for s in (1, 50, 100))
        + f" / {steps[-1]['loss']:.3f}; validation loss "
        + (f"{val[-1]['val_loss']:.3f} at step {val[-1]['step']}" if val else "not logged")
        + (f"; median {sorted(speeds)[len(speeds) // 2]:.0f} ECG/s." if speeds else "."),
        "",
        "Threads (30 steps each, same data, median ECG/s at the 1-minute load shown): "
        + ", ".join(f"`--threads {n}` {v['ecg_per_s']:.0f} ECG/s (load {v['load']:.1f})"
                    for n, v in times.get("threads_check", {}).items()) + ".",
        "",
        f"Test split ({metrics['n_records']} records), text-only controls "
        "(`evaluate --controls`; values with bootstrap 95 % intervals over records, "
        f"{metrics['bootstrap']['replicates']} replicates, seed {metrics['bootstrap']['seed']}):",
        "",
        (run / "controls.md").read_text().strip(),
        "",
        f"Clinical F1 (micro) with the real ECG {clean['clinical_f1_micro']:.3f} "
        f"[{c_ci[0]:.3f}, {c_ci[1]:.3f}] vs shuffled ECG {shuffle['clinical_f1_micro']:.3f} "
        f"[{s_ci[0]:.3f}, {s_ci[1]:.3f}]: "
        + ("the intervals do not overlap." if separated else "the intervals OVERLAP."),
        "",
        "Noise sweep (`--noise default`):",
        "",
        (run / "robustness.md").read_text().strip(),
        "",
        f"Test predictions that differ from the clean ones: {changed_predictions(run)}.",
        END,
    ]
    return "\n".join(lines)


def quickstart(work: Path) -> str:
    """Time the Quick start commands (docs/training.md) in ``work``; returns the heading text."""
    sample, data, run = work / "qs-sample", work / "qs-meit", work / "qs-run"
    t0 = time.perf_counter()
    cli("sample", "--out", str(sample))
    cli("build", "--raw-dir", str(sample), "--out", str(data))
    cli("train-baseline", "--data", str(data), "--config", "ptbxl", "--out", str(run),
        "--max-steps", "300", "--no-progress")  # fmt: skip
    cli("evaluate", "--run", str(run), "--split", "test", "--controls", "--noise", "default",
        "--no-progress")  # fmt: skip
    cli("evaluate", "--run", str(run), "--split", "test", "--eval-config", "mimic", "--no-progress")
    minutes = (time.perf_counter() - t0) / 60
    load = os.getloadavg()[0]
    return (f"about {max(1, round(minutes))} minutes on {os.cpu_count()} CPU cores, measured "
            f"at 1-minute load {load:.1f}")  # fmt: skip


def _replace(text: str, start: str, end: str, new: str) -> str:
    head, found, rest = text.partition(start)
    if not found:
        raise SystemExit(f"{DOC}: marker {start} missing")
    _, _, tail = rest.partition(end)
    return head + start + new + end + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="Folder for data, build and run.")
    parser.add_argument("--records", type=int, default=3000, help="PTB-XL records in the sample.")
    parser.add_argument("--mimic-records", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=None, help="Default: the CLI default.")
    parser.add_argument("--write-docs", action="store_true", help="Update docs/training.md.")
    parser.add_argument("--quickstart", action="store_true", help="Time the Quick start instead.")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.quickstart:
        heading = quickstart(args.work)
        print(heading)
        if args.write_docs:
            DOC.write_text(_replace(DOC.read_text(), QS_START, QS_END, heading))
            print(f"updated {DOC}")
        return
    times = run_steps(args.work, args.records, args.mimic_records, args.max_steps)
    section = render(args.work, times)
    print(section)
    if args.write_docs:
        inner = section.removeprefix(START).removesuffix(END)
        DOC.write_text(_replace(DOC.read_text(), START, END, inner))
        print(f"updated {DOC}")


if __name__ == "__main__":
    main()
