"""Does SmolLM2 read the ECG? The whole measurement, as a user runs it, into docs/training.md.

Runs, each command in a subprocess of its own (wall time, and peak RSS from ``wait4``), each step
skipped when its output is already in ``--work``::

    ecg-instruct sample --out WORK/learnable --records 3000
    ecg-instruct build --raw-dir WORK/learnable --recipe meit-100hz --out WORK/data
    ecg-instruct train-baseline --data WORK/data --config ptbxl --out WORK/smollm2 --model smollm2 --fusion kv
    ecg-instruct evaluate --run WORK/smollm2 --split test --controls
    ecg-instruct train-baseline --data WORK/data --config ptbxl --out WORK/builtin
    ecg-instruct evaluate --run WORK/builtin --split test --controls

(the documented commands with no other flag: the defaults are part of the design), then renders
clinical F1 micro with bootstrap 95 % intervals for the real, zeroed and shuffled ECG, the
paired intervals of (real - shuffled) and (real - zeroed), the majority-report baseline, the
distinct reports, training ECG/s, peak RSS and wall times between the ``<!-- llm-run:start -->``
/ ``<!-- llm-run:end -->`` markers of docs/training.md with ``--write-docs``. No figure in that
section is typed by hand.

    python benchmarks/bench_llm.py --work /tmp/llm [--write-docs]      # `make bench-llm`
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


def cli(*args: str) -> dict:
    """One ecg-instruct command in its own process: wall seconds and peak RSS (GB)."""
    print("$ ecg-instruct " + " ".join(args), flush=True)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "ecg_instruct.cli", *args], cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ecg-instruct {args[0]} failed")
    return {"wall": time.perf_counter() - started, "rss": usage.ru_maxrss / 2**20}  # kB -> GB


def step(times: dict, key: str, done: Path, *args: str) -> None:
    """Run a command unless its output exists (then its earlier measurement, if any, is kept)."""
    if not done.exists():
        times[key] = cli(*args)


def model_row(run: Path, times: dict, key: str) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    controls = {r["condition"]: r for r in json.loads((run / "controls.json").read_text())}
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    described = json.loads((run / "model.json").read_text())
    return {
        "metrics": metrics, "controls": controls, "model": described,
        "run": json.loads((run / "run.json").read_text()),
        # the last step's rate also counts the final validation loss: take the step before
        "ecg_per_s": (log[-2] if len(log) > 1 else log[-1])["examples_per_s"],
        "train": times[f"train-{key}"],
        "evaluate": times[f"evaluate-{key}"],
    }  # fmt: skip


def render(rows: dict[str, dict], times: dict) -> str:
    def f1(row, condition):
        r = row["controls"][condition]
        lo, hi = r["ci95"]["clinical_f1_micro"]
        return f"{r['clinical_f1_micro']:.3f} [{lo:.3f}, {hi:.3f}]"

    def diff(row, condition):
        d = row["controls"][condition]["paired_difference_from_ecg"]["clinical_f1_micro"]
        verdict = "excludes 0" if d["excludes_0"] else "includes 0"
        return f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] ({verdict})"

    labels = {"smollm2": "SmolLM2-135M, `--model smollm2 --fusion kv`",
              "builtin": "built-in model (defaults)"}  # fmt: skip
    names = list(rows)
    head = "| | " + " | ".join(labels[n] for n in names) + " |"
    lines = [head, "|---" * (len(names) + 1) + "|"]

    def add(label, cell):
        lines.append(f"| {label} | " + " | ".join(cell(rows[n]) for n in names) + " |")

    add("clinical F1 micro, real ECG", lambda r: f1(r, "clean"))
    add("zeroed ECG", lambda r: f1(r, "ecg=zeros"))
    add("shuffled ECG", lambda r: f1(r, "ecg=shuffle"))
    add("real - shuffled (paired 95 % CI)", lambda r: diff(r, "ecg=shuffle"))
    add("real - zeroed (paired 95 % CI)", lambda r: diff(r, "ecg=zeros"))
    add("majority report for every record", lambda r: f1(r, "majority report"))
    add("distinct reports (references)", lambda r: f"{r['metrics']['input_use']['distinct_predictions']}"
        f" ({r['metrics']['input_use']['distinct_references']})")
    add("reports changed by shuffling / zeroing",
        lambda r: f"{r['metrics']['input_use']['changed_by_shuffle']} / "
        f"{r['metrics']['input_use']['changed_by_zeros']} of {r['metrics']['n_records']}")
    add("steps x batch (epochs)", lambda r: f"{r['run']['max_steps']} x {r['run']['batch_size']} "
        f"({r['run']['max_steps'] * r['run']['batch_size'] / r['model']['train_records']:.2f})")
    add("training ECG/s (LM stages)", lambda r: f"{r['ecg_per_s']:.2f}")
    add("train wall time / peak RSS",
        lambda r: f"{r['train']['wall'] / 60:.1f} min / {r['train']['rss']:.2f} GB")
    add("evaluate wall time / peak RSS", lambda r: f"{r['evaluate']['wall'] / 60:.1f} min / "
        f"{r['evaluate']['rss']:.2f} GB")  # fmt: skip
    smol = rows.get("smollm2")
    extra = ""
    if smol:
        m = smol["model"]
        stage = m.get("encoder_pretrain") or {}
        extra = (
            f"\nSmolLM2 run: {m['total_params'] / 1e6:.1f} M parameters, {m['trainable_params'] / 1e6:.2f} M "
            f"trainable, {m['ecg_tokens']} ECG tokens; stage 0 (encoder as statement classifier) "
            f"{stage.get('steps', 0)} steps in {stage.get('seconds', 0):.0f} s, statement loss "
            f"{stage.get('first_loss', 0):.3f} → {stage.get('last_loss', 0):.3f}. "
            f"Majority report: \"{smol['metrics']['majority_report']['report']}\"."
        )
    return "\n".join([
        f"`benchmarks/bench_llm.py` (`make bench-llm`): the learnable sample (3,000 records), "
        f"100 Hz build, test split (n = {smol['metrics']['n_records'] if smol else '?'}), the "
        f"documented commands with no other flag, {os.cpu_count()} CPU cores shared with other "
        "work; clinical F1 micro with bootstrap 95 % intervals (1,000 replicates, paired between "
        "conditions); peak RSS of each command's process.",
        "",
        *lines,
    ]) + "\n" + extra


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for sample, data, runs")
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    times_path = work / "bench_llm_times.json"
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    sample, data = work / "learnable", work / "data"
    step(times, "sample", sample / "ptb-xl", "sample", "--out", str(sample), "--records",
         str(args.records))  # fmt: skip
    step(times, "build", data / "README.md", "build", "--raw-dir", str(sample), "--recipe",
         "meit-100hz", "--out", str(data), "--no-progress")  # fmt: skip
    times_path.write_text(json.dumps(times, indent=2))
    rows = {}
    for key, extra in (("smollm2", ["--model", "smollm2", "--fusion", "kv"]), ("builtin", [])):
        run = work / key
        step(times, f"train-{key}", run / "checkpoint.pt", "train-baseline", "--data", str(data),
             "--config", "ptbxl", "--out", str(run), *extra)  # fmt: skip
        times_path.write_text(json.dumps(times, indent=2))
        step(times, f"evaluate-{key}", run / "controls.json", "evaluate", "--run", str(run),
             "--split", "test", "--controls")  # fmt: skip
        times_path.write_text(json.dumps(times, indent=2))
        rows[key] = model_row(run, times, key)
    text = render(rows, times)
    print(text)
    if args.write_docs:
        doc = DOC.read_text()
        head, rest = doc.split(START, 1)
        DOC.write_text(head + START + "\n" + text + "\n" + END + rest.split(END, 1)[1])
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
