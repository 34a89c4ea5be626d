"""Model-level checks: label masking, fusion wiring, KV-cache decoding equals full recompute."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")

from ecg_instruct.errors import UserError  # noqa: E402
from ecg_instruct.train.config import ModelConfig  # noqa: E402
from ecg_instruct.train.data import (  # noqa: E402
    expand_prompt,
    load_split,
    tokenise_split,
    training_batch,
)
from ecg_instruct.train.model import ECGReportModel, attention_mask  # noqa: E402
from ecg_instruct.train.text import (  # noqa: E402
    ECG,
    ChatEncoder,
    prompt_text,
    train_tokenizer,
)

MESSAGES = [
    {"role": "system", "content": "You are a cardiologist."},
    {"role": "user", "content": "Describe this ECG.\n<ecg>"},
    {"role": "assistant", "content": "sinus rhythm."},
]


@pytest.fixture(scope="module")
def encoder() -> ChatEncoder:
    texts = ["sinus rhythm. normal ecg.", "atrial fibrillation.", prompt_text(MESSAGES)]
    return ChatEncoder(train_tokenizer(texts * 5, vocab_size=120))


def test_prompt_format_and_placeholder_rules():
    assert prompt_text(MESSAGES) == (
        "<|system|>\nYou are a cardiologist.\n<|user|>\nDescribe this ECG.\n<ecg>\n<|assistant|>\n"
    )
    no_ecg = [{"role": "user", "content": "Report?"}]
    assert prompt_text(no_ecg).startswith(f"{ECG}\n<|user|>")
    two = prompt_text([{"role": "user", "content": "First ECG: <ecg>\nSecond ECG: <ecg>"}])
    assert two.count(ECG) == 2  # one per ECG (ECG-QA comparisons)
    with pytest.raises(UserError, match="3 <ecg>"):
        prompt_text([{"role": "user", "content": "<ecg> and <ecg> and <ecg>"}])


def test_reports_round_trip_and_truncation_drops_eos(encoder: ChatEncoder):
    [ids] = encoder.encode_reports(["sinus rhythm. normal ecg."], max_tokens=128)
    assert ids[-1] == encoder.eos_id
    assert encoder.decode(ids) == "sinus rhythm. normal ecg."
    [short] = encoder.encode_reports(["sinus rhythm. normal ecg."], max_tokens=3)
    assert len(short) == 3 and encoder.eos_id not in short


def test_expand_prompt(encoder: ChatEncoder):
    [p] = encoder.encode_prompts([MESSAGES])
    assert p.count(encoder.ecg_id) == 1
    assert expand_prompt(p, encoder.ecg_id, "prefix", 4).count(encoder.ecg_id) == 4
    assert encoder.ecg_id not in expand_prompt(p, encoder.ecg_id, "kv", 4)


@pytest.mark.parametrize("fusion", ["prefix", "kv"])
def test_loss_only_on_report_tokens(tiny_dataset, encoder, fusion):
    split = tokenise_split(load_split(tiny_dataset, "ptbxl", "validation"), encoder, 128)
    b = training_batch(split, [0, 1, 2], encoder, fusion, 4, None)
    for row in range(3):
        t = b["targets"][row]
        kept = t[t != -100].tolist()
        assert kept == split.targets[row]  # exactly the report ids + </s>, nothing else
        prompt = expand_prompt(split.prompts[row], encoder.ecg_id, fusion, 4)
        first = int((t != -100).nonzero()[0])
        assert first == len(prompt) - 1  # the last prompt token predicts the first report token
        assert b["ids"][row, : first + 1].tolist() == prompt
        n_ecg = int((b["ids"][row] == encoder.ecg_id).sum())
        assert n_ecg == (4 if fusion == "prefix" else 0)
    assert b["signal"].shape == (3, 12, 1000)


def test_attention_mask_semantics():
    valid = torch.tensor([[False, True, True]])
    m = attention_mask(valid, n_query=3, n_memory=2)[0, 0]
    assert m[:, :2].all()  # ECG memory visible to every query
    text = m[:, 2:]
    assert text.tolist() == [[True, False, False], [False, True, False], [False, True, True]]


def _model(fusion: str, vocab: int, encoder: ChatEncoder) -> ECGReportModel:
    torch.manual_seed(0)
    cfg = ModelConfig(
        fusion=fusion, d_model=32, n_layer=2, n_head=4, ecg_tokens=3, encoder_width=8,
        dropout=0.0, block_size=128,
    )  # fmt: skip
    return ECGReportModel(cfg, vocab, encoder.ecg_id, encoder.pad_id).eval()


def test_kv_fusion_adds_no_decoder_parameters(encoder):
    prefix = _model("prefix", encoder.vocab_size, encoder)
    kv = _model("kv", encoder.vocab_size, encoder)
    shapes = lambda m: {n: p.shape for n, p in m.named_parameters()}  # noqa: E731
    assert shapes(prefix) == shapes(kv)
    # and the ECG really reaches the text through each layer's own key/value projection
    ids = torch.tensor([[5, 6, 7, 8]])
    sig = torch.randn(1, 12, 500)
    loss = kv.loss(ids, torch.tensor([[-100, 7, 8, 9]]), sig)
    loss.backward()
    assert kv.encoder.proj.weight.grad.abs().sum() > 0
    assert kv.blocks[1].attn.qkv.weight.grad[32:].abs().sum() > 0


@pytest.mark.parametrize("fusion", ["prefix", "kv"])
def test_cached_batched_greedy_equals_full_recompute(encoder, fusion):
    """Left-padded, KV-cached batch decoding must equal naive one-record-at-a-time decoding."""
    model = _model(fusion, encoder.vocab_size, encoder)
    k = model.cfg.ecg_tokens if fusion == "prefix" else 0
    prompts = [[3, 9, 10] + [encoder.ecg_id] * k + [11, 5], [3] + [encoder.ecg_id] * k + [12, 5]]
    signal = torch.randn(2, 12, 700)
    n_new = 12
    width = max(map(len, prompts))
    ids = torch.full((2, width), encoder.pad_id)
    valid = torch.zeros((2, width), dtype=torch.bool)
    for r, p in enumerate(prompts):
        ids[r, width - len(p) :] = torch.tensor(p)
        valid[r, width - len(p) :] = True
    got = model.generate(ids, valid, signal, n_new, eos_id=-1)  # never stops early
    for r, p in enumerate(prompts):
        seq = torch.tensor([p])
        ecg = model.encoder(signal[r : r + 1])
        want = []
        for _ in range(n_new):
            pos = torch.arange(seq.shape[1])[None]
            h = model.hidden(seq, pos, torch.ones_like(seq, dtype=torch.bool), ecg)
            nxt = int(model.lm_head(h[0, -1]).argmax())
            want.append(nxt)
            seq = torch.cat([seq, torch.tensor([[nxt]])], 1)
        assert got[r].tolist() == want


def test_encoder_any_length_gives_fixed_tokens(encoder):
    model = _model("prefix", encoder.vocab_size, encoder)
    for n in (250, 1000, 5000):
        assert model.encoder(torch.randn(2, 12, n)).shape == (2, 3, 32)


def test_missing_torch_is_a_user_error(monkeypatch):
    from ecg_instruct.train._torch import require_torch

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(UserError, match=r"ecg-instruct\[train\]"):
        require_torch()
