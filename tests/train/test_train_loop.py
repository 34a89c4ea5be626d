"""Training loop: loss falls, overfitting reproduces reports, resume is exact, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tiny_data import assert_resume_matches_uninterrupted, small_config, write_tiny_dataset  # noqa: E402

from ecg_instruct.errors import UserError  # noqa: E402
from ecg_instruct.train.trainer import batch_index, lr_at, train  # noqa: E402


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


def test_loss_falls_and_run_folder_is_complete(tiny_run: Path):
    log = _log(tiny_run)
    assert len(log) == 150
    first = sum(r["loss"] for r in log[:5]) / 5
    last = sum(r["loss"] for r in log[-5:]) / 5
    assert last < 0.3 * first, (first, last)
    assert "val_loss" in log[-1] and log[-1]["val_loss"] < first
    for name in ("run.json", "tokenizer.json", "checkpoint.pt"):
        assert (tiny_run / name).exists()


@pytest.mark.parametrize("fusion", ["prefix", "kv"])
def test_overfit_eight_records_reproduces_reports(tmp_path: Path, fusion: str):
    """Eight records, eight different reports, one prompt per record: only the ECG tells them
    apart, so exact reproduction also proves the signal reaches the decoder."""
    from ecg_instruct.evaluate.runner import EvalOptions, evaluate_run

    data = write_tiny_dataset(tmp_path / "eight", {"train": 8, "test": 8})
    run = tmp_path / "run"
    cfg = small_config(data, run, max_steps=100, model={"fusion": fusion})
    train(cfg, progress=False)
    result = evaluate_run(EvalOptions(run=run, split="train", meteor="none", progress=False))
    [row] = result["rows"]
    import pyarrow.parquet as pq

    preds = pq.read_table(Path(result["out_dir"]) / "predictions.parquet").to_pylist()
    assert Path(result["out_dir"]) == run / "eval" / "ptbxl-train"
    exact = sum(p["prediction"] == p["reference"] for p in preds)
    assert exact >= 7, preds
    assert row["bleu_4"] > 0.9


def test_resume_is_bit_identical_to_an_uninterrupted_run(tiny_dataset: Path, tmp_path: Path):
    def crashed_after_checkpoint(run: Path) -> None:  # a crash after step 5's checkpoint
        with (run / "train_log.jsonl").open("a") as log:  # left a line for step 6
            log.write('{"step": 6, "loss": 99.0}\n')

    assert_resume_matches_uninterrupted(tiny_dataset, tmp_path, 8, 5, crashed_after_checkpoint,
                                        model={"dropout": 0.1})


def test_existing_run_needs_resume(tiny_run: Path, tiny_dataset: Path):
    with pytest.raises(UserError, match="--resume"):
        train(small_config(tiny_dataset, tiny_run), progress=False)


def test_bad_config_and_missing_dataset_are_user_errors(tiny_dataset: Path, tmp_path: Path):
    with pytest.raises(UserError, match="nope"):
        train(small_config(tiny_dataset, tmp_path / "a", config="nope"), progress=False)
    with pytest.raises(UserError, match="README.md"):
        train(small_config(tmp_path / "empty", tmp_path / "b"), progress=False)


def test_schedule_and_sampler():
    cfg = small_config(Path("."), Path("."), lr=1.0, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(110, cfg) == pytest.approx(cfg.min_lr_ratio)
    epoch = [i for s in range(4) for i in batch_index(s, 33, 8, seed=1)]
    assert sorted(epoch) == sorted(set(epoch)) and len(epoch) == 32  # no repeats in an epoch
    assert list(batch_index(5, 33, 8, 1)) == list(batch_index(5, 33, 8, 1))
    assert list(batch_index(0, 33, 8, 1)) != list(batch_index(0, 33, 8, 2))


def test_length_bucketing_is_seeded_and_covers_each_epoch():
    import numpy as np

    from ecg_instruct.train.trainer import bucketed_batch_index

    lengths = np.random.default_rng(0).integers(10, 200, 1000).astype(np.int64)
    epoch = [bucketed_batch_index(s, lengths, 10, seed=3, window=8) for s in range(100)]
    assert sorted(np.concatenate(epoch).tolist()) == list(range(1000))
    again = [bucketed_batch_index(s, lengths, 10, seed=3, window=8) for s in (57, 3)]
    assert [a.tolist() for a in again] == [epoch[57].tolist(), epoch[3].tolist()]
    plain = [batch_index(s, 1000, 10, seed=3) for s in range(100)]
    padding = [sum(int(lengths[b].max() - lengths[b].min()) for b in bs) for bs in (epoch, plain)]
    assert padding[0] < 0.3 * padding[1]
