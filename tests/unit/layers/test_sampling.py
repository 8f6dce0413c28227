"""Sampling (greedy, temperature, top-k, top-p, seeds), generation with the KV cache, perplexity,
and the tiny Llama on the analog engine."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.errors import InputError
from cimphys.layers import AnalogEngine, CimConfig, DigitalEngine, build_model, load_model
from cimphys.layers.sampling import Sampler, generate, log_softmax, perplexity
from cimphys.layers.tiny_llama import tiny_llama_config, tiny_llama_tensors, write_tiny_llama


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = tiny_llama_config()
    return build_model(load_model(write_tiny_llama(tmp_path_factory.mktemp("m"), cfg, tiny_llama_tensors(cfg, seed=5))))


LOGITS = np.log(np.array([0.05, 0.4, 0.1, 0.3, 0.15]))


def test_greedy_and_top_k_1_are_argmax(rng):
    assert Sampler()(LOGITS, rng) == 1
    assert all(Sampler(temperature=2.0, top_k=1)(LOGITS, rng) == 1 for _ in range(20))


def test_top_k_and_top_p_sets():
    p = Sampler(temperature=1.0, top_k=3).probabilities(LOGITS)
    np.testing.assert_allclose(p, np.array([0, 0.4, 0, 0.3, 0.15]) / 0.85, rtol=1e-12)
    # nucleus: 0.4 + 0.3 = 0.7 < 0.75 <= 0.85 -> three tokens; exactly 0.7 -> two
    assert np.count_nonzero(Sampler(temperature=1.0, top_p=0.75).probabilities(LOGITS)) == 3
    assert np.count_nonzero(Sampler(temperature=1.0, top_p=0.7).probabilities(LOGITS)) == 2
    # temperature T: p ∝ p0**(1/T)
    p = Sampler(temperature=0.5).probabilities(LOGITS)
    q = np.exp(LOGITS) ** 2
    np.testing.assert_allclose(p, q / q.sum(), rtol=1e-12)


def test_draw_frequencies_follow_the_distribution():
    """8000 seeded draws: every frequency within 4 binomial standard deviations."""
    s = Sampler(temperature=1.0, top_p=0.9)
    p = s.probabilities(LOGITS)
    rng = np.random.default_rng(7)
    n = 8000
    counts = np.bincount([s(LOGITS, rng) for _ in range(n)], minlength=len(p))
    assert np.all(np.abs(counts - n * p) <= 4 * np.sqrt(n * p * (1 - p)) + 1e-9), (counts, n * p)


def test_sampler_checks():
    for bad in ({"temperature": -1.0}, {"top_k": -2}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(InputError):
            Sampler(**bad)


def test_generation_is_seeded_and_greedy_follows_argmax(model):
    s = Sampler(temperature=1.2, top_k=20, top_p=0.95)
    a = generate(model, [3, 4, 5], 12, sampler=s, seed=11).tokens
    assert a == generate(model, [3, 4, 5], 12, sampler=s, seed=11).tokens
    assert a != generate(model, [3, 4, 5], 12, sampler=s, seed=12).tokens
    g = generate(model, [3, 4, 5], 6)
    _, logits = model.forward(np.array([[3, 4, 5] + g.tokens[:-1]]), logits=True)
    assert g.tokens == logits[0, 2:].argmax(-1).tolist()  # greedy = argmax of the full pass


def test_perplexity_is_exp_mean_nll(model):
    ids = np.array([7, 1, 30, 2, 2, 50, 9, 11, 64, 3])
    ppl, nll = perplexity(model, ids, window=4)
    assert nll.shape == (ids.size - 1 - 2,)  # windows [0:4] [4:8] [8:10]: one first token each unpredicted
    _, lg = model.forward(ids[None, 4:8], logits=True)
    np.testing.assert_allclose(nll[3:6], -log_softmax(lg[0, :-1])[np.arange(3), ids[5:8]], rtol=1e-12)
    assert ppl == pytest.approx(np.exp(nll.mean()))
    with pytest.raises(InputError):
        perplexity(model, ids[:1])


def test_tiny_llama_on_analog_tiles(model):
    """Every static projection on 16x16 tiles (no wires): logits close to fp32, every digital
    nonlinearity of the decoder (RMSNorm, SiLU, softmax) counted."""
    ids = np.array([[3, 14, 15, 9, 2, 6, 5, 35]])
    cfg = CimConfig().with_(rows=16, cols=16)
    eng = AnalogEngine(cfg, use_cache=False)
    eng.calibrate(model, ids)
    _, ref = model.forward(ids, engine=DigitalEngine(), logits=True)
    _, out = model.forward(ids, engine=eng, logits=True)
    cos = (out * ref).sum(-1) / np.linalg.norm(out, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert cos.min() > 0.98  # 8-bit inputs, 9-bit weights, the card's ADC: a few % error per product
    ops = {op for op, _ in eng.stats}
    assert {"query", "key", "value", "attn_out", "ffn_up", "ffn_down", "rmsnorm", "silu", "softmax"} <= ops
    assert all(eng.stats[("rmsnorm", i)].costs.digital > 0 for i in range(model.n_layers))
