"""Generate reports for a split with a trained run and score them.

Outputs (all in one folder: the run folder for the run's own config and test split, else
``RUN/eval/<config>-<split>/``, or ``--out-dir``):

    metrics.json         flat bleu_1..bleu_4, meteor_nltk, meteor_1_5, rouge_l, cider_d,
                         bertscore_*, clinical_* with ci95 intervals + what produced them
    predictions.parquet  id, condition, reference, prediction (one row per record and condition)
    controls.json/.md    with --controls: the same model with the ECG zeroed or shuffled
    robustness.json/.md/.png  with --noise: metric vs noise level
    report.html + report_files/  per-record ECG thumbnail, reference vs generated, statements
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecg_instruct.evaluate.bootstrap import metric_cell
from ecg_instruct.evaluate.clinical import unscored_findings
from ecg_instruct.evaluate.html_report import signals_of_dataset, write_html_report
from ecg_instruct.evaluate.input_use import input_use
from ecg_instruct.evaluate.noise import Noise, parse_noise
from ecg_instruct.evaluate.scoring import METRICS, public, score
from ecg_instruct.rng import rng_for, stable_hash
from ecg_instruct.train._torch import require_torch

__all__ = ["METRICS", "EvalOptions", "evaluate_run"]


@dataclass
class EvalOptions:
    run: Path
    split: str = "test"
    eval_config: str | None = None  # zero-shot transfer: score on another config
    data: str | None = None  # default: the dataset the run was trained on
    max_new_tokens: int | None = None  # default: the run's max_report_tokens
    batch_size: int = 32
    limit: int | None = None  # first N records only (quick looks; metrics say so)
    controls: bool = False
    noise: str | None = None
    meteor: str = "auto"
    bertscore_model: str | None = None
    bootstrap: int = 1000  # replicates for the 95 % intervals
    seed: int = 0
    device: str = "auto"
    out_dir: Path | None = None
    progress: bool | None = None


def shuffled_order(n: int, seed: int, groups: Sequence[int] | None = None) -> np.ndarray:
    """A derangement: record i gets the ECG of another record (for n > 1), seeded.

    With ``groups`` (ECG-QA: the number of ECGs of each question) a row takes the ECGs of
    another row of its group, so a comparison question gets another question's *pair* and a
    one-ECG question one ECG: the control changes which ECGs are read, not how many (with a
    pair in a one-ECG question's place, prefix fusion had more ECG tokens than slots). A group
    of one row keeps its own ECGs.
    """
    if groups is None:
        perm = rng_for(seed, "shuffle-control", n).permutation(n)
        out = np.empty(n, dtype=np.int64)
        out[perm] = np.roll(perm, -1)
        return out
    keys = np.asarray(groups)
    out = np.arange(n, dtype=np.int64)
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        out[rows] = rows[shuffled_order(len(rows), stable_hash(seed, "group", int(key)))]
    return out


def generate(model, split, encoder, cfg, opts: EvalOptions, ecg: str, noise: Noise) -> list[str]:
    """Greedy reports for every record of ``split`` under one input condition."""
    torch = require_torch()
    from tqdm import tqdm

    from ecg_instruct.train.data import QuestionSignals, prompt_batch
    from ecg_instruct.train.trainer import autocast

    device = next(model.parameters()).device
    max_new = opts.max_new_tokens or cfg.max_report_tokens
    counts = ([len(split.record_ids(i)) for i in range(len(split))]
              if isinstance(split.signals, QuestionSignals) else None)
    source = (shuffled_order(len(split), opts.seed, counts) if ecg == "shuffle"
              else np.arange(len(split)))
    out: list[str] = []
    disable = not (sys.stderr.isatty() if opts.progress is None else opts.progress)
    starts = range(0, len(split), opts.batch_size)
    for start in tqdm(starts, desc=f"{ecg}/{noise.label}", disable=disable, file=sys.stderr):
        idx = list(range(start, min(len(split), start + opts.batch_size)))
        b = prompt_batch(split, idx, encoder, cfg.model.fusion, cfg.model.ecg_tokens)
        signal = split.signal_batch([int(source[i]) for i in idx], cfg.signal_fs)
        if noise.kind != "clean":
            noisy = [
                noise.apply_to_ecgs(s.numpy(), split.record_ids(i), opts.seed)
                for i, s in zip(idx, signal, strict=True)
            ]
            signal = torch.from_numpy(np.stack(noisy))
        if ecg == "zeros":  # every ECG zeroed; an absent second ECG (all NaN) stays absent
            signal = torch.where(torch.isnan(signal), signal, torch.zeros_like(signal))
        with autocast(device):
            ids = model.generate(
                b["ids"].to(device), b["valid"].to(device), signal.to(device), max_new,
                encoder.eos_id,
            )
        out.extend(encoder.decode(row) for row in ids.tolist())
    return out


def _table(rows: list[dict], key: str) -> str:
    metrics = [m for m in METRICS if any(r.get(m) is not None for r in rows)]
    head = f"| {key} | n | " + " | ".join(metrics) + " |"
    sep = "|---" * (len(metrics) + 2) + "|"
    reference = rows[0] if rows else None
    body = [
        f"| {r[key]} | {r['n_records']} | "
        + " | ".join(metric_cell(r, m, reference) for m in metrics)
        + " |"
        for r in rows
    ]
    note = (
        f"\nValues with bootstrap 95 % intervals over records; (n.s.): the paired 95 % interval "
        f"of the difference from the first row ({reference[key]}) includes 0.\n"
        if reference
        else ""
    )
    return "\n".join([head, sep, *body]) + "\n" + note


def plot_robustness(rows: list[dict], path: Path) -> None:
    """Metric vs noise level: MEIT share-of-clean levels left, SNR right (clean in both)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clean = next(r for r in rows if r["condition"] == "clean")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, kind, xlabel in (
        (axes[0], "meit", "share of clean signal in a 5-20 % stretch (MEIT)"),
        (axes[1], "snr", "SNR of additive Gaussian noise (dB)"),
    ):
        sub = [r for r in rows if r["kind"] == kind]
        xs = ([1.0] if kind == "meit" else [float("inf")]) + [r["level"] for r in sub]
        pts = [clean] + sub
        if kind == "snr":  # show "clean" at the right of the finite SNR values
            finite = [x for x in xs if x != float("inf")]
            xs = [(max(finite) + 10 if finite else 40) if x == float("inf") else x for x in xs]
        order = np.argsort(xs)
        x_sorted = np.array(xs)[order]
        for m in [m for m in METRICS if m != "cider_d"]:  # bounded metrics on the left axis
            if clean.get(m) is not None:
                ax.plot(x_sorted, [pts[i][m] for i in order], marker="o", label=m)
        twin = ax.twinx()  # CIDEr-D is on a 0-10 scale: its own axis
        twin.plot(x_sorted, [pts[i]["cider_d"] for i in order], "k--", marker="s", label="cider_d")
        twin.set_ylim(0, 1.1 * max([1.0] + [r["cider_d"] for r in rows]))  # from 0, not zoomed
        twin.set_ylabel("CIDEr-D" if kind == "snr" else "")
        if kind == "snr":
            ax.set_xticks(x_sorted, [f"{x:g}" for x in x_sorted[:-1]] + ["clean"])
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 1)
        if kind == "meit":
            ax.invert_xaxis()
        else:
            twin.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("score")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"Robustness ({clean['config']}/{clean['split']}, n={clean['n_records']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate_run(opts: EvalOptions) -> dict:
    """Score a run on one split; returns the main metrics (also written to metrics.json)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ecg_instruct.train.data import load_split, tokenise_split
    from ecg_instruct.train.trainer import load_run, pick_device

    torch = require_torch()
    run = Path(opts.run)
    cfg, encoder, model = load_run(run, pick_device(opts.device))
    config = opts.eval_config or cfg.config
    ds = load_split(opts.data or cfg.data, config, opts.split)
    if opts.limit:
        ds = ds.select(range(min(opts.limit, len(ds))))
    split = tokenise_split(ds, encoder, cfg.max_report_tokens, opts.data or cfg.data)
    # the run's own test split goes to the run folder; anything else to its own sub-folder
    own = config == cfg.config and opts.data in (None, cfg.data) and opts.split == "test"
    out_dir = Path(opts.out_dir) if opts.out_dir else (
        run if own else run / "eval" / f"{config}-{opts.split}"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(opts.seed)
    if "ecg_ids" in ds.column_names:  # ECG-QA questions: exact-match accuracy, not report metrics
        from ecg_instruct.evaluate.ecgqa_eval import evaluate_questions

        base = {"run": str(run), "config": config, "trained_on": cfg.config, "split": opts.split,
                "limit": opts.limit, "decoding": "greedy", "fusion": cfg.model.fusion,
                "seed": opts.seed}
        return evaluate_questions(opts, cfg, encoder, model, ds, split, out_dir, base, generate)
    scp_codes = _scp_codes(ds)

    conditions: list[tuple[str, Noise]] = [("signal", Noise("clean"))]
    if opts.controls:
        conditions += [("zeros", Noise("clean")), ("shuffle", Noise("clean"))]
    if opts.noise:
        conditions += [("signal", n) for n in parse_noise(opts.noise) if n.kind != "clean"]

    base = {
        "run": str(run), "config": config, "trained_on": cfg.config, "split": opts.split,
        "limit": opts.limit, "max_new_tokens": opts.max_new_tokens or cfg.max_report_tokens,
        "decoding": "greedy", "fusion": cfg.model.fusion, "seed": opts.seed,
    }  # fmt: skip
    rows, pred_tables, by_condition = [], [], {}
    for ecg, noise in conditions:
        preds = generate(model, split, encoder, cfg, opts, ecg, noise)
        metrics = score(
            preds, split.reports, opts.meteor, scp_codes=scp_codes,
            bertscore_model=opts.bertscore_model, replicates=opts.bootstrap, seed=opts.seed,
        )  # fmt: skip
        condition = noise.label if ecg == "signal" else f"ecg={ecg}"
        if noise.kind == "clean":
            by_condition[ecg] = preds
        rows.append(
            {**base, **metrics, "ecg": ecg, "condition": condition, "kind": noise.kind,
             "level": noise.level}
        )  # fmt: skip
        pred_tables.append(
            pa.table(
                {
                    "id": split.ids,
                    "condition": [condition] * len(preds),
                    "reference": split.reports,
                    "prediction": preds,
                }
            )
        )
    main = rows[0]
    if opts.controls:  # the report prior as a row of its own: the bar a model must clear
        prior = majority_report(cfg)
        metrics = score([prior] * len(split), split.reports, "none", scp_codes=scp_codes,
                        replicates=opts.bootstrap, seed=opts.seed)  # fmt: skip
        rows.append({**base, **metrics, "ecg": "none", "condition": "majority report",
                     "kind": "baseline", "level": None, "report": prior})  # fmt: skip
        for row in rows[1:]:
            row["paired_difference_from_ecg"] = paired_differences(main, row)
        main["majority_report"] = {"report": prior, "clinical_f1_micro": rows[-1]["clinical_f1_micro"],
                                   "ci95": rows[-1]["ci95"].get("clinical_f1_micro")}  # fmt: skip
    main["input_use"] = input_use(by_condition, split.reports)
    main["clinical_ignores"] = unscored_findings(split.reports)
    main["model"] = run_summary(run, cfg)
    for warning in main["input_use"]["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    (out_dir / "metrics.json").write_text(
        json.dumps({k: v for k, v in public(main).items() if k not in ("kind", "level")}, indent=2)
        + "\n"
    )
    pq.write_table(pa.concat_tables(pred_tables), out_dir / "predictions.parquet")
    if opts.controls:
        ctrl = [r for r in rows if r["kind"] in ("clean", "baseline")]
        (out_dir / "controls.json").write_text(json.dumps(_strip(ctrl), indent=2) + "\n")
        (out_dir / "controls.md").write_text(_table(ctrl, "condition"))
    if opts.noise:
        rob = [r for r in rows if r["ecg"] == "signal"]
        (out_dir / "robustness.json").write_text(json.dumps(_strip(rob), indent=2) + "\n")
        (out_dir / "robustness.md").write_text(_table(rob, "condition"))
        plot_robustness(rob, out_dir / "robustness.png")
    predictions = pred_tables[0].column("prediction").to_pylist()  # report.html: html_report.py
    write_html_report(out_dir, split.ids, split.reports, predictions, signals_of_dataset(ds), rows)
    return {"out_dir": str(out_dir), "rows": rows}


def majority_report(cfg) -> str:
    """The most frequent report of the run's training split (ties: the first in sort order)."""
    from collections import Counter

    from ecg_instruct.train.data import assistant_text, load_split

    cols = load_split(cfg.data, cfg.config, "train").select_columns(["messages", "report"]).to_dict()
    counts = Counter(assistant_text(m, r) for m, r in zip(cols["messages"], cols["report"], strict=True))
    return min(counts, key=lambda text: (-counts[text], text))


def paired_differences(real: dict, other: dict) -> dict:
    """(real ECG - ``other``) per metric, with its paired bootstrap 95 % interval."""
    from ecg_instruct.evaluate.bootstrap import difference_supported

    out = {}
    for metric, a in real.get("_replicates", {}).items():
        b = other.get("_replicates", {}).get(metric)
        if b is None or real.get(metric) is None or other.get(metric) is None:
            continue
        ci, supported = difference_supported(a, b)
        out[metric] = {"difference": real[metric] - other[metric], "ci95": ci,
                       "excludes_0": supported}  # fmt: skip
    return out


def run_summary(run: Path, cfg) -> dict:
    """What was evaluated: decoder (base model), fusion, ECG tokens, steps and epochs."""
    described = {}
    if (run / "model.json").is_file():
        described = json.loads((run / "model.json").read_text())
    base = cfg.base_model or {}
    out = {
        "decoder": cfg.hf_model or "builtin",
        "base_model": base.get("source") if cfg.hf_model else None,
        "fusion": cfg.model.fusion,
        "ecg_tokens": cfg.model.ecg_tokens,
        "steps": cfg.max_steps,
        "batch_size": cfg.batch_size,
    }
    if described.get("train_records"):
        out["epochs"] = round(cfg.max_steps * cfg.batch_size / described["train_records"], 2)
    return out


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in public(r).items() if k != "implementation"} for r in rows]


def _scp_codes(ds) -> list[dict | None] | None:
    """PTB-XL's cardiologist statements per row (JSON column ``scp_codes``), when published."""
    if "scp_codes" not in ds.column_names:
        return None
    out: list[dict | None] = []
    for value in ds["scp_codes"]:
        try:
            parsed = json.loads(value) if value else None
        except (TypeError, ValueError):
            parsed = None
        out.append(parsed if isinstance(parsed, dict) and parsed else None)
    return out
