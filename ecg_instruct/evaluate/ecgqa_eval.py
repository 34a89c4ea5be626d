"""`ecg-instruct evaluate` on the `ecgqa` config: ECG-QA accuracy against a majority baseline.

Generates an answer per question (greedy, like reports), scores it by ECG-QA's exact match
(`ecgqa_accuracy`: per question type, per attribute type, macro over question types, bootstrap
95 % intervals) and sets it against the majority-answer baseline (the commonest training answer
of each question type), with the paired interval of the difference. `--controls` adds the same
model with its ECGs zeroed and with the ECGs of another question (the control that shows whether
the model reads the ECG at all). `--noise` adds the same model on corrupted ECGs, one row per
level (`evaluate.noise`: each ECG of a question corrupted on its own, seeded by its record id),
each with the paired interval of its difference from the clean ECGs (`vs_clean`). Writes
metrics.json, predictions.parquet (every condition) and, with controls, controls.json/.md, with
noise, robustness.json/.md into the evaluation folder; metrics.json's ``input_use`` counts the
answers each control changed and warns when the model ignores its ECGs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from ecg_instruct.errors import UserError
from ecg_instruct.evaluate.ecgqa_accuracy import ecgqa_accuracy, majority_answers, paired_difference
from ecg_instruct.evaluate.input_use import input_use


def evaluate_questions(opts, cfg, encoder, model, ds, split, out_dir: Path, base: dict,
                       generate: Callable) -> dict:
    """Score a run on an `ecgqa` split; returns {"out_dir", "rows"} like `evaluate_run`.
    `generate` is `runner.generate` (passed in: the runner calls this module)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ecg_instruct.evaluate.noise import Noise, parse_noise
    from ecg_instruct.train.data import load_split

    most = max(len(ids) for ids in ds["ecg_ids"])
    if most > cfg.model.max_ecgs:  # before any generation: not after the first comparison batch
        raise UserError(f"{base['config']}/{opts.split} has questions about {most} ECGs; this run "
                        f"(trained on {cfg.config}) takes {cfg.model.max_ecgs} per example",
                        fix="evaluate a run trained with --config ecgqa")
    cols = ds.select_columns(["answer", "question_type", "attribute_type"]).to_dict()
    answers, qtypes, atypes = cols["answer"], cols["question_type"], cols["attribute_type"]
    train = load_split(opts.data or cfg.data, base["config"], "train")
    train_cols = train.select_columns(["answer", "question_type"]).to_dict()
    majority = majority_answers(train_cols["answer"], train_cols["question_type"], qtypes)
    majority_score = ecgqa_accuracy(majority, answers, qtypes, atypes, opts.bootstrap, opts.seed)

    conditions = [("signal", Noise("clean"))]
    conditions += [(ecg, Noise("clean")) for ecg in (["zeros", "shuffle"] if opts.controls else [])]
    if opts.noise:
        conditions += [("signal", n) for n in parse_noise(opts.noise) if n.kind != "clean"]
    rows, robustness, tables, predictions = [], [], [], {}
    for ecg, noise in conditions:
        preds = generate(model, split, encoder, cfg, opts, ecg, noise)
        condition = noise.label if ecg == "signal" else f"ecg={ecg}"
        result = ecgqa_accuracy(preds, answers, qtypes, atypes, opts.bootstrap, opts.seed)
        result["vs_majority"] = paired_difference(preds, majority, answers, opts.bootstrap,
                                                  opts.seed)
        if ecg == "signal" and noise.kind == "clean":  # the first condition
            predictions["signal"] = preds
        elif ecg == "signal":  # a noise level, against the clean ECGs
            result["vs_clean"] = paired_difference(predictions["signal"], preds, answers,
                                                   opts.bootstrap, opts.seed)
        else:  # a control
            predictions[ecg] = preds
            result["vs_signal"] = paired_difference(predictions["signal"], preds, answers,
                                                    opts.bootstrap, opts.seed)
        rows.append({**base, "ecg": ecg, "condition": condition, **result})
        if ecg == "signal":
            robustness.append({**rows[-1], "kind": noise.kind, "level": noise.level})
        tables.append(pa.table({"id": split.ids, "condition": [condition] * len(preds),
                                "reference": split.reports, "prediction": preds}))
    main = {**rows[0], "majority_baseline": majority_score,
            "input_use": input_use(predictions, split.reports, noun="answers")}
    for warning in main["input_use"]["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    (out_dir / "metrics.json").write_text(json.dumps(main, indent=2) + "\n")
    pq.write_table(pa.concat_tables(tables), out_dir / "predictions.parquet")
    if opts.controls:
        controls = [r for r in rows if r["condition"] == "clean" or r["ecg"] != "signal"]
        (out_dir / "controls.json").write_text(json.dumps(
            controls + [{**base, "ecg": "none", "condition": "majority answer", **majority_score}],
            indent=2) + "\n")
        (out_dir / "controls.md").write_text(controls_table(controls, majority_score,
                                                            main["input_use"]))
    if opts.noise:
        (out_dir / "robustness.json").write_text(json.dumps(robustness, indent=2) + "\n")
        (out_dir / "robustness.md").write_text(controls_table(robustness, majority_score))
    return {"out_dir": str(out_dir), "rows": rows, "majority_baseline": majority_score}


def _cell(cell: dict) -> str:
    ci = cell.get("ci95")
    return f"{cell['accuracy']:.4f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _difference(diff: dict) -> str:
    ci = diff.get("ci95")
    return f"{diff['difference']:+.4f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")


def controls_table(rows: list[dict], majority: dict, use: dict | None = None) -> str:
    """Markdown: accuracy and macro per condition, then per question type; below it the paired
    differences of the real ECGs to each control and to the majority answer, and how many
    answers each control changed (``use``: ``input_use``)."""
    qtypes = sorted(majority["question_type"])
    head = "| condition | accuracy | macro over question types | " + " | ".join(qtypes) + " |"
    lines = [head, "|---" * (3 + len(qtypes)) + "|"]
    for name, result in [(r["condition"], r) for r in rows] + [("majority answer", majority)]:
        lines.append(f"| {name} | {_cell(result['overall'])} | "
                     f"{_cell(result['macro_question_type'])} | "
                     + " | ".join(_cell(result["question_type"][t]) for t in qtypes) + " |")
    lines += ["", "| paired difference (accuracy) | difference [95 % CI] | answers changed |",
              "|---|---|---|"]
    lines.append(f"| real - majority answer | {_difference(rows[0]['vs_majority'])} | |")
    for row in rows[1:]:  # controls (vs_signal) or noise levels (vs_clean)
        changed = (use or {}).get(f"changed_by_{row['ecg']}")
        changed_text = "" if changed is None else f"{changed} of {row['n_questions']}"
        diff = row.get("vs_signal") or row["vs_clean"]
        lines.append(f"| real - {row['condition']} | {_difference(diff)} | "
                     f"{changed_text} |")
    return "\n".join(lines) + ("\n\nExact-match accuracy (answer sets after lower-casing and "
                               "trimming) with bootstrap 95 % intervals over questions.\n")
