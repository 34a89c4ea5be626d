"""MEIT key/value fusion on a pretrained Hugging Face causal LM, gated LLaMA-Adapter style.

The ECG encoder's output (B, K, hidden) goes, in every decoder layer, through that layer's own
input norm and key/value projections (LoRA included when attached), exactly as a text token's
hidden state would, giving K key/value pairs per layer (MEIT). How the text reads them is
LLaMA-Adapter's zero-init attention: each text query attends to the K ECG slots with a softmax
of its *own* (over the ECG slots only), and that attention output, multiplied by a per-layer,
per-head gate ``tanh(g)`` with ``g`` initialised to 0, is added to the layer's ordinary text
attention output. The text's own softmax never sees the ECG keys, so with the gate at 0 the
fused model *is* the pretrained model, bit for bit, with the ECG visible (tested on SmolLM2).
Putting the ECG slots in the text's softmax (MEIT's plain concatenation) and gating only their
values does not: the ECG keys still take softmax share from the text (measured on SmolLM2 at
step 0: max logit difference 34).

No modelling code is copied. The entry point is the library's own attention interface:
``install`` registers ``ecg_gated_<impl>`` (the model's attention implementation, e.g. ``sdpa``,
wrapped) in ``transformers``' ``AttentionInterface`` and points the model's config at it. The
ECG keys/values and gates reach each layer's attention as a keyword argument (``ecg_fusion``)
that ``transformers`` passes from the model's ``forward`` down to the attention function; a
call without it is the unchanged base model. Generation therefore needs no special cache: the
text's KV cache is the LM's own, and every decode step passes the same ``ecg_fusion``.

Which text positions read the ECG: the prompt's last token (it predicts the report's first
token) and every report token. Earlier prompt positions do not, so the prompt's hidden states
and keys/values are the same for every record with the same prompt text: training computes
them once per distinct prompt (``hf.HFReportModel``), generation prefills them without the ECG.

Two ECGs (ECG-QA comparisons): each ECG fills its own group of K slots, marked first/second
by a learned vector added to its tokens (``hf.HFReportModel``); the slots of a one-ECG row's
absent second ECG are masked in the ECG softmax (``ECGFusion.valid``).

Positions: the ECG slots carry no position (no rotary rotation, no learned position); the
text keeps positions 0..T-1, so the base model's positional behaviour is untouched.

Supported families: ``FAMILIES`` maps a config ``model_type`` to the function that returns a
layer's ECG keys/values. A LLaMA-like family (``self_attn.k_proj/v_proj``, ``input_layernorm``)
only needs its ``model_type`` added to ``LLAMA_LIKE``; another layout needs a function like
``_gpt2_layer_kv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from ecg_instruct.errors import UserError

LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3")
PREFIX = "ecg_gated_"


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


def head_count(lm) -> int:
    config = base_of(lm).config.get_text_config()
    return int(getattr(config, "num_attention_heads", None) or config.n_head)


def _llama_layer_kv(layer, ecg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    attn = layer.self_attn
    h = layer.input_layernorm(ecg)
    shape = (*h.shape[:-1], -1, attn.head_dim)
    k = attn.k_proj(h).view(shape)
    if hasattr(attn, "k_norm"):  # Qwen3-style per-head key norm
        k = attn.k_norm(k)
    return k.transpose(1, 2), attn.v_proj(h).view(shape).transpose(1, 2)


def _gpt2_layer_kv(layer, ecg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    attn = layer.attn
    _, k, v = attn.c_attn(layer.ln_1(ecg)).split(attn.split_size, dim=2)
    shape = (*k.shape[:-1], -1, attn.head_dim)
    return k.view(shape).transpose(1, 2), v.view(shape).transpose(1, 2)


def ecg_keys_values(lm, ecg: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: the ECG (B, K, hidden) as (keys, values) of shape (B, kv_heads, K, head_dim)."""
    layer_kv = _gpt2_layer_kv if family(lm) == "gpt2" else _llama_layer_kv
    return [layer_kv(layer, ecg) for layer in decoder_layers(lm)]


@dataclass
class ECGFusion:
    """What every layer's attention needs to read the ECG: its keys/values, the gates
    (n_layers, n_heads), raw (``tanh`` is applied in the attention), optionally
    ``query_from`` (B,): per row, the first query index of this call that reads the ECG (the
    ECG is read from the prompt's last token on; earlier prompt positions do not see it), and
    ``valid`` (B, K): which slots hold a real ECG (two-ECG batches; None: all)."""

    kv: list[tuple[torch.Tensor, torch.Tensor]]
    gate: torch.Tensor
    query_from: torch.Tensor | None = None
    valid: torch.Tensor | None = None  # (B, K): False on the slots of an absent ECG


def _masked(scores: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the ECG slots with the slots of an absent ECG (``valid`` False) left out:
    they get weight 0, so a one-ECG row beside two-ECG rows reads what it reads alone. Masked
    scores are the dtype's minimum, not -inf: a row with every slot masked gets uniform
    weights, set to 0 after the softmax, and neither its output nor its gradient is NaN."""
    if valid is None:
        return torch.softmax(scores, -1)
    hidden = ~valid[:, None, None, :]
    weights = torch.softmax(scores.masked_fill(hidden, torch.finfo(scores.dtype).min), -1)
    return weights.masked_fill(hidden, 0.0)


def ecg_attention(module, query: torch.Tensor, fusion: ECGFusion) -> torch.Tensor:
    """The gated ECG attention output of one layer, (B, T, heads, head_dim): the queries'
    own softmax over the ECG slots, times ``tanh(gate)`` per head."""
    k, v = fusion.kv[module.layer_idx]
    heads = query.shape[1]
    if k.shape[1] != heads:  # grouped-query attention: each key/value head serves a group
        k = k.repeat_interleave(heads // k.shape[1], dim=1)
        v = v.repeat_interleave(heads // v.shape[1], dim=1)
    scaling = getattr(module, "scaling", None) or query.shape[-1] ** -0.5
    weights = _masked((query @ k.transpose(-1, -2).to(query.dtype)).float() * scaling, fusion.valid)
    out = weights.to(v.dtype) @ v  # (B, H, T, D)
    gate = torch.tanh(fusion.gate[module.layer_idx]).to(out.dtype)
    out = out * gate[None, :, None, None]
    if fusion.query_from is not None:
        reads = torch.arange(out.shape[2], device=out.device) >= fusion.query_from[:, None]
        out = out * reads[:, None, :, None].to(out.dtype)
    return out.transpose(1, 2).to(query.dtype)


def _gated(base_name: str, base_fn):
    def attention(module, query, key, value, attention_mask, **kwargs):
        fusion = kwargs.pop("ecg_fusion", None)
        out, weights = base_fn(module, query, key, value, attention_mask, **kwargs)
        if fusion is not None:
            out = out + ecg_attention(module, query, fusion)
        return out, weights

    attention.__name__ = PREFIX + base_name
    return attention


def install(lm) -> None:
    """Point the model's attention at ``ecg_gated_<its implementation>`` (registered once per
    process). Without an ``ecg_fusion`` keyword the wrapped function is the original."""
    config = base_of(lm).config
    impl = config._attn_implementation or "eager"
    if impl.startswith(PREFIX):
        return
    name = PREFIX + impl
    if name not in ALL_ATTENTION_FUNCTIONS:
        if impl == "eager":
            import sys

            module = sys.modules[type(decoder_layers(lm)[0]).__module__]
            base_fn = module.eager_attention_forward
        else:
            base_fn = ALL_ATTENTION_FUNCTIONS[impl]
        AttentionInterface.register(name, _gated(impl, base_fn))
        ALL_MASK_ATTENTION_FUNCTIONS.register(name, ALL_MASK_ATTENTION_FUNCTIONS[impl])
    for sub in {id(c): c for c in (config, config.get_text_config())}.values():
        sub._attn_implementation = name
