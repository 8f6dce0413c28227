"""The Llama decoder against a plain float64 transcription of Hugging Face's Llama (rotate-halves
RoPE, repeat_kv GQA, per-head loops), on tiny random checkpoints read from a safetensors folder
and from GGUF files written by the ``gguf`` package (F32, Q4_1, Q8_0)."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.errors import InputError
from cimphys.layers import build_model, load_model
from cimphys.layers.llama import KVCache, rope, rope_tables
from cimphys.layers.tiny_llama import tiny_llama_config, tiny_llama_tensors, write_tiny_llama, write_tiny_llama_gguf

gguf = pytest.importorskip("gguf", reason="pip install gguf (the 'llm' extra of cimphys)")

# float32 forward vs float64 reference over 2 blocks of width 64: rounding ~1e-7 relative per
# operation, amplified by softmax and the RMSNorm divisions; 2e-5 of the largest logit is ten
# times the spread seen and far below any error a wrong layout or sign would make (O(1)).
RTOL_F32 = 2e-5


def hf_reference(t: dict, cfg: dict, ids: np.ndarray) -> np.ndarray:
    """Logits (T, vocab) of one sequence, the way transformers' LlamaForCausalLM computes them."""
    t = {k: v.astype(np.float64) for k, v in t.items()}
    h, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d, eps, n = h // nh, cfg["rms_norm_eps"], len(ids)

    def norm(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    inv = cfg["rope_theta"] ** (-np.arange(0, d, 2) / d)
    ang = np.arange(n)[:, None] * inv[None]
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))

    def rot(x):  # x (T, d): x*cos + rotate_half(x)*sin
        return x * cos + np.concatenate([-x[:, d // 2:], x[:, :d // 2]], 1) * sin

    x = t["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = norm(x, t[p + "input_layernorm.weight"])
        q = (a @ t[p + "self_attn.q_proj.weight"].T).reshape(n, nh, d)
        k = (a @ t[p + "self_attn.k_proj.weight"].T).reshape(n, nkv, d)
        v = (a @ t[p + "self_attn.v_proj.weight"].T).reshape(n, nkv, d)
        heads = []
        for j in range(nh):
            kv = j // (nh // nkv)
            s = rot(q[:, j]) @ rot(k[:, kv]).T / np.sqrt(d)
            s[np.triu_indices(n, 1)] = -np.inf
            e = np.exp(s - s.max(1, keepdims=True))
            heads.append(e / e.sum(1, keepdims=True) @ v[:, kv])
        x = x + np.concatenate(heads, 1) @ t[p + "self_attn.o_proj.weight"].T
        m = norm(x, t[p + "post_attention_layernorm.weight"])
        g, u = m @ t[p + "mlp.gate_proj.weight"].T, m @ t[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ t[p + "mlp.down_proj.weight"].T
    head = t.get("lm_head.weight", t["model.embed_tokens.weight"])
    return norm(x, t["model.norm.weight"]) @ head.T


@pytest.fixture(scope="module")
def tiny():
    cfg = tiny_llama_config()
    return cfg, tiny_llama_tensors(cfg, seed=3)


def _max_rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


IDS = np.array([5, 17, 2, 80, 33, 33, 9, 61, 44, 0, 12, 70])


@pytest.mark.parametrize("tied", [False, True])
def test_safetensors_folder_matches_hf_reference(tmp_path, tied):
    """HF halves layout -> adjacent-pair layout at load, GQA, SwiGLU, tied or separate head."""
    cfg = tiny_llama_config(tied=tied)
    t = tiny_llama_tensors(cfg, seed=3)
    model = build_model(load_model(write_tiny_llama(tmp_path / "m", cfg, t)))
    _, logits = model.forward(IDS[None], logits=True)
    assert _max_rel(logits[0], hf_reference(t, cfg, IDS)) < RTOL_F32


def test_gguf_f32_matches_hf_reference(tmp_path, tiny):
    cfg, t = tiny
    model = build_model(load_model(write_tiny_llama_gguf(tmp_path / "m.gguf", cfg, t)))
    _, logits = model.forward(IDS[None], logits=True)
    assert _max_rel(logits[0], hf_reference(t, cfg, IDS)) < RTOL_F32


@pytest.mark.parametrize("qtype", ["Q4_1", "Q8_0"])
def test_gguf_quantised_matches_hf_reference_on_gguf_dequantised_weights(tmp_path, tiny, qtype):
    """cimphys's block decoder against gguf.quants.dequantize, through a whole forward pass,
    and the codes/scales/mins it keeps rebuild the weights exactly."""
    cfg, t = tiny
    q = gguf.GGMLQuantizationType[qtype]
    deq = {k: gguf.quants.dequantize(gguf.quants.quantize(v, q), q) if v.ndim == 2 else v for k, v in t.items()}
    w = load_model(write_tiny_llama_gguf(tmp_path / "m.gguf", cfg, t, qtype=qtype))
    _, logits = build_model(w).forward(IDS[None], logits=True)
    assert _max_rel(logits[0], hf_reference(deq, cfg, IDS)) < RTOL_F32
    qt = w.quant["blk.1.ffn_down.weight"]
    assert np.array_equal(qt.dequantised(), deq["model.layers.1.mlp.down_proj.weight"])
    assert qt.codes.dtype == (np.uint8 if qtype == "Q4_1" else np.int8)
    if qtype == "Q4_1":
        assert qt.codes.max() <= 15 and qt.min is not None


def test_read_gguf_agrees_with_gguf_reader(tmp_path, tiny):
    from cimphys.layers.gguf import read_gguf

    cfg, t = tiny
    path = write_tiny_llama_gguf(tmp_path / "m.gguf", cfg, t, qtype="Q4_1")
    meta, tensors = read_gguf(path)
    reader = gguf.GGUFReader(str(path))
    for key, field in reader.fields.items():
        if not key.startswith("GGUF."):
            got = meta[key]
            assert (list(got) if isinstance(got, np.ndarray) else got) == field.contents(), key
    assert [(x.name, x.shape, x.qtype) for x in tensors] == [
        (r.name, tuple(int(s) for s in r.shape), r.tensor_type.name) for r in reader.tensors]
    for mine, theirs in zip(tensors, reader.tensors):
        assert np.array_equal(mine.data.view(np.uint8).ravel(), np.asarray(theirs.data).view(np.uint8).ravel())


def test_kv_cache_decoding_equals_full_forward(tmp_path, tiny):
    cfg, t = tiny
    model = build_model(load_model(write_tiny_llama(tmp_path / "m", cfg, t)))
    _, full = model.forward(IDS[None], logits=True)
    cache = model.new_cache()
    steps = [model.forward(IDS[None, :5], logits=True, cache=cache)[1][0]]
    for tok in IDS[5:]:
        steps.append(model.forward(np.array([[tok]]), logits=True, cache=cache)[1][0])
    assert cache.length == len(IDS)
    assert _max_rel(np.concatenate(steps), full[0]) < 1e-5  # same float32 sums, other grouping


def test_rope_is_a_rotation_of_adjacent_pairs(rng):
    """As complex numbers (x[2i] + i x[2i+1]) · exp(i p θ_i); scores depend on p_q - p_k only."""
    d, base = 16, 500.0
    x = rng.standard_normal((7, d)).astype(np.float32)
    pos = np.arange(3, 10)
    cos, sin = rope_tables(pos, d, base)
    z = (x[:, 0::2] + 1j * x[:, 1::2]) * np.exp(1j * pos[:, None] * base ** (-np.arange(0, d, 2) / d))
    y = rope(x, cos, sin)
    np.testing.assert_allclose(y[:, 0::2] + 1j * y[:, 1::2], z, rtol=0, atol=1e-5)
    q, k = rng.standard_normal((2, 1, d)).astype(np.float32)
    c1, s1 = rope_tables(np.array([5, 2]), d, base)
    c2, s2 = rope_tables(np.array([13, 10]), d, base)
    s_a = rope(q, c1[:1], s1[:1]) @ rope(k, c1[1:], s1[1:]).T
    s_b = rope(q, c2[:1], s2[:1]) @ rope(k, c2[1:], s2[1:]).T
    np.testing.assert_allclose(s_a, s_b, rtol=1e-5)


def test_kv_cache_grows_and_keeps_rows():
    cache = KVCache(1)
    rows = [np.full((1, 2, 1, 4), i, np.float32) for i in range(40)]
    for r in rows:
        k, v = cache.append(0, r, -r)
    assert k.shape == (1, 2, 40, 4) and np.array_equal(k[0, 0, :, 0], np.arange(40)) and np.array_equal(v, -k)


def test_bad_input_named(tmp_path, tiny):
    cfg, t = tiny
    model = build_model(load_model(write_tiny_llama(tmp_path / "m", cfg, t)))
    with pytest.raises(InputError, match="token ids must be in"):
        model.forward(np.array([[1, cfg["vocab_size"]]]))
    with pytest.raises(InputError, match="context length"):
        model.forward(np.zeros((1, cfg["max_position_embeddings"] + 1), np.int64))
    with pytest.raises(InputError, match="integer array"):
        model.forward(np.array([[0.5]]))


def test_unsupported_gguf_named(tmp_path, tiny):
    cfg, t = tiny
    path = tmp_path / "m.gguf"
    write_tiny_llama_gguf(path, cfg, t, qtype="Q4_0")
    with pytest.raises(InputError, match="Q4_0 is not supported"):
        load_model(path)
    w = gguf.GGUFWriter(str(tmp_path / "gpt.gguf"), arch="gpt2")
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(InputError, match="architecture 'gpt2' is not supported"):
        load_model(tmp_path / "gpt.gguf")
    (tmp_path / "x.gguf").write_bytes(b"GGML" + bytes(40))
    with pytest.raises(InputError, match="not a GGUF file"):
        load_model(tmp_path / "x.gguf")


def test_tiny_gguf_tokenizer_parses_control_tokens(tmp_path, tiny):
    cfg, t = tiny
    tok = load_model(write_tiny_llama_gguf(tmp_path / "m.gguf", cfg, t)).tokenizer()
    ids = tok.encode("<|im_start|>ab1<|im_end|>")
    assert ids[0] == 0 and ids[-1] == 1 and tok.decode(ids) == "<|im_start|>ab1<|im_end|>"


def test_right_padding_masked(tmp_path, tiny):
    """A padded batch row gives the unpadded sequence's logits at its real positions."""
    cfg, t = tiny
    model = build_model(load_model(write_tiny_llama(tmp_path / "m", cfg, t)))
    ids = np.stack([IDS, np.r_[IDS[:7], [0] * 5]])
    mask = np.stack([np.ones(12), np.r_[np.ones(7), np.zeros(5)]])
    _, both = model.forward((ids, mask), logits=True)
    _, short = model.forward(IDS[None, :7], logits=True)
    assert _max_rel(both[1, :7], short[0]) < 1e-5
    with pytest.raises(InputError, match="mask"):
        model.forward(ids, mask[:, :5])
