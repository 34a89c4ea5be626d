"""ECG encoder + causal Transformer decoder, with two ways to let the text see the ECG.

- ``prefix`` (LLaVA-style): the encoder's ECG tokens replace the ``<ecg>`` slots in the prompt
  and are attended to like any other position.
- ``kv`` (MEIT): the ECG tokens are projected by each attention layer's *own* key/value weights
  and prepended as extra key/value slots in every layer. The decoder gains no parameters; the
  ECG tokens carry no text position and are visible to every text position.

Imported only when torch is installed (see ``ecg_instruct.train._torch``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ecg_instruct.train.config import ModelConfig


def _norm(channels: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: a record's encoding must not depend on its batch-mates, so
    # evaluation with any batch size (or one record) gives identical reports.
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock1d(nn.Module):
    """Two 7-tap convolutions with a skip connection (He et al. 2016, in 1-D)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, 7, stride=stride, padding=3, bias=False)
        self.norm1 = _norm(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 7, padding=3, bias=False)
        self.norm2 = _norm(c_out)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), _norm(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(h)) + self.skip(x))


class ECGEncoder(nn.Module):
    """12 leads of any length -> ``n_tokens`` vectors of width ``d_model``.

    A strided stem and four residual stages downsample 32x; adaptive average pooling then cuts
    the remaining time axis into ``n_tokens`` equal windows, so 100 Hz and 500 Hz records (or
    2.5 s and 10 s) all yield the same number of ECG tokens, each summarising a time window.
    """

    def __init__(self, d_model: int, n_tokens: int, width: int = 64, leads: int = 12) -> None:
        super().__init__()
        w = [width, width, 2 * width, 4 * width]
        self.stem = nn.Sequential(
            nn.Conv1d(leads, w[0], 15, stride=2, padding=7, bias=False),
            _norm(w[0]),
            nn.ReLU(),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        self.stages = nn.Sequential(
            ResBlock1d(w[0], w[0], 1),
            ResBlock1d(w[0], w[1], 2),
            ResBlock1d(w[1], w[2], 2),
            ResBlock1d(w[2], w[3], 2),
        )
        self.pool = nn.AdaptiveAvgPool1d(n_tokens)
        self.proj = nn.Linear(w[3], d_model)
        self.pos = nn.Parameter(torch.zeros(n_tokens, d_model))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        # Remove each lead's baseline (median) but keep amplitudes in mV: voltage criteria
        # (e.g. LVH) live in the absolute amplitude.
        x = signal - signal.median(dim=-1, keepdim=True).values
        h = self.pool(self.stages(self.stem(x)))  # (B, C, n_tokens)
        return self.norm(self.proj(h.transpose(1, 2)) + self.pos)


class Attention(nn.Module):
    """Multi-head self-attention with an optional KV cache and optional ECG key/value slots."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.d, self.h = cfg.d_model, cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.h, self.d // self.h).transpose(1, 2)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MEIT fusion: the ECG through this layer's own key and value projections."""
        k, v = F.linear(memory, self.qkv.weight[self.d :], self.qkv.bias[self.d :]).split(
            self.d, dim=-1
        )
        return self._heads(k), self._heads(v)

    def forward(self, x, mask, memory=None, cache=None):
        q, k, v = (self._heads(t) for t in self.qkv(x).split(self.d, dim=-1))
        if cache is not None:  # incremental decoding: append to this layer's past keys/values
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        if memory is not None:
            mk, mv = self.memory_kv(memory)
            k, v = torch.cat([mk, k], 2), torch.cat([mv, v], 2)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        b, _, t, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, self.d))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model),
            nn.GELU(),
            nn.Linear(4 * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x, mask, memory=None, cache=None):
        x = x + self.attn(self.ln1(x), mask, memory, cache)
        return x + self.mlp(self.ln2(x))


def attention_mask(key_valid: torch.Tensor, n_query: int, n_memory: int,
                   memory_valid: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean (B, 1, T, M + S) mask: causal over the S text keys (the last T are the queries),
    padding keys hidden, the M ECG memory slots visible (those of a row's absent second ECG,
    ``memory_valid`` False, hidden). Every query also sees itself, so a padding query never has
    an all-masked row (which would turn into NaN)."""
    b, s = key_valid.shape
    past = s - n_query
    i = torch.arange(n_query, device=key_valid.device)[:, None] + past
    j = torch.arange(s, device=key_valid.device)[None, :]
    m = ((j <= i)[None] & key_valid[:, None, :]) | (j == i)[None]
    if n_memory:
        memory = (m.new_ones(b, n_query, n_memory) if memory_valid is None
                  else memory_valid[:, None, :].expand(b, n_query, n_memory))
        m = torch.cat([memory, m], dim=-1)
    return m[:, None]


class ECGReportModel(nn.Module):
    """The whole baseline: ``ECGEncoder`` -> fusion -> decoder -> tied LM head."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, ecg_id: int, pad_id: int) -> None:
        super().__init__()
        self.cfg, self.ecg_id, self.pad_id = cfg, ecg_id, pad_id
        self.encoder = ECGEncoder(cfg.d_model, cfg.ecg_tokens, cfg.encoder_width)
        self.tok_emb = nn.Embedding(vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying, as in GPT-2
        # several ECGs per example (ECG-QA comparisons): each ECG's tokens get its own slots
        # plus a learned "first / second ECG" vector; absent for one-ECG models (checkpoints
        # of those stay loadable)
        self.ecg_order = nn.Embedding(cfg.max_ecgs, cfg.d_model) if cfg.max_ecgs > 1 else None
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("attn.out.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def encode(self, signal):
        """ECG tokens (B, M, d) and which are real (B, M) or None: a (B, 12, n) signal gives
        ``ecg_tokens`` per row; a (B, E, 12, n) one (E ECGs per row, an absent one all NaN)
        gives E x ``ecg_tokens``, each ECG's marked by its order embedding."""
        if signal.dim() == 3:
            return self.encoder(signal), None
        if self.ecg_order is None or signal.shape[1] > self.ecg_order.num_embeddings:
            raise ValueError(f"{signal.shape[1]} ECGs per example; this model takes "
                             f"{self.cfg.max_ecgs} (ModelConfig.max_ecgs)")
        b, e = signal.shape[:2]
        present = ~torch.isnan(signal).flatten(2).all(-1)  # (B, E)
        tokens = self.encoder(torch.nan_to_num(signal).flatten(0, 1))  # (B*E, T, d)
        tokens = tokens.view(b, e, -1, tokens.shape[-1]) + self.ecg_order.weight[:e, None, :]
        valid = present[:, :, None].expand(b, e, tokens.shape[2]).reshape(b, -1)
        return tokens.reshape(b, -1, tokens.shape[-1]), valid

    def hidden(self, ids, positions, key_valid, ecg, caches=None, ecg_valid=None):
        """Decoder states for ``ids``; ``ecg`` is the encoder output (B, M, d), ``ecg_valid``
        which of its slots hold a real ECG (None: all)."""
        if positions.max() >= self.cfg.block_size:
            raise ValueError(f"sequence longer than block_size={self.cfg.block_size}")
        x = self.tok_emb(ids)
        memory = None
        if self.cfg.fusion == "prefix":
            slots = ids == self.ecg_id
            if slots.any():  # fills the <ecg> slots row by row, in order (real ECGs only)
                source = ecg if ecg_valid is None else ecg[ecg_valid]
                x = x.masked_scatter(slots[..., None], source.to(x.dtype))
        else:
            memory = ecg
        x = self.drop(x + self.pos_emb(positions))
        mask = attention_mask(key_valid, ids.shape[1], 0 if memory is None else memory.shape[1],
                              None if memory is None else ecg_valid)
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, memory, None if caches is None else caches[layer])
        return self.ln_f(x)

    def loss(self, ids, targets, signal) -> torch.Tensor:
        """Mean cross-entropy over report tokens (targets != -100)."""
        b, t = ids.shape
        positions = torch.arange(t, device=ids.device).expand(b, t)
        ecg, valid = self.encode(signal)
        h = self.hidden(ids, positions, ids != self.pad_id, ecg, ecg_valid=valid)
        keep = targets != -100
        logits = self.lm_head(h[keep])  # only where there is something to predict
        return F.cross_entropy(logits.float(), targets[keep])

    forward = loss  # DistributedDataParallel synchronises gradients through forward()

    @torch.no_grad()
    def generate(self, ids, valid, signal, max_new_tokens: int, eos_id: int) -> torch.Tensor:
        """Greedy decoding from left-padded prompts with a KV cache; returns (B, <=max_new)."""
        ecg, ecg_valid = self.encode(signal)
        positions = (valid.long().cumsum(1) - 1).clamp(min=0)
        caches = [{} for _ in self.blocks]
        h = self.hidden(ids, positions, valid, ecg, caches, ecg_valid)
        done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        out = []
        pos = positions[:, -1:]
        for _ in range(max_new_tokens):
            nxt = self.lm_head(h[:, -1]).argmax(-1)  # project only the last position
            nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
            out.append(nxt)
            done |= nxt == eos_id
            if bool(done.all()) or pos.max() + 1 >= self.cfg.block_size:
                break
            pos = pos + 1
            valid = torch.cat([valid, torch.ones_like(valid[:, :1])], dim=1)
            h = self.hidden(nxt[:, None], pos, valid, ecg, caches, ecg_valid)
        return torch.stack(out, 1)
