"""The NumPy transformers against plainly written float64 twins, plus invariants.

No torch here, so the reference is built from first principles: a second implementation in
float64 written differently (explicit loops over heads, einsum, math.erf per element), reading
the raw safetensors file itself (not our loader), compared element by element.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from safetensors.numpy import load_file

from cimphys.errors import InputError
from cimphys.layers.matmul import DigitalEngine
from cimphys.layers.sentences import sentences
from cimphys.layers.tiny import write_tiny_bert, write_tiny_gpt2
from cimphys.layers.transformer import BertEncoder, GPT2Decoder
from cimphys.layers import default_model_dir, load_model

# float32 forward vs float64 twin, on unit-norm embeddings: float32 rounding through 6 layers
# is ~1e-7 per element; the brief's bound for agreement with sentence-transformers is 1e-5.
ATOL_EMBED = 1e-5
# Tiny random models have larger activations (no trained LayerNorm balance): float32 rounding
# of hidden states of size ~1-10 gives ~1e-6 absolute.
ATOL_TINY = 2e-5
# Same sentence alone or padded in a batch: only the float32 summation order can differ.
ATOL_PAD = 2e-6


def _ln(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


_erf = np.vectorize(math.erf)


def twin_bert(folder, ids, mask):
    """float64 BERT + mean pooling, heads looped explicitly, einsum products, HF names."""
    cfg = json.loads((folder / "config.json").read_text())
    w = {k: v.astype(np.float64) for k, v in load_file(str(folder / "model.safetensors")).items()}
    eps, nh = cfg["layer_norm_eps"], cfg["num_attention_heads"]
    n = ids.shape[1]
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)

    def lin(name, a):
        return np.einsum("bti,oi->bto", a, w[name + ".weight"]) + w[name + ".bias"]

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(p + "attention.self." + s, x) for s in ("query", "key", "value"))
        dh = q.shape[-1] // nh
        ctx = np.zeros_like(q)
        for h in range(nh):
            sl = slice(h * dh, (h + 1) * dh)
            s = np.einsum("bqd,bkd->bqk", q[..., sl], k[..., sl]) / math.sqrt(dh)
            s = np.where(mask[:, None, :] > 0, s, -np.inf)
            pr = np.exp(s - s.max(-1, keepdims=True))
            pr /= pr.sum(-1, keepdims=True)
            ctx[..., sl] = np.einsum("bqk,bkd->bqd", pr, v[..., sl])
        x = _ln(lin(p + "attention.output.dense", ctx) + x, w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"], eps)
        u = lin(p + "intermediate.dense", x)
        u = 0.5 * u * (1 + _erf(u / math.sqrt(2)))
        x = _ln(lin(p + "output.dense", u) + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    emb = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def twin_gpt2(folder, ids):
    """float64 GPT-2 (pre-LN, causal, tanh GELU), heads looped explicitly; returns final hidden."""
    cfg = json.loads((folder / "config.json").read_text())
    w = {k: v.astype(np.float64) for k, v in load_file(str(folder / "model.safetensors")).items()}
    eps, nh, n = cfg["layer_norm_epsilon"], cfg["n_head"], ids.shape[1]
    x = w["wte.weight"][ids] + w["wpe.weight"][:n]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        a = _ln(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = np.einsum("bti,io->bto", a, w[p + "attn.c_attn.weight"]) + w[p + "attn.c_attn.bias"]
        hd = x.shape[-1]
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        dh = hd // nh
        ctx = np.zeros_like(q)
        for h in range(nh):
            sl = slice(h * dh, (h + 1) * dh)
            s = np.einsum("bqd,bkd->bqk", q[..., sl], k[..., sl]) / math.sqrt(dh)
            s = np.where(np.tril(np.ones((n, n)))[None] > 0, s, -np.inf)
            pr = np.exp(s - s.max(-1, keepdims=True))
            ctx[..., sl] = np.einsum("bqk,bkd->bqd", pr / pr.sum(-1, keepdims=True), v[..., sl])
        x = x + np.einsum("bti,io->bto", ctx, w[p + "attn.c_proj.weight"]) + w[p + "attn.c_proj.bias"]
        m = _ln(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        u = np.einsum("bti,io->bto", m, w[p + "mlp.c_fc.weight"]) + w[p + "mlp.c_fc.bias"]
        u = 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))
        x = x + np.einsum("bti,io->bto", u, w[p + "mlp.c_proj.weight"]) + w[p + "mlp.c_proj.bias"]
    return _ln(x, w["ln_f.weight"], w["ln_f.bias"], eps)


@pytest.fixture(scope="module")
def minilm():
    return BertEncoder(load_model())


def test_minilm_matches_float64_twin(minilm):
    sents = sentences(6)
    ids, mask = minilm.tokenize(sents)
    ours = minilm.encode(sents)
    ref = twin_bert(default_model_dir(), ids, mask.astype(np.float64))
    assert np.abs(ours - ref).max() < ATOL_EMBED


def test_minilm_embeddings_unit_norm_and_padding_invariant(minilm):
    sents = sentences(8)
    batch = minilm.encode(sents)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-6)
    shortest = min(range(len(sents)), key=lambda i: len(sents[i]))
    alone = minilm.encode([sents[shortest]])[0]
    assert np.abs(alone - batch[shortest]).max() < ATOL_PAD


def test_minilm_paraphrases_closer_than_unrelated(minilm):
    emb = minilm.encode(sentences(20))
    sim = emb @ emb.T
    para = np.array([sim[2 * k, 2 * k + 1] for k in range(10)])
    unrelated = np.array([sim[2 * k, (2 * k + 3) % 20] for k in range(10)])
    assert (para > unrelated).all()
    assert para.mean() > 0.6 > unrelated.mean()


def test_tiny_bert_matches_twin_with_padding(tmp_path, rng):
    folder = write_tiny_bert(tmp_path / "bert", seed=3)
    model = BertEncoder(load_model(folder))
    ids = rng.integers(1, 100, size=(3, 9))
    mask = np.ones((3, 9), dtype=np.float32)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    ours = model.pool(model.forward(ids, mask, DigitalEngine())[-1], mask)
    ref = twin_bert(folder, ids, mask.astype(np.float64))
    assert np.abs(ours - ref).max() < ATOL_TINY


def test_tiny_gpt2_matches_twin_and_is_causal(tmp_path, rng):
    folder = write_tiny_gpt2(tmp_path / "gpt2", seed=5)
    model = GPT2Decoder(load_model(folder))
    ids = rng.integers(0, 100, size=(2, 10))
    states, logits = model.forward(ids, logits=True)
    ref = twin_gpt2(folder, ids)
    scale = np.abs(ref).max()
    assert np.abs(states[-1] - ref).max() < ATOL_TINY * scale
    ref_logits = ref @ load_file(str(folder / "model.safetensors"))["wte.weight"].astype(np.float64).T
    assert np.abs(logits - ref_logits).max() < ATOL_TINY * np.abs(ref_logits).max()
    changed = ids.copy()
    changed[:, 6:] = (changed[:, 6:] + 17) % 100
    after = model.forward(changed)[-1]
    assert np.array_equal(after[:, :6], states[-1][:, :6])  # earlier tokens untouched, bit for bit
    assert np.abs(after[:, 6:] - states[-1][:, 6:]).max() > 1e-3


def test_bad_token_ids_rejected(tmp_path):
    from cimphys.errors import InputError

    model = BertEncoder(load_model(write_tiny_bert(tmp_path / "b")))
    with pytest.raises(InputError, match="ids"):
        model.forward(np.array([[1, 2, 500]]))
    with pytest.raises(InputError, match="sequence length"):
        model.forward(np.ones((1, 40), dtype=int))


@pytest.mark.parametrize("ids", [np.array([[1.5, 2.0]]), np.array([[True, False]]), np.array([["1", "2"]])])
def test_token_ids_must_be_integers(tmp_path, ids):
    """Regression (issue 18.10): float token ids were truncated to integers without a word."""
    from cimphys.layers.tiny import write_tiny_gpt2
    from cimphys.layers.transformer import GPT2Decoder
    from cimphys.layers import load_model

    model = GPT2Decoder(load_model(write_tiny_gpt2(tmp_path / "g", seed=1)))
    with pytest.raises(InputError, match="ids: expected"):
        model.forward(ids)
    assert model.forward(np.array([[1.0, 2.0]]))[-1].shape[:2] == (1, 2)  # integral floats are ids
