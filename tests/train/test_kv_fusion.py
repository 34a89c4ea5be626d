"""MEIT kv fusion (gated separate softmax) on tiny random LLaMA, Mistral, Qwen2 and GPT-2 models
built in-process."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ecg_instruct.errors import UserError  # noqa: E402
from ecg_instruct.train.config import ModelConfig  # noqa: E402
from ecg_instruct.train.hf import HFReportModel  # noqa: E402

VOCAB, ECG_ID, PAD_ID = 300, 298, 299
FAMILIES = ["llama", "mistral", "qwen2", "gpt2"]


def tiny_lm(kind: str):
    torch.manual_seed(0)
    if kind == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=128, n_embd=64, n_layer=2,
                                      n_head=4, bos_token_id=0, eos_token_id=0)  # fmt: skip
    else:
        config_class = {"llama": transformers.LlamaConfig, "mistral": transformers.MistralConfig,
                        "qwen2": transformers.Qwen2Config}[kind]  # fmt: skip
        cfg = config_class(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=128)  # fmt: skip
    lm = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    # random init is ~N(0, 0.02): scale up so the ECG's effect is far above float noise
    with torch.no_grad():
        for p in lm.parameters():
            p.mul_(10 if p.dim() > 1 else 1)
    return lm


def fused(kind: str, ecg_tokens: int = 2) -> HFReportModel:
    cfg = ModelConfig(fusion="kv", ecg_tokens=ecg_tokens, encoder_width=8)
    model = HFReportModel(cfg, tiny_lm(kind), ECG_ID, PAD_ID).eval()
    with torch.no_grad():
        model.ecg_gate.fill_(1.0)  # as if trained: the ECG attention reaches the text
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 290, (2, 10), generator=g)
    ids[1, 7:] = PAD_ID  # right padding, as in training
    return ids, torch.randn(2, 12, 500, generator=g)


@pytest.mark.parametrize("kind", FAMILIES)
def test_kv_fusion_adds_no_parameter_and_sees_the_ecg(kind: str):
    lm = tiny_lm(kind)
    before = {n: p.shape for n, p in lm.named_parameters()}
    model = HFReportModel(ModelConfig(fusion="kv", ecg_tokens=2, encoder_width=8), lm, ECG_ID,
                          PAD_ID).eval()  # fmt: skip
    assert {n: p.shape for n, p in model.lm.named_parameters()} == before
    ids, signal = _batch()
    valid = ids != PAD_ID
    with torch.no_grad():
        base = lm(input_ids=ids, attention_mask=valid.long()).logits
        at_start = model.logits(ids, signal)  # ECG visible, gates at their initial 0
        hidden = model.logits(ids, signal, ecg_visible=False)
        model.ecg_gate.fill_(1.0)
        with_ecg = model.logits(ids, signal)
        other_ecg = model.logits(ids, torch.roll(signal, 1, 0))
    # step 0 with the ECG in every layer: exactly the pretrained model (separate softmax, gate 0)
    torch.testing.assert_close(at_start[valid], base[valid], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(hidden[valid], base[valid], rtol=1e-6, atol=1e-6)
    assert (with_ecg - other_ecg)[valid].abs().amax() > 1e-3  # every position sees the ECG


@pytest.mark.parametrize("kind", FAMILIES)
def test_cached_generation_matches_the_training_forward(kind: str):
    """Cached generation (the ECG passed at every step) equals the training forward."""
    model = fused(kind, ecg_tokens=3)
    ids, signal = _batch()
    prompt, signal = ids[:1, :5], signal[:1]
    generated = model.generate(prompt, torch.ones_like(prompt, dtype=torch.bool), signal, 4, -1)
    seq = prompt
    with torch.no_grad():  # the ECG is read from the prompt's last token (index 4) on
        for _ in range(4):
            logits = model.logits(seq, signal, ecg_from=torch.tensor([4]))
            seq = torch.cat([seq, logits[:, -1:].argmax(-1)], 1)
    assert generated.tolist() == seq[:, 5:].tolist()


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_gradients_reach_the_encoder_and_the_gates(kind: str):
    model = fused(kind).train()
    ids, signal = _batch()
    targets = torch.where(ids != PAD_ID, ids, -100)
    model.loss(ids, targets, signal).backward()
    assert model.encoder.proj.weight.grad.abs().sum() > 0
    assert (model.ecg_gate.grad.abs() > 0).all()  # every layer's every head


def test_zero_gates_get_a_gradient_at_step_0():
    """At initialisation the gates (not the encoder) are what can move: tanh'(0) = 1."""
    model = HFReportModel(ModelConfig(fusion="kv", ecg_tokens=2, encoder_width=8), tiny_lm("llama"),
                          ECG_ID, PAD_ID).train()  # fmt: skip
    ids, signal = _batch()
    model.loss(ids, torch.where(ids != PAD_ID, ids, -100), signal).backward()
    assert model.ecg_gate.grad.abs().amax() > 0


def test_left_padded_generation_equals_unpadded():
    model = fused("qwen2")
    ids, signal = _batch()
    short = ids[1:, :4]
    padded = torch.cat([torch.full((1, 3), PAD_ID), short], 1)
    valid = padded != PAD_ID
    alone = model.generate(short, torch.ones_like(short, dtype=torch.bool), signal[1:], 3, -1)
    batched = model.generate(
        torch.cat([ids[:1, :7], padded]), torch.cat([torch.ones(1, 7, dtype=torch.bool), valid]),
        signal, 3, -1,
    )  # fmt: skip
    assert batched[1].tolist() == alone[0].tolist()


def test_unsupported_family_is_one_line():
    cfg = transformers.GPTNeoXConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                     num_hidden_layers=1, num_attention_heads=2)  # fmt: skip
    lm = transformers.AutoModelForCausalLM.from_config(cfg)
    with pytest.raises(UserError, match="gpt_neox.*--fusion prefix"):
        HFReportModel(ModelConfig(fusion="kv", ecg_tokens=1, encoder_width=8), lm, ECG_ID, PAD_ID)


def test_gradient_checkpointing_keeps_the_ecg_and_the_gradients():
    ids, signal = _batch()
    targets = torch.where(ids != PAD_ID, ids, -100)
    grads = []
    for checkpointing in (False, True):
        model = fused("llama").train()
        if checkpointing:
            model.lm.gradient_checkpointing_enable({"use_reentrant": False})
        loss = model.loss(ids, targets, signal)
        loss.backward()
        grads.append((loss.detach(), model.encoder.proj.weight.grad.clone()))
    assert torch.equal(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-7)
    assert grads[1][1].abs().sum() > 0


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_loss_with_the_prompt_under_no_grad_equals_the_full_loss(kind: str):
    """Distinct prompts once in the KV cache without gradient, reports on top: the same loss
    value, and the gates and encoder still get gradients (through the report positions)."""
    model = fused(kind, ecg_tokens=3).train()
    for m in model.modules():  # dropout off: the two paths draw different masks
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    ids, signal = _batch()
    ids, signal = torch.cat([ids, ids[:1]]), torch.cat([signal, signal[1:]])
    ids[2, 5:] = torch.tensor([7, 8, 9, PAD_ID, PAD_ID])  # row 2: row 0's prompt, other report
    targets = torch.full_like(ids, -100)
    targets[0, 4:9], targets[1, 3:6] = ids[0, 5:10], ids[1, 4:7]  # prompts of 5 and 4 tokens
    targets[2, 4:7] = ids[2, 5:8]
    ids[1, 7:] = PAD_ID
    full = model.loss(ids, targets, signal)
    model.prompt_without_grad = True
    split = model.loss(ids, targets, signal)
    torch.testing.assert_close(split, full, rtol=1e-5, atol=1e-5)
    split.backward()
    assert model.encoder.proj.weight.grad.abs().sum() > 0 and model.ecg_gate.grad.abs().sum() > 0


# --- Two ECGs per example (ECG-QA comparisons, ModelConfig.max_ecgs = 2) ----------------------

TOKENS = 3


def two_ecg_model(kind: str, fusion: str = "kv", max_ecgs: int = 2) -> HFReportModel:
    """As if trained: open gates and distinct first/second-ECG vectors (both start at 0)."""
    cfg = ModelConfig(fusion=fusion, ecg_tokens=TOKENS, encoder_width=8, max_ecgs=max_ecgs)
    model = HFReportModel(cfg, tiny_lm(kind), ECG_ID, PAD_ID).eval()
    with torch.no_grad():
        if fusion == "kv":
            model.ecg_gate.fill_(1.0)
        if model.ecg_order is not None:
            model.ecg_order.copy_(torch.randn(model.ecg_order.shape,
                                              generator=torch.Generator().manual_seed(3)))
    return model


def _rows(fusion: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(one-ECG row's ids (1, T), a batch of it and a comparison row (2, T'), its signals
    (2, 2, 12, n): the one-ECG row's second ECG all NaN). Prefix rows hold one slot group per
    ECG; the batch is right-padded as in training."""
    g = torch.Generator().manual_seed(2)
    slots = [ECG_ID] * TOKENS if fusion == "prefix" else []
    text = torch.randint(0, 290, (12,), generator=g).tolist()
    one = torch.tensor([text[:2] + slots + text[2:6]])
    two = torch.tensor([text[6:8] + slots + text[8:9] + slots + text[9:12]])
    batch = torch.full((2, two.shape[1]), PAD_ID)
    batch[0, : one.shape[1]], batch[1] = one[0], two[0]
    signal = torch.randn(2, 2, 12, 400, generator=g)
    signal[0, 1] = float("nan")
    return one, batch, signal


@pytest.mark.parametrize(("kind", "fusion"), [("llama", "kv"), ("gpt2", "kv"), ("qwen2", "prefix")])
def test_a_one_ecg_row_beside_a_comparison_gets_its_output_alone(kind: str, fusion: str):
    """Its absent second ECG is masked in the ECG softmax (kv) or never placed (prefix): the
    logits, and the greedy generation, are those it gets alone."""
    model = two_ecg_model(kind, fusion)
    one, batch, signal = _rows(fusion)
    n = one.shape[1]
    with torch.no_grad():
        alone = model.logits(one, signal[:1, :1])
        beside = model.logits(batch, signal)
    assert torch.isfinite(beside).all()
    torch.testing.assert_close(beside[:1, :n], alone, rtol=1e-5, atol=1e-5)
    k, pad = 5, batch.shape[1] - n  # prompts of k and pad + k tokens, left-padded
    prompt_alone = one[:, :k]
    prompt_beside = torch.cat([torch.cat([torch.full((1, pad), PAD_ID), prompt_alone], 1),
                               batch[1:, : pad + k]])  # fmt: skip
    generated_alone = model.generate(prompt_alone, prompt_alone != PAD_ID, signal[:1, :1], 4, -1)
    generated = model.generate(prompt_beside, prompt_beside != PAD_ID, signal, 4, -1)
    assert generated[0].tolist() == generated_alone[0].tolist()


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_step_0_is_the_base_model_with_two_ecgs_and_masked_slots(kind: str):
    """Gates at 0: every row, the one with a masked second ECG and one with no ECG at all (all
    its slots masked: no NaN), gets the pretrained model's logits."""
    model = two_ecg_model(kind)
    one, batch, signal = _rows("kv")
    batch, signal = torch.cat([batch, batch[:1]]), torch.cat([signal, signal[:1]])
    signal[2] = float("nan")
    valid = batch != PAD_ID
    with torch.no_grad():
        model.ecg_gate.zero_()
        base = model.lm(input_ids=batch, attention_mask=valid.long()).logits
        fused_logits = model.logits(batch, signal)
    torch.testing.assert_close(fused_logits[valid], base[valid], rtol=1e-6, atol=1e-6)


def test_a_row_without_any_ecg_is_not_nan_and_trains():
    """Every ECG slot of a row masked: its ECG attention is 0 (not NaN), in the output and in
    the gradients."""
    model = two_ecg_model("llama").train()
    _, batch, signal = _rows("kv")
    signal[1] = float("nan")
    targets = torch.where(batch != PAD_ID, batch, -100)
    loss = model.loss(batch, targets, signal)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        hidden = model.logits(batch[1:], signal[1:], ecg_visible=False)
        read = model.logits(batch[1:], signal[1:])
    torch.testing.assert_close(read, hidden, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fusion", ["kv", "prefix"])
def test_first_and_second_ecg_are_told_apart(fusion: str):
    """Swapping the two ECGs changes the logits; so does the order vector alone (the same ECG
    twice, other order vectors)."""
    model = two_ecg_model("llama", fusion)
    _, batch, signal = _rows(fusion)
    ids, pair = batch[1:], signal[1:]
    with torch.no_grad():
        ab = model.logits(ids, pair)
        ba = model.logits(ids, pair.flip(1))
        model.ecg_order.mul_(-1)
        ab_other_marks = model.logits(ids, pair)
    assert (ab - ba).abs().amax() > 1e-3
    assert (ab - ab_other_marks).abs().amax() > 1e-3


@pytest.mark.parametrize("fusion", ["kv", "prefix"])
def test_a_two_ecg_model_at_init_reads_one_ecg_as_the_one_ecg_model(fusion: str):
    """The order vectors start at 0: a one-ECG question in a fresh two-ECG model gets exactly
    the logits of a one-ECG model with the same weights (which has no order vector at all)."""
    kv_gates = fusion == "kv"
    one_model, two_model = (HFReportModel(ModelConfig(fusion=fusion, ecg_tokens=TOKENS,
                                                      encoder_width=8, max_ecgs=e),
                                          tiny_lm("llama"), ECG_ID, PAD_ID).eval()
                            for e in (1, 2))  # fmt: skip
    assert one_model.ecg_order is None and not two_model.ecg_order.any()
    two_model.load_state_dict(one_model.state_dict(), strict=False)
    one, _, signal = _rows(fusion)
    with torch.no_grad():
        if kv_gates:
            one_model.ecg_gate.fill_(1.0)
            two_model.ecg_gate.fill_(1.0)
        torch.testing.assert_close(two_model.logits(one, signal[:1, :1]),
                                   one_model.logits(one, signal[:1, 0]), rtol=0, atol=0)


def test_prefix_slots_take_each_rows_own_ecgs_in_order():
    """The k-th slot of a row takes the row's k-th ECG token, whatever the other rows hold; a
    slot group without an ECG (the shuffle control gives a comparison question one ECG) keeps
    the <ecg> embedding, and a second ECG without a slot group is left out."""
    model = two_ecg_model("llama", "prefix")
    _, batch, signal = _rows("prefix")
    ecg, valid = model._ecg(signal)
    x = model._embed(batch, ecg, valid)
    slot_rows = [x[r][batch[r] == ECG_ID] for r in range(2)]
    torch.testing.assert_close(slot_rows[0], ecg[0, :TOKENS])
    torch.testing.assert_close(slot_rows[1], ecg[1])
    swapped = model._embed(batch.flip(0), ecg, valid)  # row 0: two groups, its second ECG absent
    groups = swapped[0][batch[1] == ECG_ID]
    torch.testing.assert_close(groups[:TOKENS], ecg[0, :TOKENS])
    empty = model.lm.get_input_embeddings().weight[ECG_ID]
    torch.testing.assert_close(groups[TOKENS:], empty.expand(TOKENS, -1))
    torch.testing.assert_close(swapped[1][batch[0] == ECG_ID], ecg[1, :TOKENS])


def test_two_ecg_loss_with_the_prompt_under_no_grad_equals_the_full_loss():
    model = two_ecg_model("llama").train()
    _, batch, signal = _rows("kv")
    targets = torch.full_like(batch, -100)
    targets[:, 4:-1] = batch[:, 5:]
    targets[batch == PAD_ID] = -100
    full = model.loss(batch, targets, signal)
    model.prompt_without_grad = True
    split = model.loss(batch, targets, signal)
    torch.testing.assert_close(split, full, rtol=1e-5, atol=1e-5)
    split.backward()
    assert model.ecg_order.grad[0].abs().sum() > 0 and model.ecg_order.grad[1].abs().sum() > 0


def test_a_one_ecg_model_refuses_two_ecgs_in_one_line():
    model = two_ecg_model("llama", max_ecgs=1)
    _, batch, signal = _rows("kv")
    with pytest.raises(UserError, match="2 ECGs per example; this run takes one"):
        model.logits(batch, signal)
    with torch.no_grad():  # (B, 1, 12, n): one ECG per row, as a one-ECG model always took
        torch.testing.assert_close(model.logits(batch, signal[:, :1]), model.logits(batch, signal[:, 0]))
