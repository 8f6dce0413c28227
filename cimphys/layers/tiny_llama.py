"""Small random Llama checkpoints, as a Hugging Face folder and as a GGUF file, for tests.

:func:`tiny_llama_tensors` draws seeded weights under Hugging Face's names (q/k in HF's
rotate-halves layout); :func:`write_tiny_llama` saves them as ``config.json`` +
``model.safetensors``; :func:`write_tiny_llama_gguf` writes the same model as a GGUF file
with the ``gguf`` package's writer, the q/k rows permuted to llama.cpp's rotary layout
(``convert_hf_to_gguf.py``'s permutation) and the matrices optionally quantised by
``gguf.quants.quantize`` (Q4_1, Q8_0), with a byte-level vocabulary of single characters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["tiny_llama_config", "tiny_llama_tensors", "write_tiny_llama", "write_tiny_llama_gguf"]


def tiny_llama_config(*, hidden=64, layers=2, heads=4, kv_heads=2, ffn=96, vocab=96, positions=64,
                      rope_theta=10000.0, tied=False) -> dict:
    return {"model_type": "llama", "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": vocab,
            "max_position_embeddings": positions, "rms_norm_eps": 1e-5, "rope_theta": rope_theta,
            "hidden_act": "silu", "tie_word_embeddings": tied}


def tiny_llama_tensors(cfg: dict, seed: int = 0, std: float = 0.15) -> dict[str, np.ndarray]:
    """Seeded float32 weights under Hugging Face Llama names, (out, in) layout."""
    rng = np.random.default_rng(seed)
    h, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    d = h // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * d

    def normal(shape, s=std):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    t = {"model.embed_tokens.weight": normal((v, h), 1.0), "model.norm.weight": 1.0 + normal((h,), 0.1)}
    if not cfg.get("tie_word_embeddings"):
        t["lm_head.weight"] = normal((v, h))
    shapes = {"self_attn.q_proj": (h, h), "self_attn.k_proj": (kv, h), "self_attn.v_proj": (kv, h),
              "self_attn.o_proj": (h, h), "mlp.gate_proj": (f, h), "mlp.up_proj": (f, h), "mlp.down_proj": (h, f)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for name, shape in shapes.items():
            t[p + name + ".weight"] = normal(shape)
        t[p + "input_layernorm.weight"] = 1.0 + normal((h,), 0.1)
        t[p + "post_attention_layernorm.weight"] = 1.0 + normal((h,), 0.1)
    return t


def write_tiny_llama(folder: str | Path, cfg: dict, tensors: dict) -> Path:
    """``config.json`` + ``model.safetensors`` in ``folder``."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def _to_gguf_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's ``permute`` of q/k rows (HF halves -> adjacent pairs)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_llama_gguf(path: str | Path, cfg: dict, tensors: dict, *, qtype: str = "F32") -> Path:
    """The model of ``tensors`` (HF names) as a GGUF file; 2-D matrices in ``qtype``."""
    import gguf

    path = Path(path)
    w = gguf.GGUFWriter(str(path), arch="llama")
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(h)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_rope_dimension_count(h // nh)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    chars = [chr(c) for c in range(0x21, 0x7F)] + [chr(0x100 + c) for c in range(0x21)]
    tokens = ["<|im_start|>", "<|im_end|>"] + chars[:cfg["vocab_size"] - 2]
    w.add_token_list(tokens)
    w.add_token_types([3, 3] + [1] * (len(tokens) - 2))
    w.add_token_merges([])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for i in range(cfg["num_hidden_layers"]):
        for hf, g in per_layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{g}.weight"
    for hf, arr in tensors.items():
        name = names[hf]
        if name.endswith("attn_q.weight"):
            arr = _to_gguf_rope(arr, nh)
        elif name.endswith("attn_k.weight"):
            arr = _to_gguf_rope(arr, cfg["num_key_value_heads"])
        if arr.ndim == 2 and qtype != "F32":
            q = gguf.GGMLQuantizationType[qtype]
            w.add_tensor(name, gguf.quants.quantize(arr, q), raw_dtype=q)
        else:
            w.add_tensor(name, np.ascontiguousarray(arr, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
