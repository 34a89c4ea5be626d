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

import json

import sweep_common as sweep

DOC = sweep.ROOT / "docs" / "training.md"
START, END = "<!-- fusion-sweep:start -->", "<!-- fusion-sweep:end -->"


def run_variant(args, name: str, flags: list[str]) -> dict:
    run = args.work / sweep.slug(name)
    result_path = run / "sweep.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    train_s = sweep.cli("train-baseline", "--data", str(args.data), "--config", "ptbxl",
                  "--out", str(run), "--model", "smollm2", "--max-steps", str(args.steps),
                  "--eval-interval", "0", "--no-progress", *args.common, *flags)  # fmt: skip
    eval_dir = run / "eval-val"
    sweep.cli("evaluate", "--run", str(run), "--split", "validation", "--limit", str(args.limit),
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
        return sweep.value_cell(*r["f1"][c])

    def diff(r, c):
        return sweep.difference_cell(r["diff"][c], "excludes_0")

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
    parser = sweep.sweep_parser(__doc__, steps=40)
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)
    results = sweep.run_variants(args, run_variant, render)
    if args.write_docs and results:
        sweep.replace_between(DOC, START, END, render(results, args))
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
