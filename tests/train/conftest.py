"""Fixtures: a tiny published dataset and one trained run shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_data import PROMPTS, REPORTS, small_config, write_tiny_dataset


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP's spinning threads made a tiny
    training step 20x slower (50 ms -> 1 s) whenever other processes were busy."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PTB-XL-like config at 100 Hz (default) and a MIMIC-like one at 500 Hz."""
    return write_tiny_dataset(
        tmp_path_factory.mktemp("tiny"),
        {"train": 64, "validation": 16, "test": 16},
        configs={"ptbxl": 100, "mimic": 500},
    )


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trained run shared by the evaluation tests (trained once per session)."""
    from ecg_instruct.train.trainer import train

    out = tmp_path_factory.mktemp("runs") / "ptbxl"
    train(small_config(tiny_dataset, out, max_steps=150), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A 2-layer GPT-2 folder (no dropout) with a byte-level BPE that knows none of our special
    tokens and has no chat template."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    path = tmp_path_factory.mktemp("tiny-gpt2")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(REPORTS * 4 + PROMPTS + ["You are a cardiologist."], trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=tok.get_vocab_size(), n_positions=256, n_embd=64, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    transformers.GPT2LMHeadModel(cfg).save_pretrained(path)
    return path
