"""A tiny published dataset in the documented layout (imported by conftest and tests).

The records are synthetic on purpose: each report names a rhythm whose rate and amplitude are
planted in the signal, so a model that ignores the ECG cannot reproduce them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

REPORTS = [
    "sinus rhythm. normal ecg.",
    "sinus bradycardia. otherwise normal ecg.",
    "sinus tachycardia. left axis deviation.",
    "atrial fibrillation with rapid ventricular response.",
    "sinus rhythm. left ventricular hypertrophy. st-t changes.",
    "sinus rhythm. first degree av block.",
    "sinus rhythm. right bundle branch block.",
    "low qrs voltages in the frontal leads. sinus rhythm.",
]
PROMPTS = ["<ecg>\nWrite the report for this ECG.", "Describe this 12-lead ECG.\n<ecg>"]


def synthetic_signal(label: int, rng: np.random.Generator, fs: int = 100) -> np.ndarray:
    """A (12, 10 s) mV trace whose rate, amplitude and lead pattern encode ``label``."""
    n = 10 * fs
    t = np.arange(n) / fs
    rate = 0.8 + 0.25 * label  # beats per second
    beat = np.sin(2 * np.pi * rate * t) ** 15  # spiky "QRS" train
    gains = np.cos(np.arange(12)[:, None] * (0.3 + 0.2 * label))
    x = (0.5 + 0.15 * label) * gains * beat + 0.02 * rng.standard_normal((12, n))
    return np.round(x, 3).astype(np.float32)


def write_tiny_dataset(
    root: Path, sizes: dict[str, int], configs: dict[str, int] | None = None, seed: int = 0
) -> Path:
    """``root/data/<config>/<split>-00000-of-00001.parquet`` + README.md with YAML configs.

    ``configs`` maps config name -> sampling rate (signals are 10 s); the first is the default.
    """
    configs = configs or {"ptbxl": 100}
    card: dict = {"configs": [], "dataset_info": []}
    for c, (config, fs) in enumerate(configs.items()):
        feats = _write_config(root, config, fs, sizes, seed + c)
        card["configs"].append(
            {
                "config_name": config,
                "default": c == 0,
                "data_files": [
                    {"split": s, "path": f"data/{config}/{s}-*.parquet"} for s in sizes
                ],
            }
        )
        card["dataset_info"].append({"config_name": config, "features": feats._to_yaml_list()})
    (root / "README.md").write_text("---\n" + yaml.safe_dump(card, sort_keys=False) + "---\n")
    return root


def _write_config(root: Path, config: str, fs: int, sizes: dict[str, int], seed: int):
    import datasets

    n = 10 * fs

    feats = datasets.Features(
        {
            "id": datasets.Value("string"),
            "source": datasets.Value("string"),
            "split": datasets.Value("string"),
            "signal": datasets.Array2D((12, n), "float32"),
            "fs": datasets.Value("int32"),
            "report": datasets.Value("string"),
            "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
        }
    )
    rng = np.random.default_rng(seed)
    k = 0
    for split, count in sizes.items():
        rows: dict[str, list] = {name: [] for name in feats}
        for _ in range(count):
            label = k % len(REPORTS)
            rows["id"].append(f"{config}/{k:05d}")
            rows["source"].append(config)
            rows["split"].append(split)
            rows["signal"].append(synthetic_signal(label, rng, fs))
            rows["fs"].append(fs)
            rows["report"].append(REPORTS[label])
            rows["messages"].append(
                [
                    {"role": "system", "content": "You are a cardiologist."},
                    {"role": "user", "content": PROMPTS[k % 2]},
                    {"role": "assistant", "content": REPORTS[label]},
                ]
            )
            k += 1
        ds = datasets.Dataset.from_dict(rows, features=feats)
        path = root / "data" / config / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(ds.data.table, path)
    return feats


def small_config(data: Path, out: Path, **overrides):
    """A model small enough to train in seconds on 2 cores; same code path as the default."""
    from ecg_instruct.train.config import ModelConfig, TrainConfig

    model = dict(d_model=64, n_layer=2, n_head=4, ecg_tokens=4, encoder_width=16, dropout=0.0)
    model.update(overrides.pop("model", {}))
    base = dict(
        data=str(data), config="ptbxl", out=str(out), model=ModelConfig(**model), max_steps=40,
        batch_size=8, lr=3e-3, warmup_steps=5, vocab_size=200, eval_interval=0, save_interval=1000,
        device="cpu",
    )  # fmt: skip
    base.update(overrides)
    return TrainConfig(**base)


def assert_resume_matches_uninterrupted(data: Path, runs: Path, steps: int, stop_at: int,
                                        after_stop=None, **common) -> None:
    """Train `steps` in one go (`runs/full`) and to `stop_at`, then resumed to `steps`
    (`runs/part`, `after_stop(run folder)` called in between, e.g. to leave what a crash
    leaves): the weights and the logged losses must be identical."""
    import json

    import torch

    from ecg_instruct.train.trainer import train

    train(small_config(data, runs / "full", max_steps=steps, **common), progress=False)
    part = small_config(data, runs / "part", max_steps=stop_at, **common)
    train(part, progress=False)
    if after_stop is not None:
        after_stop(runs / "part")
    part.max_steps = steps
    train(part, resume=True, progress=False)
    a, b = (torch.load(runs / name / "checkpoint.pt", weights_only=True)["model"]
            for name in ("full", "part"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = [[json.loads(x)["loss"] for x in (runs / name / "train_log.jsonl").open()]
              for name in ("full", "part")]  # fmt: skip
    assert losses[0] == losses[1]
