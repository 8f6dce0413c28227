"""Checked Llama-family weights: canonical names, shapes, rotary layout, and the safetensors reader.

Both sources, GGUF files (:mod:`cimphys.layers.gguf`) and Hugging Face safetensors folders
(``config.json`` with ``model_type = "llama"``), end here as one :class:`LlamaWeights` with the
canonical names :class:`~cimphys.layers.llama.LlamaDecoder` reads:

- ``emb.word`` (vocab, hidden): token embedding (a transposed view of ``lm_head.w`` when tied);
- ``lm_head.w`` (hidden, vocab): output projection;
- ``lnf.g``, ``layer.{i}.attn_norm.g``, ``layer.{i}.ffn_norm.g`` (hidden,): RMSNorm gains;
- ``layer.{i}.query.w`` (hidden, heads·d), ``key.w`` / ``value.w`` (hidden, kv_heads·d),
  ``attn_out.w`` (heads·d, hidden), ``ffn_down.w`` (ffn, hidden);
- ``layer.{i}.ffn_up.w`` (hidden, 2·ffn): the SwiGLU gate (first ffn columns) and up projections
  side by side, one product through the engine (as GPT-2's fused ``qkv``).

Linear weights are ``(in, out)`` float32 (``y = x @ w``).  Query and key weights are kept in
llama.cpp's rotary layout (RoPE on adjacent pairs 2i, 2i+1); Hugging Face checkpoints store
them for rotation of the two halves of each head, and are permuted here into that layout
(the permutation of llama.cpp's ``convert_hf_to_gguf.py``), which leaves the attention scores
unchanged.

References
----------
H. Touvron et al., "LLaMA: open and efficient foundation language models", arXiv:2302.13971.
J. Su et al., "RoFormer: enhanced transformer with rotary position embedding", arXiv:2104.09864.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import InputError
from .weights import SAFETENSORS_FILE, ModelWeights

__all__ = ["LlamaWeights", "canonical_llama", "hf_to_interleaved", "load_llama_folder"]

_REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


@dataclass(frozen=True)
class LlamaWeights(ModelWeights):
    """Weights of a Llama-family decoder (see the module docstring for names and layouts).

    Attributes beyond :class:`~cimphys.layers.weights.ModelWeights`
    -----------------------------------------------------------------
    quant : mapping of str to QuantisedTensor
        The file's quantised matrices by GGUF name (empty for float checkpoints).
    tokenizer_data : mapping
        GGUF tokenizer fields (tokens, merges, token types, pre-tokenizer, chat template).
    metadata : mapping
        Every GGUF metadata field (empty for safetensors folders).
    """

    quant: Any = field(default_factory=lambda: MappingProxyType({}))
    tokenizer_data: Any = field(default_factory=lambda: MappingProxyType({}))
    metadata: Any = field(default_factory=lambda: MappingProxyType({}))

    @property
    def n_layers(self) -> int:
        return int(self.config["num_hidden_layers"])

    @property
    def hidden(self) -> int:
        return int(self.config["hidden_size"])

    @property
    def n_heads(self) -> int:
        return int(self.config["num_attention_heads"])

    @property
    def n_kv_heads(self) -> int:
        return int(self.config.get("num_key_value_heads") or self.n_heads)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.n_heads

    @property
    def vocab(self) -> int:
        return int(self.tensors["lm_head.w"].shape[1])

    def tokenizer(self):
        """A :class:`~cimphys.layers.tokenizer.LlamaTokenizer` (from the GGUF fields or tokenizer.json)."""
        from .tokenizer import LlamaTokenizer

        if self.tokenizer_data.get("tokens") is not None:
            return LlamaTokenizer.from_gguf(self.tokenizer_data, self.path)
        if self._tokenizer_file is None:
            raise InputError(f"{self.path}: no tokenizer in the model; pass token ids instead")
        return LlamaTokenizer.from_file(self._tokenizer_file, self.config)


def hf_to_interleaved(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Rows of a Hugging Face q/k weight (out, in) permuted to llama.cpp's rotary layout.

    Within each head of size d, HF row ``j`` (half ``j // (d/2)``, index ``j % (d/2)``) moves to
    row ``2 (j % (d/2)) + j // (d/2)``: the pair (i, i + d/2) becomes (2i, 2i + 1).
    """
    out, n_in = w.shape
    d = out // n_heads
    return w.reshape(n_heads, 2, d // 2, n_in).swapaxes(1, 2).reshape(out, n_in)


def _check_config(cfg: dict, where: str) -> None:
    missing = [k for k in _REQUIRED if k not in cfg]
    if missing:
        raise InputError(f"{where}: missing config keys {missing} for a Llama model")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise InputError(f"{where}: hidden_size {cfg['hidden_size']} is not a multiple of "
                         f"num_attention_heads {cfg['num_attention_heads']}")
    kv = cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    if cfg["num_attention_heads"] % kv:
        raise InputError(f"{where}: num_attention_heads {cfg['num_attention_heads']} is not a multiple "
                         f"of num_key_value_heads {kv}")


def canonical_llama(raw: dict, cfg: dict, names: dict, where: str, *, interleaved_rope: bool) -> dict:
    """Canonical ``(in, out)`` float32 tensors from ``raw`` (source name -> (out, in) array).

    ``names`` maps canonical suffixes to source names (``{i}`` the block).  ``raw`` is emptied
    as it is read (the model is large).  Raises :class:`InputError` naming the missing or
    misshapen tensor.
    """
    _check_config(cfg, where)
    h, f, v = int(cfg["hidden_size"]), int(cfg["intermediate_size"]), int(cfg["vocab_size"])
    nh = int(cfg["num_attention_heads"])
    nkv = int(cfg.get("num_key_value_heads") or nh)
    d = h // nh

    def take(key: str, shape: tuple[int, ...], i: int | None = None) -> np.ndarray:
        name = names[key].format(i=i)
        if name not in raw:
            raise InputError(f"{where}: tensor {name!r} is missing (expected shape {shape})")
        arr = np.asarray(raw.pop(name), np.float32)
        if arr.ndim == 2 and arr.shape[0] == 1 and len(shape) == 1:
            arr = arr[0]
        if tuple(arr.shape) != shape:
            raise InputError(f"{where}: tensor {name!r} has shape {tuple(arr.shape)}, expected {shape}")
        if not np.isfinite(arr).all():
            raise InputError(f"{where}: tensor {name!r} holds non-finite values")
        return arr

    emb = take("emb.word", (v, h))
    tied = names["lm_head"] not in raw
    lm_head = np.ascontiguousarray(emb.T) if tied else np.ascontiguousarray(take("lm_head", (v, h)).T)
    out = {"lm_head.w": lm_head, "emb.word": lm_head.T if tied else emb, "lnf.g": take("lnf.g", (h,))}
    for i in range(int(cfg["num_hidden_layers"])):
        p = f"layer.{i}."
        out[p + "attn_norm.g"] = take("attn_norm.g", (h,), i)
        out[p + "ffn_norm.g"] = take("ffn_norm.g", (h,), i)
        for key, rows, heads in (("query", nh * d, nh), ("key", nkv * d, nkv)):
            w = take(key, (rows, h), i)
            out[p + key + ".w"] = np.ascontiguousarray((w if interleaved_rope else hf_to_interleaved(w, heads)).T)
        out[p + "value.w"] = np.ascontiguousarray(take("value", (nkv * d, h), i).T)
        out[p + "attn_out.w"] = np.ascontiguousarray(take("attn_out", (h, nh * d), i).T)
        out[p + "ffn_up.w"] = np.ascontiguousarray(np.concatenate(
            [take("ffn_gate", (f, h), i), take("ffn_up", (f, h), i)], axis=0).T)
        out[p + "ffn_down.w"] = np.ascontiguousarray(take("ffn_down", (h, f), i).T)
    return out


_HF_NAMES = {
    "emb.word": "model.embed_tokens.weight", "lnf.g": "model.norm.weight", "lm_head": "lm_head.weight",
    "attn_norm.g": "model.layers.{i}.input_layernorm.weight",
    "ffn_norm.g": "model.layers.{i}.post_attention_layernorm.weight",
    "query": "model.layers.{i}.self_attn.q_proj.weight", "key": "model.layers.{i}.self_attn.k_proj.weight",
    "value": "model.layers.{i}.self_attn.v_proj.weight", "attn_out": "model.layers.{i}.self_attn.o_proj.weight",
    "ffn_gate": "model.layers.{i}.mlp.gate_proj.weight", "ffn_up": "model.layers.{i}.mlp.up_proj.weight",
    "ffn_down": "model.layers.{i}.mlp.down_proj.weight",
}


def load_llama_folder(folder: Path, cfg: dict) -> LlamaWeights:
    """A Hugging Face Llama folder (``config.json``, ``model.safetensors``, ``tokenizer.json``)."""
    st_path = folder / SAFETENSORS_FILE
    if not st_path.is_file():
        raise InputError(f"{st_path}: missing; the weights of a llama model folder must be in safetensors format")
    for key in ("rope_scaling",):
        if cfg.get(key):
            raise InputError(f"{folder / 'config.json'}: {key} {cfg[key]!r} is not supported")
    if cfg.get("hidden_act", "silu") != "silu":
        raise InputError(f"{folder / 'config.json'}: hidden_act {cfg['hidden_act']!r} not supported; expected 'silu'")
    from safetensors.numpy import load_file

    try:
        raw = load_file(str(st_path))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{st_path}: cannot be read as safetensors ({exc})") from exc
    if cfg.get("tie_word_embeddings", False):
        raw.pop("lm_head.weight", None)
    tensors = canonical_llama(raw, cfg, _HF_NAMES, str(st_path), interleaved_rope=False)
    tok = folder / "tokenizer.json"
    cfg = {**cfg, "rope_theta": float(cfg.get("rope_theta", 10000.0)), "rms_norm_eps": float(cfg.get("rms_norm_eps", 1e-6))}
    return LlamaWeights("llama", MappingProxyType(cfg), MappingProxyType(tensors), folder,
                        int(cfg.get("max_position_embeddings", 2048)), tok if tok.is_file() else None)


def read_llama_config(path: Path) -> dict:
    """``config.json`` of a folder, if it describes a Llama model (else None)."""
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(cfg, dict):
        return None  # not an object: the generic reader names the file and what it expected
    return cfg if str(cfg.get("model_type", "")).lower() == "llama" else None
