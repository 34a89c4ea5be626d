"""Optional decoder: a Hugging Face causal LM whose weights are already on this machine.

``train-baseline --model PATH`` swaps the small built-in decoder for ``AutoModelForCausalLM``
loaded with ``local_files_only=True`` (nothing is downloaded). The ECG encoder is the same; its
tokens enter through ``inputs_embeds`` at the ``<ecg>`` slots (``prefix`` fusion only: ``kv``
fusion needs each attention layer's key/value projections, which only the built-in decoder
exposes). The LM's own fast tokenizer is used, with our chat tags, ``<ecg>``, ``<pad>`` and
``</s>`` added as special tokens; the extended ``tokenizer.json`` is saved in the run.

``--lora`` trains low-rank adapters through ``peft`` (plus the input/output embeddings, which
must learn the new special tokens) instead of every weight. Checkpoints hold only the trainable
weights; the base model is reloaded from ``--model`` when the run is resumed or evaluated.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ecg_instruct.errors import UserError
from ecg_instruct.train.model import ECGEncoder
from ecg_instruct.train.text import SPECIAL_TOKENS


def _transformers():
    try:
        import transformers
    except ImportError as exc:
        raise UserError(
            "--model needs the transformers package", fix="pip install 'ecg-instruct[hf]'"
        ) from exc
    return transformers


def prepare_tokenizer(model_path: str, out: Path) -> None:
    """The LM's fast tokenizer plus our special tokens, saved as ``out`` (tokenizer.json)."""
    transformers = _transformers()
    try:
        tok = transformers.AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load a tokenizer from {model_path!r}: {exc}") from exc
    if not getattr(tok, "is_fast", False):
        raise UserError(f"{model_path}: only fast (tokenizers-backed) tokenizers are supported")
    backend = tok.backend_tokenizer
    backend.add_special_tokens(SPECIAL_TOKENS)
    backend.save(str(out))


class HFReportModel(nn.Module):
    """ECG encoder + a Hugging Face causal LM, with the built-in model's training interface."""

    def __init__(self, cfg, lm: nn.Module, ecg_id: int, pad_id: int) -> None:
        super().__init__()
        self.cfg, self.lm, self.ecg_id, self.pad_id = cfg, lm, ecg_id, pad_id
        width = lm.get_input_embeddings().embedding_dim
        self.encoder = ECGEncoder(width, cfg.ecg_tokens, cfg.encoder_width)

    def _embed(self, ids: torch.Tensor, ecg: torch.Tensor) -> torch.Tensor:
        x = self.lm.get_input_embeddings()(ids)
        slots = ids == self.ecg_id
        if slots.any():
            x = x.masked_scatter(slots[..., None], ecg.to(x.dtype))
        return x

    def loss(self, ids, targets, signal) -> torch.Tensor:
        valid = ids != self.pad_id
        positions = (valid.long().cumsum(1) - 1).clamp(min=0)
        out = self.lm(
            inputs_embeds=self._embed(ids, self.encoder(signal)),
            attention_mask=valid.long(),
            position_ids=positions,
        )
        keep = targets != -100
        return F.cross_entropy(out.logits[keep].float(), targets[keep])

    @torch.no_grad()
    def generate(self, ids, valid, signal, max_new_tokens: int, eos_id: int) -> torch.Tensor:
        """Greedy decoding from left-padded prompts, with the LM's own KV cache."""
        mask = valid.long()
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        out = self.lm(
            inputs_embeds=self._embed(ids, self.encoder(signal)),
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
        )
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
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            out = self.lm(
                input_ids=nxt[:, None],
                attention_mask=mask,
                position_ids=pos,
                past_key_values=out.past_key_values,
                use_cache=True,
            )
        return torch.stack(tokens, 1)


def build_model(cfg, encoder) -> HFReportModel:
    """Load the LM from ``cfg.hf_model`` (local files only), grow its vocabulary, add LoRA."""
    transformers = _transformers()
    if cfg.model.fusion != "prefix":
        raise UserError(
            "--model supports --fusion prefix only",
            fix="kv fusion needs the built-in decoder (drop --model)",
        )
    try:
        lm = transformers.AutoModelForCausalLM.from_pretrained(
            cfg.hf_model, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load a causal LM from {cfg.hf_model!r}: {exc}") from exc
    lm.resize_token_embeddings(encoder.vocab_size)
    if cfg.lora:
        try:
            import peft
        except ImportError as exc:
            raise UserError("--lora needs peft", fix="pip install 'ecg-instruct[hf]'") from exc
        lm = peft.get_peft_model(
            lm,
            peft.LoraConfig(
                r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, lora_dropout=0.05,
                target_modules="all-linear", task_type="CAUSAL_LM",
            ),  # fmt: skip
        )
        # the added special tokens need trainable embeddings (and an output row each)
        lm.get_input_embeddings().weight.requires_grad_(True)
        lm.get_output_embeddings().weight.requires_grad_(True)
    return HFReportModel(cfg.model, lm, encoder.ecg_id, encoder.pad_id)
