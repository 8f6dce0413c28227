"""NumPy transformers whose every matrix product goes through a :class:`MatmulEngine`.

:class:`BertEncoder` is a post-LayerNorm BERT encoder with sentence-transformers' mean pooling
(weighted by the attention mask) and L2 normalisation (all-MiniLM-L6-v2 and kin).
:class:`GPT2Decoder` is a pre-LayerNorm causal decoder with tied input/output embeddings and
the tanh GELU ("gelu_new").  Softmax, LayerNorm and GELU are digital (float32); the products
``query/key/value/attn_out/ffn_up/ffn_down`` (``qkv`` for GPT-2), ``qk`` (Q Kᵀ) and ``av``
(softmax · V) are the engine's.

References
----------
Vaswani et al., "Attention is all you need", NeurIPS 2017, arXiv:1706.03762.
Devlin et al., "BERT", NAACL 2019, arXiv:1810.04805.
Hendrycks & Gimpel, "Gaussian error linear units", arXiv:1606.08415 (exact erf GELU and the
tanh approximation used by GPT-2).
Reimers & Gurevych, "Sentence-BERT", EMNLP 2019, doi:10.18653/v1/D19-1410 (mean pooling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import erf

from ..checks import as_array
from ..errors import InputError
from .matmul import DigitalEngine, MatmulEngine
from .weights import ModelWeights

__all__ = ["BertEncoder", "GPT2Decoder", "TransformerBase", "gelu_erf", "gelu_tanh", "layer_norm", "softmax"]

F32 = np.float32
MASK_VALUE = float(np.finfo(np.float32).min)  # what HF adds to masked scores (exp underflows to 0)


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2))."""
    return (0.5 * x * (1.0 + erf(x / F32(math.sqrt(2.0))))).astype(x.dtype, copy=False)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU: x/2·(1 + tanh(√(2/π)(x + 0.044715 x³)))."""
    c = F32(math.sqrt(2.0 / math.pi))
    return (0.5 * x * (1.0 + np.tanh(c * (x + F32(0.044715) * x**3)))).astype(x.dtype, copy=False)


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis with biased variance (as torch.nn.LayerNorm)."""
    mu = x.mean(axis=-1, keepdims=True)
    d = x - mu
    var = (d * d).mean(axis=-1, keepdims=True)
    return (d / np.sqrt(var + F32(eps)) * g + b).astype(x.dtype, copy=False)


def softmax(s: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, max-subtracted."""
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    b, t, h = x.shape
    return np.ascontiguousarray(x.reshape(b, t, n_heads, h // n_heads).transpose(0, 2, 1, 3))


def _merge(x: np.ndarray) -> np.ndarray:
    b, n, t, d = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3).reshape(b, t, n * d))


class TransformerBase:
    """What the encoders and decoders share: the weights, their shapes and the digital steps."""

    def __init__(self, weights: ModelWeights):
        self.weights = weights
        self.t = weights.tensors
        self.n_layers = weights.n_layers
        self.n_heads = weights.n_heads
        self.hidden = weights.hidden

    @staticmethod
    def _digital(engine, kind: str, layer: int, x: np.ndarray) -> np.ndarray:
        """Tell an engine that counts costs (``engine.nonlinear``) about a digital nonlinearity."""
        note = getattr(engine, "nonlinear", None)
        if note is not None:
            note(kind, layer, x.size)
        return x

    def _check_ids(self, ids, mask):
        vocab = self.t["emb.word"].shape[0]
        kind = np.asarray(ids).dtype.kind
        checked = as_array("ids", ids, ndim=2, low=0, high=vocab - 1)
        if kind not in "iuf" or (kind == "f" and not np.array_equal(checked, np.round(checked))):
            raise InputError(f"ids: expected integer token ids, got {np.asarray(ids).dtype} values such as "
                             f"{np.asarray(ids).ravel()[:3]!r}")
        ids = checked.astype(np.int64)
        if ids.shape[1] > self.weights.max_length or ids.shape[1] == 0:
            raise InputError(f"ids: sequence length {ids.shape[1]} outside [1, {self.weights.max_length}]")
        mask = np.ones(ids.shape) if mask is None else as_array("mask", mask, shape=ids.shape, low=0, high=1)
        return ids, mask.astype(F32)

    def _attention(self, engine, i, q, k, v, bias):
        """Scaled dot-product attention of (B, T, H) projections; bias (B, 1, T|1, T) additive."""
        qh, kh, vh = (_heads(a, self.n_heads) for a in (q, k, v))
        scale = F32(1.0 / math.sqrt(qh.shape[-1]))
        s = engine.matmul("qk", i, qh, np.ascontiguousarray(kh.transpose(0, 1, 3, 2))).astype(F32) * scale
        p = self._digital(engine, "softmax", i, softmax(s + bias).astype(F32))
        return _merge(engine.matmul("av", i, p, vh).astype(F32))


class BertEncoder(TransformerBase):
    """BERT encoder (post-LN) with mean pooling and L2 normalisation.

    Examples
    --------
    >>> model = BertEncoder(load_model())            # doctest: +SKIP
    >>> emb = model.encode(["A cat sits.", "Dogs run."])  # (2, 384), unit norm  # doctest: +SKIP
    """

    def __init__(self, weights: ModelWeights):
        if weights.arch != "bert":
            raise InputError(f"weights: expected a BERT model, got {weights.arch!r}")
        super().__init__(weights)
        self.eps = float(weights.config.get("layer_norm_eps", 1e-12))
        act = weights.config.get("hidden_act", "gelu")
        if act != "gelu":
            raise InputError(f"{weights.path}/config.json: hidden_act {act!r} not supported; expected 'gelu'")

    def forward(self, ids, mask=None, engine: MatmulEngine | None = None, type_ids=None) -> list[np.ndarray]:
        """Hidden states ``[embeddings, layer 1, ..., layer L]``, each (batch, tokens, hidden) float32."""
        engine = engine or DigitalEngine()
        ids, mask = self._check_ids(ids, mask)
        t = self.t
        types = np.zeros_like(ids) if type_ids is None else np.asarray(type_ids, dtype=np.int64)
        x = t["emb.word"][ids] + t["emb.pos"][np.arange(ids.shape[1])][None] + t["emb.type"][types]
        x = self._digital(engine, "layernorm", 0, layer_norm(x.astype(F32), t["emb.ln.g"], t["emb.ln.b"], self.eps))
        bias = ((1.0 - mask) * MASK_VALUE).astype(F32)[:, None, None, :]
        states = [x]
        for i in range(self.n_layers):
            p = f"layer.{i}."
            q, k, v = (engine.matmul(n, i, x, t[p + n + ".w"], t[p + n + ".b"]).astype(F32)
                       for n in ("query", "key", "value"))
            a = engine.matmul("attn_out", i, self._attention(engine, i, q, k, v, bias),
                              t[p + "attn_out.w"], t[p + "attn_out.b"]).astype(F32)
            x = self._digital(engine, "layernorm", i, layer_norm(a + x, t[p + "ln1.g"], t[p + "ln1.b"], self.eps))
            u = gelu_erf(engine.matmul("ffn_up", i, x, t[p + "ffn_up.w"], t[p + "ffn_up.b"]).astype(F32))
            d = engine.matmul("ffn_down", i, self._digital(engine, "gelu_erf", i, u), t[p + "ffn_down.w"],
                              t[p + "ffn_down.b"]).astype(F32)
            x = self._digital(engine, "layernorm", i, layer_norm(d + x, t[p + "ln2.g"], t[p + "ln2.b"], self.eps))
            states.append(x)
        return states

    @staticmethod
    def pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mask-weighted mean over tokens, then L2 normalisation (sentence-transformers)."""
        m = np.asarray(mask, dtype=F32)[..., None]
        mean = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), F32(1e-9))
        return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), F32(1e-12))

    def tokenize(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask (batch, tokens), padded to the longest sentence."""
        if isinstance(sentences, str) or len(sentences) == 0:
            raise InputError(f"sentences: expected a non-empty list of strings, got {sentences!r:.60}")
        enc = self.weights.tokenizer().encode_batch(list(sentences))
        return (np.array([e.ids for e in enc], dtype=np.int64),
                np.array([e.attention_mask for e in enc], dtype=F32))

    def encode(self, sentences: Sequence[str], engine: MatmulEngine | None = None, *,
               return_states: bool = False):
        """Unit-norm sentence embeddings (n, hidden); with ``return_states`` also the hidden states."""
        ids, mask = self.tokenize(sentences)
        states = self.forward(ids, mask, engine)
        emb = self.pool(states[-1], mask)
        return (emb, states, mask) if return_states else emb


class GPT2Decoder(TransformerBase):
    """GPT-2 decoder: pre-LN, causal attention, tanh GELU, tied output embedding."""

    def __init__(self, weights: ModelWeights):
        if weights.arch != "gpt2":
            raise InputError(f"weights: expected a GPT-2 model, got {weights.arch!r}")
        super().__init__(weights)
        self.eps = float(weights.config.get("layer_norm_epsilon", 1e-5))

    def forward(self, ids, mask=None, engine: MatmulEngine | None = None, *, logits: bool = False):
        """Hidden states ``[embeddings, block 1, ..., block L (after ln_f)]``; with ``logits`` also
        the tied-embedding logits (batch, tokens, vocab)."""
        engine = engine or DigitalEngine()
        ids, mask = self._check_ids(ids, mask)
        t, h = self.t, self.hidden
        n = ids.shape[1]
        x = (t["emb.word"][ids] + t["emb.pos"][np.arange(n)][None]).astype(F32)
        causal = np.triu(np.full((n, n), MASK_VALUE, dtype=F32), k=1)
        bias = (causal[None, None] + ((1.0 - mask) * MASK_VALUE).astype(F32)[:, None, None, :]).astype(F32)
        bias = np.maximum(bias, F32(MASK_VALUE))  # two masks must not overflow to -inf
        states = [x]
        for i in range(self.n_layers):
            p = f"layer.{i}."
            a = self._digital(engine, "layernorm", i, layer_norm(x, t[p + "ln1.g"], t[p + "ln1.b"], self.eps))
            qkv = engine.matmul("qkv", i, a, t[p + "qkv.w"], t[p + "qkv.b"]).astype(F32)
            q, k, v = qkv[..., :h], qkv[..., h:2 * h], qkv[..., 2 * h:]
            att = self._attention(engine, i, q, k, v, bias)
            x = x + engine.matmul("attn_out", i, att, t[p + "attn_out.w"], t[p + "attn_out.b"]).astype(F32)
            m = self._digital(engine, "layernorm", i, layer_norm(x, t[p + "ln2.g"], t[p + "ln2.b"], self.eps))
            u = gelu_tanh(engine.matmul("ffn_up", i, m, t[p + "ffn_up.w"], t[p + "ffn_up.b"]).astype(F32))
            self._digital(engine, "gelu_tanh", i, u)
            x = x + engine.matmul("ffn_down", i, u, t[p + "ffn_down.w"], t[p + "ffn_down.b"]).astype(F32)
            states.append(x)
        states[-1] = self._digital(engine, "layernorm", self.n_layers - 1,
                                   layer_norm(x, t["lnf.g"], t["lnf.b"], self.eps))
        if not logits:
            return states
        wte_t = np.ascontiguousarray(t["emb.word"].T)
        return states, engine.matmul("lm_head", self.n_layers - 1, states[-1], wte_t, None).astype(F32)

