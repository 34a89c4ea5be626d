"""Side by side, on one budget: which recipe makes the built-in model read the ECG on ECG-QA.

Each variant is ``train-baseline --config ecgqa`` (built-in model) with the defaults plus a few
flags, trained for the same ``--steps`` on the same build, then ``evaluate --split validation
--controls``. Per variant the table gives exact-match accuracy with the real, zeroed and
shuffled ECGs, the paired 95 % intervals of (real - shuffled) and (real - zeroed), the
majority-answer baseline, single-verify accuracy (the type a model that ignores the ECG cannot
beat: its answers are half yes, half no), answers changed by shuffling, and the train wall
time. Finished variants are reused (their run folder is kept). ``--write-docs`` puts the table
between the ``<!-- ecgqa-sweep:start -->`` / ``<!-- ecgqa-sweep:end -->`` markers of
docs/ecgqa.md. ``--test`` then scores ``--test-variant`` (the one whose run is the bare
``train-baseline --config ecgqa``) on the test questions with controls, and ``--write-docs``
puts evaluate's own controls.md between the ``ecgqa-test`` markers.

    python benchmarks/ecgqa_sweep.py --data /tmp/qa/out --work /tmp/qa/sweep --steps 1000 \\
        --variant recipe= --variant "no encoder stage=--encoder-pretrain-steps 0" [--write-docs]
"""

from __future__ import annotations

import json

import sweep_common as sweep

DOC = sweep.ROOT / "docs" / "ecgqa.md"
START, END = "<!-- ecgqa-sweep:start -->", "<!-- ecgqa-sweep:end -->"
#: The shuffle control's version: rows take the ECGs of a row with as many ECGs (runner.py).
CONTROLS = "grouped-shuffle"
TEST_START, TEST_END = "<!-- ecgqa-test:start -->", "<!-- ecgqa-test:end -->"


def run_variant(args, name: str, flags: list[str]) -> dict:
    run = args.work / sweep.slug(name)
    result_path = run / "sweep.json"
    old = json.loads(result_path.read_text()) if result_path.exists() else None
    if old and old.get("controls") == CONTROLS:
        return old
    if old:  # trained already, scored under an earlier control: score again only
        train_s = old["train_s"]
    else:
        train_s = sweep.cli("train-baseline", "--data", str(args.data), "--config", "ecgqa",
                      "--out", str(run), "--max-steps", str(args.steps), "--no-progress",
                      *args.common, *flags)  # fmt: skip
    eval_dir = run / f"eval-val-{CONTROLS}"
    sweep.cli("evaluate", "--run", str(run), "--split", "validation", "--controls",
        "--out-dir", str(eval_dir), "--no-progress")  # fmt: skip
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    rows = json.loads((eval_dir / "controls.json").read_text())
    by = {row["condition"]: row for row in rows}
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    out = {
        "name": name, "flags": " ".join(flags), "steps": args.steps, "train_s": train_s,
        "controls": CONTROLS,
        "ecg_per_s": log[-1]["examples_per_s"], "n": metrics["n_questions"],
        "accuracy": {c: (r["overall"]["accuracy"], r["overall"]["ci95"]) for c, r in by.items()},
        "verify": {c: r["question_type"]["single-verify"]["accuracy"] for c, r in by.items()
                   if "single-verify" in r["question_type"]},
        "diff": {c: by[c]["vs_signal"] for c in ("ecg=zeros", "ecg=shuffle")},
        "input_use": metrics["input_use"],
    }  # fmt: skip
    result_path.write_text(json.dumps(out, indent=2))
    return out


def render(results: list[dict], args) -> str:
    def acc(r, c):
        return sweep.value_cell(*r["accuracy"][c])

    def diff(r, c):
        return sweep.difference_cell(r["diff"][c], "supported")

    lines = [
        f"`benchmarks/ecgqa_sweep.py --steps {args.steps}`: the built-in model, each variant = "
        f"the `--config ecgqa` defaults plus its flags, {args.steps} steps of batch 16 (unless "
        "its flags say otherwise) on the "
        "learnable sample's training questions, scored on all validation questions (exact-match "
        "accuracy, bootstrap 95 % intervals; paired intervals of the differences; n.s.: "
        "includes 0).",
        "",
        "| variant | flags | real ECGs | zeroed | shuffled | real - shuffled | real - zeroed "
        "| majority answer | single-verify real / shuffled | changed by shuffling | train min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        use, verify = r["input_use"], r["verify"]
        lines.append(
            f"| {r['name']} | `{r['flags'] or '(defaults)'}` | {acc(r, 'clean')} "
            f"| {acc(r, 'ecg=zeros')} | {acc(r, 'ecg=shuffle')} | {diff(r, 'ecg=shuffle')} "
            f"| {diff(r, 'ecg=zeros')} | {r['accuracy']['majority answer'][0]:.3f} "
            f"| {verify.get('clean', 0):.3f} / {verify.get('ecg=shuffle', 0):.3f} "
            f"| {use.get('changed_by_shuffle', '-')} of {r['n']} | {r['train_s'] / 60:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = sweep.sweep_parser(__doc__, steps=1000)
    parser.add_argument("--test", action="store_true",
                        help="score one variant on the test split with controls")
    parser.add_argument("--test-variant", default=None,
                        help="the variant --test scores: the bare command's (default: the first)")
    args = parser.parse_args(argv)
    results = sweep.run_variants(args, run_variant, render)
    test_table = None
    if args.test and results:
        name = args.test_variant or args.variant[0].partition("=")[0]
        run = args.work / sweep.slug(name)
        eval_dir = run / f"eval-test-{CONTROLS}"
        if not (eval_dir / "controls.md").exists():
            sweep.cli("evaluate", "--run", str(run), "--split", "test", "--controls",
                "--out-dir", str(eval_dir), "--no-progress")  # fmt: skip
        test_table = (eval_dir / "controls.md").read_text().strip()
        print(test_table)
    if args.write_docs and results:
        sweep.replace_between(DOC, START, END, render(results, args))
        if test_table:
            sweep.replace_between(DOC, TEST_START, TEST_END, test_table)
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
