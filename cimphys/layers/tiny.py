"""Small random checkpoints in Hugging Face layout, for tests and quick experiments.

:func:`write_tiny_bert` and :func:`write_tiny_gpt2` write ``config.json`` and
``model.safetensors`` (via ``safetensors.numpy.save_file``) with seeded random weights under
the tensor names the real checkpoints use, so that :func:`cimphys.layers.load_model`
reads them through exactly the same path as a downloaded model.  Weight scales follow the
usual initialisation (normal, std 0.02 by default; LayerNorm gain 1, bias 0 plus a small draw).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

__all__ = ["write_tiny_bert", "write_tiny_gpt2"]


def _normal(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(np.float32)


def _ln(rng, prefix: str, h: int, out: dict, g="weight", b="bias") -> None:
    out[f"{prefix}.{g}"] = (1.0 + _normal(rng, (h,), 0.05)).astype(np.float32)
    out[f"{prefix}.{b}"] = _normal(rng, (h,), 0.05)


def write_tiny_bert(folder: str | Path, *, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4,
                    ffn: int = 64, vocab: int = 100, positions: int = 32, std: float = 0.2,
                    tokenizer_from: str | Path | None = None) -> Path:
    """Write a random BERT encoder checkpoint to ``folder`` and return the folder.

    ``tokenizer_from``: a model folder whose ``tokenizer.json`` is copied (the vocabulary size
    then follows the tokenizer), so that the tiny model encodes text.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer_from is not None:
        from tokenizers import Tokenizer

        src = Path(tokenizer_from) / "tokenizer.json"
        shutil.copyfile(src, folder / "tokenizer.json")
        vocab = Tokenizer.from_file(str(src)).get_vocab_size()
    cfg = {"model_type": "bert", "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers,
           "num_attention_heads": heads, "vocab_size": vocab, "max_position_embeddings": positions,
           "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0}
    t = {"embeddings.word_embeddings.weight": _normal(rng, (vocab, hidden), 1.0),
         "embeddings.position_embeddings.weight": _normal(rng, (positions, hidden), 0.3),
         "embeddings.token_type_embeddings.weight": _normal(rng, (2, hidden), 0.3)}
    _ln(rng, "embeddings.LayerNorm", hidden, t)
    shapes = {"attention.self.query": (hidden, hidden), "attention.self.key": (hidden, hidden),
              "attention.self.value": (hidden, hidden), "attention.output.dense": (hidden, hidden),
              "intermediate.dense": (ffn, hidden), "output.dense": (hidden, ffn)}
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name, shape in shapes.items():
            t[p + name + ".weight"] = _normal(rng, shape, std)
            t[p + name + ".bias"] = _normal(rng, (shape[0],), 0.05)
        _ln(rng, p + "attention.output.LayerNorm", hidden, t)
        _ln(rng, p + "output.LayerNorm", hidden, t)
    _save(folder, cfg, t)
    return folder


def write_tiny_gpt2(folder: str | Path, *, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4,
                    vocab: int = 100, positions: int = 32, std: float = 0.2) -> Path:
    """Write a random GPT-2 decoder checkpoint (Conv1D weights, (in, out)) to ``folder``."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"model_type": "gpt2", "n_embd": hidden, "n_layer": layers, "n_head": heads, "vocab_size": vocab,
           "n_positions": positions, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}
    t = {"wte.weight": _normal(rng, (vocab, hidden), 1.0), "wpe.weight": _normal(rng, (positions, hidden), 0.3)}
    shapes = {"attn.c_attn": (hidden, 3 * hidden), "attn.c_proj": (hidden, hidden),
              "mlp.c_fc": (hidden, 4 * hidden), "mlp.c_proj": (4 * hidden, hidden)}
    for i in range(layers):
        p = f"h.{i}."
        for name, shape in shapes.items():
            t[p + name + ".weight"] = _normal(rng, shape, std)
            t[p + name + ".bias"] = _normal(rng, (shape[1],), 0.05)
        _ln(rng, p + "ln_1", hidden, t)
        _ln(rng, p + "ln_2", hidden, t)
    _ln(rng, "ln_f", hidden, t)
    _save(folder, cfg, t)
    return folder


def _save(folder: Path, cfg: dict, tensors: dict) -> None:
    from safetensors.numpy import save_file

    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    save_file(tensors, str(folder / "model.safetensors"))
