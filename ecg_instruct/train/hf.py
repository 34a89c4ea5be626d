"""A pretrained Hugging Face causal LM as the decoder (``train-baseline --model``).

The ECG encoder is the built-in one, projecting to the LM's hidden size; the ECG enters by
``kv`` fusion (MEIT, default: ``kv_fusion.py``, gated LLaMA-Adapter style: zero-initialised
per-layer, per-head gates on a separate softmax over the ECG slots)
or ``prefix`` fusion (LLaVA: the encoder output replaces the ``<ecg>`` slots in
``inputs_embeds``). Training is MEIT's by default: LoRA (r=64,
alpha=128, dropout 0.1) on every attention and MLP projection through ``peft``, plus the
embedding rows (input and output) of the tokens we added, and nothing else of the LM. A
checkpoint therefore holds megabytes: adapters, encoder, new token rows. The base model is
reloaded from ``--model`` and must match the identity recorded in ``run.json``.

Two ECGs per example (``--config ecgqa``, ``ModelConfig.max_ecgs`` 2): each ECG is encoded on
its own into its own ``ecg_tokens`` slots (kv slots, or the slots of its own ``<ecg>``
placeholder in prefix fusion), plus a learned first/second-ECG vector (``ecg_order``). A
one-ECG row beside two-ECG rows has its absent second ECG (all-NaN signal) masked (kv) or never
placed (prefix), so it gets the output it gets alone (tested, also on SmolLM2).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ecg_instruct.errors import UserError
from ecg_instruct.train import kv_fusion
from ecg_instruct.train.model import ECGEncoder

# LoRA targets per family: attention q/k/v/o and the MLP (MEIT's choice).
LORA_TARGETS = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


def lora_targets(model_type: str) -> list[str]:
    return LORA_TARGETS["gpt2" if model_type == "gpt2" else "llama"]


class HFReportModel(nn.Module):
    """ECG encoder + a Hugging Face causal LM, with the built-in model's training interface."""

    def __init__(self, cfg, lm: nn.Module, ecg_id: int, pad_id: int) -> None:
        super().__init__()
        self.cfg, self.lm, self.ecg_id, self.pad_id = cfg, lm, ecg_id, pad_id
        width = kv_fusion.base_of(lm).config.get_text_config().hidden_size
        self.encoder = ECGEncoder(width, cfg.ecg_tokens, cfg.encoder_width)
        if cfg.fusion == "kv":  # unsupported families fail here, before any training
            layers = len(kv_fusion.decoder_layers(lm))
            self.ecg_gate = nn.Parameter(torch.zeros(layers, kv_fusion.head_count(lm)))
            kv_fusion.install(lm)
        # Two-ECG runs: a first/second-ECG vector added to each ECG's tokens. Zero at init, so
        # a one-ECG question starts exactly as in a one-ECG model with the same encoder (and,
        # kv, the gates at 0 keep step 0 the base model whatever it adds). One-ECG models have
        # no such parameter: their checkpoints stay as they were.
        self.ecg_order = nn.Parameter(torch.zeros(cfg.max_ecgs, width)) if cfg.max_ecgs > 1 else None

    def _embed(self, ids: torch.Tensor, ecg: torch.Tensor,
               valid: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Token embeddings; prefix fusion puts the ECG tokens into the ``<ecg>`` slots: the
        k-th slot of a row takes the row's k-th ECG token (first ECG, then second). A slot with
        no real ECG token left keeps the ``<ecg>`` embedding: only the shuffle control, which
        gives a comparison question a one-ECG question's ECG, leaves such slots."""
        x = self.lm.get_input_embeddings()(ids)
        if self.cfg.fusion == "prefix":
            slots = ids == self.ecg_id
            if slots.any():
                count = slots.long().cumsum(1)
                k = (count - 1).clamp(0, ecg.shape[1] - 1)
                source = torch.gather(ecg, 1, k[..., None].expand(-1, -1, ecg.shape[-1]))
                fill = slots & (count <= ecg.shape[1])
                if valid is not None:
                    fill &= torch.gather(valid, 1, k)
                x = torch.where(fill[..., None], source.to(x.dtype), x)
        return x

    def _ecg(self, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ECG tokens (B, M, hidden) in the LM's dtype, and which of them are real (B, M), or
        None when all are. A (B, 12, n) signal is one ECG per row (M = ``ecg_tokens``); a
        (B, E, 12, n) one holds E ECGs per row in order, an absent one all NaN: each is encoded
        on its own (GroupNorm: independent of its batch-mates) and marked by its order vector,
        M = E x ``ecg_tokens``."""
        dtype = kv_fusion.base_of(self.lm).dtype
        if self.ecg_order is None:  # a one-ECG model
            if signal.dim() == 4:
                if signal.shape[1] != 1:
                    raise UserError(f"{signal.shape[1]} ECGs per example; this run takes one",
                                    fix="train with --config ecgqa for two-ECG questions")
                signal = signal[:, 0]
            return self.encoder(signal).to(dtype), None
        if signal.dim() == 3:
            signal = signal[:, None]
        b, e = signal.shape[:2]
        if e > len(self.ecg_order):
            raise UserError(f"{e} ECGs per example; this run takes at most {len(self.ecg_order)}")
        present = ~torch.isnan(signal).flatten(2).all(-1)  # (B, E)
        tokens = self.encoder(torch.nan_to_num(signal).flatten(0, 1))  # (B*E, K, hidden)
        tokens = tokens.view(b, e, -1, tokens.shape[-1]) + self.ecg_order[:e, None, :]
        valid = present[:, :, None].expand(b, e, tokens.shape[2]).reshape(b, -1)
        return tokens.reshape(b, -1, tokens.shape[-1]).to(dtype), valid

    def fusion(self, ecg: torch.Tensor, valid: torch.Tensor | None = None,
               query_from: torch.Tensor | None = None) -> dict:  # fmt: skip
        """Keyword arguments that let the LM's attention read the ECG (kv fusion), else none."""
        if self.cfg.fusion != "kv":
            return {}
        kv = kv_fusion.ecg_keys_values(self.lm, ecg)
        return {"ecg_fusion": kv_fusion.ECGFusion(kv, self.ecg_gate, query_from, valid)}

    def logits(self, ids, signal, ecg_visible: bool = True, keep: int = 0,
               ecg_from: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Right-padded ``ids`` (B, T) -> logits (B, T, V), or (B, keep, V) for the last ``keep``
        positions (the loss skips the prompt's vocabulary projection, ~15 % of a step).
        kv fusion: positions from ``ecg_from`` (B,) on read the ECG (all when not given: training
        and generation pass the last prompt token's position); ``ecg_visible=False`` leaves the
        ECG out: the base model's logits."""
        valid = ids != self.pad_id
        positions = (valid.long().cumsum(1) - 1).clamp(min=0)
        ecg, ecg_valid = self._ecg(signal)
        x = self._embed(ids, ecg, ecg_valid)
        extra = self.fusion(ecg, ecg_valid, ecg_from) if ecg_visible else {}
        if keep:
            extra["logits_to_keep"] = keep
        out = self.lm(inputs_embeds=x, attention_mask=valid.long(), position_ids=positions,
                      use_cache=False, **extra)  # fmt: skip
        return out.logits

    #: kv fusion: run the prompt without gradient (set by ``build_model`` from --prompt-grad).
    prompt_without_grad = False

    def loss(self, ids, targets, signal) -> torch.Tensor:
        start = (targets != -100).int().argmax(1)  # the last prompt token predicts the report
        if self.prompt_without_grad and self.cfg.fusion == "kv":
            return self._loss_prompt_without_grad(ids, targets, signal, start)
        scored = (targets != -100).any(0).nonzero()
        first = int(scored[0]) if len(scored) else 0
        logits = self.logits(ids, signal, keep=ids.shape[1] - first, ecg_from=start)
        targets = targets[:, first:]
        scored = targets != -100
        return F.cross_entropy(logits[scored].float(), targets[scored])

    def _loss_prompt_without_grad(self, ids, targets, signal, start) -> torch.Tensor:
        """The same loss, computed in two passes. The prompt minus its last token does not read
        the ECG, so its keys/values depend only on its text: they are computed under
        ``no_grad`` once per *distinct* prompt of the batch (a dataset has a handful of prompt
        templates) into the LM's KV cache, which is then expanded to the batch rows; the last
        prompt token + report run with gradients on top. The prompt is ~85 % of a SmolLM2
        training sequence (55 of ~65 tokens); this skips its backward pass and most of its
        forward. Gradients reach LoRA, gates and encoder through the report positions (the
        prompt's keys/values count as constants). Values equal ``loss`` (tested)."""
        valid = ids != self.pad_id
        length = valid.sum(1)
        heads = [tuple(ids[row, :s].tolist()) for row, s in enumerate(start.tolist())]
        distinct = list(dict.fromkeys(heads))  # first-occurrence order: deterministic
        which = torch.tensor([distinct.index(h) for h in heads], device=ids.device)
        n_rows, head = len(ids), max(len(h) for h in distinct)
        tail = int((length - start).max())
        p_ids = torch.full((len(distinct), head), self.pad_id, dtype=ids.dtype, device=ids.device)
        for row, h in enumerate(distinct):  # left-padded, so every prompt ends at the same column
            p_ids[row, head - len(h):] = torch.tensor(h, dtype=ids.dtype)
        r_ids = torch.full((n_rows, tail), self.pad_id, dtype=ids.dtype, device=ids.device)
        r_targets = torch.full((n_rows, tail), -100, dtype=targets.dtype, device=ids.device)
        for row, (s, n) in enumerate(zip(start.tolist(), length.tolist(), strict=True)):
            r_ids[row, : n - s] = ids[row, s:n]  # right-padded
            r_targets[row, : n - s] = targets[row, s:n]
        p_valid = p_ids != self.pad_id
        with torch.no_grad():
            out = self.lm(input_ids=p_ids, attention_mask=p_valid.long(), use_cache=True,
                          position_ids=(p_valid.long().cumsum(1) - 1).clamp(min=0),
                          logits_to_keep=1)  # fmt: skip
        cache = out.cache
        cache.reorder_cache(which)  # one row per record (index_select along the batch)
        p_valid = p_valid[which]
        r_valid = r_ids != self.pad_id
        r_valid[:, 0] = True  # the last prompt token (never padding)
        mask = torch.cat([p_valid, r_valid], 1).long()
        positions = p_valid.sum(1, keepdim=True) + torch.arange(tail, device=ids.device)
        ecg, ecg_valid = self._ecg(signal)
        scored = r_targets != -100  # only these positions are projected to the vocabulary
        logits = self.lm(inputs_embeds=self._embed(r_ids, ecg, ecg_valid), attention_mask=mask,
                         position_ids=positions, cache=cache, use_cache=True,
                         logits_to_keep=scored, **self.fusion(ecg, ecg_valid)).logits  # fmt: skip
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), r_targets[scored])

    forward = loss  # DistributedDataParallel synchronises gradients through forward()

    @torch.no_grad()
    def generate(self, ids, valid, signal, max_new_tokens: int, eos_id: int) -> torch.Tensor:
        """Greedy decoding from left-padded prompts, with the LM's own KV cache."""
        ecg, ecg_valid = self._ecg(signal)
        x = self._embed(ids, ecg, ecg_valid)
        positions = (valid.long().cumsum(1) - 1).clamp(min=0)
        extra = self.fusion(ecg, ecg_valid)  # the same ECG slots and gates at every decode step
        if extra:  # kv: the prompt minus its last token without the ECG, then the last token
            out = self.lm(inputs_embeds=x[:, :-1], attention_mask=valid[:, :-1].long(),
                          position_ids=positions[:, :-1], use_cache=True, logits_to_keep=1)
            out = self.lm(inputs_embeds=x[:, -1:], attention_mask=valid.long(),
                          position_ids=positions[:, -1:], cache=out.cache, use_cache=True, **extra)
        else:
            out = self.lm(inputs_embeds=x, attention_mask=valid.long(), position_ids=positions,
                          use_cache=True, logits_to_keep=1)  # fmt: skip
        done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        pos, tokens = positions[:, -1:], []
        for _ in range(max_new_tokens):
            nxt = out.logits[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
            tokens.append(nxt)
            done |= nxt == eos_id
            if bool(done.all()):
                break
            pos = pos + 1
            valid = torch.cat([valid, torch.ones_like(valid[:, :1])], dim=1)
            out = self.lm(input_ids=nxt[:, None], attention_mask=valid.long(), position_ids=pos,
                          cache=out.cache, use_cache=True, **extra)  # fmt: skip
        return torch.stack(tokens, 1)


def _add_lora(cfg, lm, new_token_ids: list[int]):
    """MEIT's LoRA plus trainable rows for the added tokens (input and, if untied, output)."""
    try:
        import peft
    except ImportError as exc:
        raise UserError("LoRA needs peft", fix="pip install 'ecg-instruct[hf]'") from exc
    model_type = lm.config.model_type
    rows = {}
    if new_token_ids:
        names = {m: n for n, m in lm.named_modules()}
        rows[names[lm.get_input_embeddings()].rsplit(".", 1)[-1]] = new_token_ids
        out_emb = lm.get_output_embeddings()
        if out_emb.weight is not lm.get_input_embeddings().weight:  # untied head: its own rows
            rows[names[out_emb].rsplit(".", 1)[-1]] = new_token_ids
    config = peft.LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=lora_targets(model_type), task_type="CAUSAL_LM",
        fan_in_fan_out=model_type == "gpt2",  # GPT-2's Conv1D stores weights transposed
        trainable_token_indices=rows or None,
    )  # fmt: skip
    with warnings.catch_warnings():  # peft reads a transformers attribute deprecated in v5
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        return peft.get_peft_model(lm, config)


def build_model(cfg, encoder) -> HFReportModel:
    """Load the LM (local files only), grow its vocabulary, attach LoRA (default)."""
    from ecg_instruct.train.hf_load import base_identity, load_lm

    lm, _ = load_lm(cfg.hf_model, cfg.dtype)
    identity = base_identity(cfg.hf_model, lm)  # of the base as loaded: before resizing, LoRA
    base_rows = lm.get_input_embeddings().num_embeddings
    if encoder.vocab_size > base_rows:
        lm.resize_token_embeddings(encoder.vocab_size, mean_resizing=False)
    new_ids = list(range(base_rows, encoder.vocab_size))
    if cfg.lora:
        lm = _add_lora(cfg, lm, new_ids)
    if cfg.gradient_checkpointing:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.lora:
            lm.enable_input_require_grads()
    model = HFReportModel(cfg.model, lm, encoder.ecg_id, encoder.pad_id)
    model.prompt_without_grad = not cfg.prompt_grad and not cfg.gradient_checkpointing
    model.base_identity = identity
    return model
