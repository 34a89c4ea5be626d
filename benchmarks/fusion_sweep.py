"""Side by side, on one budget: which recipe makes SmolLM2 read the ECG (docs/training.md).

Each variant is ``train-baseline --model smollm2`` with the defaults plus a few flags, trained for
the same ``--steps`` on the same build, then ``evaluate --split validation --limit N --controls``
(clinical F1 only: ``--meteor none``). Per variant the table gives clinical F1 micro with the
real, zeroed and shuffled ECG, the paired 95 % interval of (real - shuffled) and (real - zeroed),
the majority-report baseline, distinct reports, reports changed by shuffling, and the train
wall time. Finished variants are reused (their run folder is kept), so the sweep can be
extended one variant at a time. ``--write-docs`` puts the table between the
``<!-- fusion-sweep:start -->`` / ``<!-- fusion-sweep:end -->`` markers of docs/training.md.

    python benchmarks/fusion_sweep.py --data /tmp/llm/data --work /tmp/llm/sweep --steps 40 \\
        --variant recipe= --variant "no encoder stage=--encoder-pretrain-steps 0" [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "training.md"
START, END = "<!-- fusion-sweep:start -->", "<!-- fusion-sweep:end -->"


def cli(*args: str) -> float:
    print("$ ecg-instruct " + " ".join(args), flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ecg_instruct.cli", *args], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def run_variant(args, name: str, flags: list[str]) -> dict:
    run = args.work / slug(name)
    result_path = run / "sweep.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    train_s = cli("train-baseline", "--data", str(args.data), "--config", "ptbxl",
                  "--out", str(run), "--model", "smollm2", "--max-steps", str(args.steps),
                  "--eval-interval", "0", "--no-progress", *args.common, *flags)  # fmt: skip
    eval_dir = run / "eval-val"
    cli("evaluate", "--run", str(run), "--split", "validation", "--limit", str(args.limit),
        "--controls", "--meteor", "none", "--bootstrap", "500", "--out-dir", str(eval_dir),
        "--max-new-tokens", "48", "--no-progress")  # fmt: skip
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    controls = json.loads((eval_dir / "controls.json").read_text())
    by = {row["condition"]: row for row in controls}
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    out = {
        "name": name, "flags": " ".join(flags), "steps": args.steps, "train_s": train_s,
        "ecg_per_s": log[-1]["examples_per_s"], "last_loss": log[-1]["loss"],
        "f1": {c: (by[c]["clinical_f1_micro"], by[c]["ci95"]["clinical_f1_micro"]) for c in by},
        "diff": {c: by[c]["paired_difference_from_ecg"]["clinical_f1_micro"]
                 for c in ("ecg=zeros", "ecg=shuffle")},
        "input_use": metrics["input_use"],
    }  # fmt: skip
    result_path.write_text(json.dumps(out, indent=2))
    return out


def render(results: list[dict], args) -> str:
    def f1(r, c):
        value, ci = r["f1"][c]
        return f"{value:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"

    def diff(r, c):
        d = r["diff"][c]
        mark = "" if d["excludes_0"] else " n.s."
        return f"{d['difference']:+.3f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]{mark}"

    lines = [
        f"`benchmarks/fusion_sweep.py --steps {args.steps} --limit {args.limit}`: SmolLM2-135M, "
        f"each variant = the `--model` defaults plus its flags, {args.steps} steps of batch 16 on "
        f"the learnable sample's training split, scored on the first {args.limit} validation "
        "records (clinical F1 micro, bootstrap 95 % intervals; paired intervals of the "
        "differences; n.s.: includes 0).",
        "",
        "| variant | flags | real ECG | zeroed | shuffled | real - shuffled | real - zeroed "
        "| majority report | distinct reports | changed by shuffling | train min | ECG/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        use = r["input_use"]
        lines.append(
            f"| {r['name']} | `{r['flags'] or '(defaults)'}` | {f1(r, 'clean')} | {f1(r, 'ecg=zeros')} "
            f"| {f1(r, 'ecg=shuffle')} | {diff(r, 'ecg=shuffle')} | {diff(r, 'ecg=zeros')} "
            f"| {r['f1']['majority report'][0]:.3f} | {use['distinct_predictions']} "
            f"| {use.get('changed_by_shuffle', '-')} of {args.limit} | {r['train_s'] / 60:.1f} "
            f"| {r['ecg_per_s']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=FLAGS (FLAGS added to the defaults; empty for the defaults)")
    parser.add_argument("--common", default="", help="flags for every variant (e.g. --threads 2)")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    args.common = shlex.split(args.common)
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in args.variant:
        name, _, flags = spec.partition("=")
        results.append(run_variant(args, name, shlex.split(flags)))
        print(render(results, args), flush=True)
    if args.write_docs and results:
        doc = DOC.read_text()
        head, rest = doc.split(START, 1)
        DOC.write_text(head + START + "\n" + render(results, args) + "\n" + END + rest.split(END, 1)[1])
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
