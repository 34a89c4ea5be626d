"""MEIT key/value fusion on a pretrained Hugging Face causal LM, without copying its modelling code.

The ECG encoder's output (B, K, hidden) goes, in every decoder layer, through that layer's own
input norm and key/value projections (LoRA included when attached), exactly as a text token's
hidden state would, and the K resulting key/value pairs are prepended to the layer's attention.
The LM gains no parameter; the ECG side owns one zero-initialised gate per layer on the values
(see ``ecg_keys_values``). The entry point is the library's own cache interface: a ``Cache``
whose ``update`` returns ``[ECG keys, text keys]`` for each layer, plus a 4-D attention mask in
which every text position sees all K ECG slots and, causally, the text before it. Gradients reach
the encoder through the cache because nothing in it is detached.

Positions: the ECG slots carry no text position. With rotary embeddings they are rotated as
position 0 (the identity rotation, the same convention as prefix tuning), and the text keeps
positions 0..T-1, so the base model's positional behaviour on the text is untouched; GPT-2's
learned absolute positions are added to text embeddings only.

Supported families and how to add one: ``FAMILIES`` maps a config ``model_type`` to the
function that returns a layer's ECG keys/values. A LLaMA-like family (``self_attn.k_proj/v_proj``,
``input_layernorm``, ``model.rotary_emb``) only needs its ``model_type`` added to ``LLAMA_LIKE``;
another layout needs a function like ``_gpt2_layer_kv``.
"""

from __future__ import annotations

import sys

import torch
from transformers import DynamicCache

from ecg_instruct.errors import UserError
from ecg_instruct.train.model import attention_mask

LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3")


def base_of(lm):
    """The plain ``*ForCausalLM`` inside a peft wrapper (its modules already carry LoRA)."""
    return lm.get_base_model() if hasattr(lm, "get_base_model") else lm


def family(lm) -> str:
    model_type = base_of(lm).config.model_type
    if model_type not in LLAMA_LIKE and model_type != "gpt2":
        raise UserError(
            f"--fusion kv does not support {model_type!r} models yet",
            fix=f"use --fusion prefix, or a {'/'.join(LLAMA_LIKE)}/gpt2 model (docs/training.md "
            "says how to add a family)",
        )
    return model_type


def decoder_layers(lm) -> list:
    base = base_of(lm)
    return list(base.transformer.h if family(lm) == "gpt2" else base.model.layers)


def _llama_layer_kv(lm, layer, ecg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    attn = layer.self_attn
    h = layer.input_layernorm(ecg)
    shape = (*h.shape[:-1], -1, attn.head_dim)
    k = attn.k_proj(h).view(shape)
    if hasattr(attn, "k_norm"):  # Qwen3-style per-head key norm, applied before the rotation
        k = attn.k_norm(k)
    k, v = k.transpose(1, 2), attn.v_proj(h).view(shape).transpose(1, 2)
    # Rotate as position 0 with the model's own rotary embedding and rotation function.
    positions = torch.zeros(ecg.shape[:2], dtype=torch.long, device=ecg.device)
    cos, sin = base_of(lm).model.rotary_emb(h, positions)
    rotate = sys.modules[type(attn).__module__].apply_rotary_pos_emb
    _, k = rotate(k, k, cos, sin)
    return k, v


def _gpt2_layer_kv(lm, layer, ecg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    attn = layer.attn
    _, k, v = attn.c_attn(layer.ln_1(ecg)).split(attn.split_size, dim=2)
    shape = (*k.shape[:-1], -1, attn.head_dim)
    return k.view(shape).transpose(1, 2), v.view(shape).transpose(1, 2)


def ecg_keys_values(
    lm, ecg: torch.Tensor, value_gate: torch.Tensor | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: the ECG (B, K, hidden) as (keys, values) of shape (B, kv_heads, K, head_dim).

    ``value_gate`` (one scalar per layer, owned by the ECG side, zero at start) scales the
    values: an untrained ECG slot then adds nothing to the text's hidden states, so training
    starts from the pretrained model's behaviour instead of from noise injected into every
    layer (SmolLM2: first-batch loss 14.2 ungated, 4.5 gated, 5.0 with the ECG hidden)."""
    layer_kv = _gpt2_layer_kv if family(lm) == "gpt2" else _llama_layer_kv
    out = []
    for i, layer in enumerate(decoder_layers(lm)):
        k, v = layer_kv(lm, layer, ecg)
        out.append((k, v if value_gate is None else v * value_gate[i].to(v.dtype)))
    return out


class ECGPrefixCache(DynamicCache):
    """Training-time cache: prepends each layer's ECG keys/values and stores nothing, so a
    gradient-checkpointing replay of a layer sees exactly what the first pass saw."""

    def __init__(self, kv: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        super().__init__()
        self.ecg_kv = kv

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        k, v = self.ecg_kv[layer_idx]
        return torch.cat([k.to(key_states.dtype), key_states], -2), torch.cat(
            [v.to(value_states.dtype), value_states], -2
        )

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.ecg_kv[0][0].shape[-2]


def prefilled_cache(lm, kv: list[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    """Generation-time cache: a normal ``DynamicCache`` that starts with the ECG slots."""
    cache = DynamicCache(config=base_of(lm).config)
    for layer_idx, (k, v) in enumerate(kv):
        cache.update(k, v, layer_idx)
    return cache


def additive_mask(key_valid: torch.Tensor, n_query: int, n_ecg: int, dtype, ecg_visible=True):
    """(B, 1, T, K + S) float mask (0 = attend, dtype min = hidden) that every attention
    implementation accepts: ECG slots visible to all queries, text causal and unpadded."""
    allowed = attention_mask(key_valid, n_query, n_ecg)
    if not ecg_visible:
        allowed = allowed.clone()
        allowed[..., :n_ecg] = False
    zero = torch.zeros((), dtype=dtype, device=key_valid.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


def allow_checkpointing_with_cache(lm) -> None:
    """Gradient checkpointing drops a layer's cache unless the layer declares it only reads it
    (``_can_checkpoint_with_cache``), which is true of ``ECGPrefixCache``."""
    for layer in decoder_layers(lm):
        layer._can_checkpoint_with_cache = True
