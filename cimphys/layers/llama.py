"""A NumPy Llama decoder whose every matrix product goes through a :class:`MatmulEngine`.

Per block (pre-norm): ``x += W_o · attention(RoPE(W_q h), RoPE(W_k h), W_v h)`` with
``h = RMSNorm(x)``, then ``x += W_down (SiLU(W_gate h') ⊙ W_up h')`` with ``h' = RMSNorm(x)``;
after the last block a final RMSNorm and the output head.  Grouped-query attention: query
head ``j`` reads key/value head ``j // (heads / kv_heads)``; the query heads of one group are
stacked as extra rows of one product against the group's stored K and V, so a CIM array
holding a KV head is read by all of its query heads and written once.  Incremental decoding
keeps K (after RoPE) and V of every past position in a :class:`KVCache`.

RoPE rotates adjacent pairs ``(x[2i], x[2i+1])`` of each head by ``p · θ_i``,
``θ_i = base^(-2i/d)`` (llama.cpp's "normal" rotary mode; the weights are in that layout, see
:mod:`cimphys.layers.llama_weights`).  RMSNorm: ``x / sqrt(mean(x²) + eps) · g``.  Products
through the engine: ``query``, ``key``, ``value``, ``attn_out``, ``ffn_up`` (gate and up
fused), ``ffn_down``, ``lm_head``, and the dynamic ``qk`` and ``av``; RMSNorm, RoPE, softmax
and SiLU are digital float32.

References
----------
H. Touvron et al., "LLaMA", arXiv:2302.13971.  B. Zhang & R. Sennrich, "Root mean square layer
normalization", NeurIPS 2019, arXiv:1910.07467.  J. Su et al., "RoFormer", arXiv:2104.09864.
N. Shazeer, "GLU variants improve transformer", arXiv:2002.05202 (SwiGLU).  J. Ainslie et al.,
"GQA: training generalized multi-query transformer models", EMNLP 2023, arXiv:2305.13245.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .llama_weights import LlamaWeights
from .matmul import DigitalEngine, MatmulEngine
from .transformer import MASK_VALUE, TransformerBase, softmax

__all__ = ["KVCache", "LlamaDecoder", "rms_norm", "rope", "silu"]

F32 = np.float32


def rms_norm(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    """``x / sqrt(mean(x²) + eps) · g`` over the last axis (float32)."""
    ms = (x * x).mean(axis=-1, keepdims=True)
    return (x / np.sqrt(ms + F32(eps)) * g).astype(F32, copy=False)


def silu(x: np.ndarray) -> np.ndarray:
    """``x · sigmoid(x)`` (float32; exp of a large negative argument underflows to 0, no warning)."""
    with np.errstate(over="ignore"):
        return (x / (F32(1.0) + np.exp(-x))).astype(F32, copy=False)


def rope_tables(positions: np.ndarray, head_dim: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin (T, d/2) of ``p · base^(-2i/d)``, computed in float64."""
    inv = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    ang = np.asarray(positions, np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(F32), np.sin(ang).astype(F32)


def rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate adjacent pairs of the last axis of ``x`` (..., T, d) by the angles of (cos, sin) (T, d/2)."""
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


class KVCache:
    """Keys (after RoPE) and values of every past position, per block: (batch, kv_heads, T, d) float32.

    Storage grows by doubling, so appending one token per step costs amortised O(1) copies.
    """

    def __init__(self, n_layers: int):
        self.k: list[np.ndarray | None] = [None] * n_layers
        self.v: list[np.ndarray | None] = [None] * n_layers
        self._len = [0] * n_layers

    @property
    def length(self) -> int:
        """Positions stored (those of block 0; all blocks agree after a full forward pass)."""
        return self._len[0]

    def append(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add (batch, kv_heads, n, d) keys and values; return all stored so far (views)."""
        n0, n = self._len[layer], k.shape[2]
        buf_k, buf_v = self.k[layer], self.v[layer]
        if buf_k is None or buf_k.shape[2] < n0 + n:
            cap = max(2 * (n0 + n), 16)
            new_k = np.zeros(k.shape[:2] + (cap, k.shape[3]), F32)
            new_v = np.zeros_like(new_k)
            if buf_k is not None:
                new_k[:, :, :n0], new_v[:, :, :n0] = buf_k[:, :, :n0], buf_v[:, :, :n0]
            self.k[layer], self.v[layer] = buf_k, buf_v = new_k, new_v
        buf_k[:, :, n0:n0 + n], buf_v[:, :, n0:n0 + n] = k, v
        self._len[layer] = n0 + n
        return buf_k[:, :, :n0 + n], buf_v[:, :, :n0 + n]


class LlamaDecoder(TransformerBase):
    """Llama-family decoder (SmolLM2, Llama 2/3 shapes) on any :class:`MatmulEngine`.

    Examples
    --------
    >>> model = build_model(load_model("smollm2"))           # doctest: +SKIP
    >>> ids, mask = model.tokenize(["The capital of France is"])   # doctest: +SKIP
    >>> states, logits = model.forward(ids, mask, logits=True)      # doctest: +SKIP
    """

    def __init__(self, weights: LlamaWeights):
        if weights.arch != "llama":
            raise InputError(f"weights: expected a Llama model, got {weights.arch!r}")
        super().__init__(weights)
        self.n_kv = weights.n_kv_heads
        self.head_dim = weights.head_dim
        self.eps = float(weights.config["rms_norm_eps"])
        self.base = float(weights.config["rope_theta"])
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = self.weights.tokenizer()
        return self._tokenizer

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and mask (batch, tokens), right-padded to the longest text (mask 0 on padding).

        ``forward`` takes the pair as it comes: ``model.forward(model.tokenize(texts), logits=True)``.
        """
        if isinstance(texts, str) or len(texts) == 0:
            raise InputError(f"texts: expected a non-empty list of strings, got {texts!r:.60}")
        enc = [self.tokenizer.encode(t) for t in texts]
        if min(len(e) for e in enc) == 0:
            raise InputError("texts: a text encodes to no tokens")
        n = max(len(e) for e in enc)
        pad = self.tokenizer.eos_id or 0
        ids = np.array([e + [pad] * (n - len(e)) for e in enc], dtype=np.int64)
        mask = np.array([[1.0] * len(e) + [0.0] * (n - len(e)) for e in enc], dtype=F32)
        return ids, mask

    def new_cache(self) -> KVCache:
        return KVCache(self.n_layers)

    def _ids(self, ids, mask, past: int) -> tuple[np.ndarray, np.ndarray | None]:
        arr = np.asarray(ids)
        if arr.ndim != 2 or arr.shape[1] == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"ids: expected a (batch, tokens) integer array, got shape {arr.shape} {arr.dtype}")
        vocab = self.weights.vocab
        if arr.min() < 0 or arr.max() >= vocab:
            raise InputError(f"ids: token ids must be in [0, {vocab - 1}], got {int(arr.min())}..{int(arr.max())}")
        if past + arr.shape[1] > self.weights.max_length:
            raise InputError(f"ids: {past + arr.shape[1]} positions exceed the context length {self.weights.max_length}")
        if mask is not None:
            mask = np.asarray(mask, F32)
            if mask.shape != (arr.shape[0], past + arr.shape[1]) or not np.isin(mask, (0.0, 1.0)).all():
                raise InputError(f"mask: expected 0/1 of shape {(arr.shape[0], past + arr.shape[1])}, got {mask.shape}")
        return arr.astype(np.int64), mask

    def forward(self, ids, mask=None, engine: MatmulEngine | None = None, *, logits: bool = False,
                cache: KVCache | None = None):
        """Hidden states ``[embeddings, block 1, ..., block L (after the final norm)]`` (batch, n, hidden).

        Parameters
        ----------
        ids : (batch, n) int, or the ``(ids, mask)`` pair of :meth:`tokenize`
            New tokens; with ``cache`` they follow its ``cache.length`` stored positions.
        mask : (batch, past + n) of 0/1, optional
            Key positions to attend to (padding 0), on top of the causal mask.
        engine : MatmulEngine, optional
            Default: float32 :class:`DigitalEngine`.
        logits : bool
            Also return the output head's logits (batch, n, vocab) float32, last.
        cache : KVCache, optional
            Read and extended in place (incremental decoding).
        """
        engine = engine or DigitalEngine()
        if isinstance(ids, tuple) and len(ids) == 2 and mask is None:  # the pair tokenize() returns
            ids, mask = ids
        past = cache.length if cache is not None else 0
        ids, mask = self._ids(ids, mask, past)
        t = self.t
        n = ids.shape[1]
        x = np.ascontiguousarray(t["emb.word"][ids], dtype=F32)
        cos, sin = rope_tables(past + np.arange(n), self.head_dim, self.base)
        bias = self._bias(n, past, mask)
        states = [x]
        for i in range(self.n_layers):
            p = f"layer.{i}."
            h = self._digital(engine, "rmsnorm", i, rms_norm(x, t[p + "attn_norm.g"], self.eps))
            att = self._attend(engine, i, h, cos, sin, bias, cache)
            x = x + engine.matmul("attn_out", i, att, t[p + "attn_out.w"]).astype(F32)
            h = self._digital(engine, "rmsnorm", i, rms_norm(x, t[p + "ffn_norm.g"], self.eps))
            gu = engine.matmul("ffn_up", i, h, t[p + "ffn_up.w"]).astype(F32)
            f = gu.shape[-1] // 2
            a = self._digital(engine, "silu_mul", i, silu(gu[..., :f]) * gu[..., f:])
            x = x + engine.matmul("ffn_down", i, a, t[p + "ffn_down.w"]).astype(F32)
            states.append(x)
        states[-1] = self._digital(engine, "rmsnorm", self.n_layers - 1, rms_norm(x, t["lnf.g"], self.eps))
        if not logits:
            return states
        return states, engine.matmul("lm_head", self.n_layers - 1, states[-1], t["lm_head.w"]).astype(F32)

    def _bias(self, n: int, past: int, mask) -> np.ndarray:
        """Additive (batch|1, 1, group·n, past + n) mask: causal, and padding from ``mask``."""
        q_pos = past + np.arange(n)
        k_pos = np.arange(past + n)
        blocked = np.tile(k_pos[None, :] > q_pos[:, None], (self.n_heads // self.n_kv, 1))[None, None]
        if mask is not None:
            blocked = blocked | (mask == 0)[:, None, None, :]
        return np.where(blocked, F32(MASK_VALUE), F32(0.0)).astype(F32)

    def _attend(self, engine, i, h, cos, sin, bias, cache):
        """Grouped-query attention of normed (B, n, hidden) ``h``; returns (B, n, heads·d)."""
        p = f"layer.{i}."
        b, n, _ = h.shape
        d, nkv, group = self.head_dim, self.n_kv, self.n_heads // self.n_kv
        q, k, v = (engine.matmul(name, i, h, self.t[p + name + ".w"]).astype(F32) for name in ("query", "key", "value"))
        q = rope(q.reshape(b, n, self.n_heads, d).transpose(0, 2, 1, 3), cos, sin)  # (B, H, n, d)
        k = rope(k.reshape(b, n, nkv, d).transpose(0, 2, 1, 3), cos, sin)
        v = np.ascontiguousarray(v.reshape(b, n, nkv, d).transpose(0, 2, 1, 3))
        if cache is not None:
            k, v = cache.append(i, k, v)
        qg = np.ascontiguousarray(q.reshape(b, nkv, group * n, d))  # heads of a group stacked as rows
        scale = F32(1.0 / math.sqrt(d))
        s = engine.matmul("qk", i, qg, np.ascontiguousarray(k.transpose(0, 1, 3, 2))).astype(F32) * scale
        probs = self._digital(engine, "softmax", i, softmax(s + bias).astype(F32))
        o = engine.matmul("av", i, probs, np.ascontiguousarray(v)).astype(F32)  # (B, nkv, group·n, d)
        return np.ascontiguousarray(o.reshape(b, self.n_heads, n, d).transpose(0, 2, 1, 3).reshape(b, n, -1))
