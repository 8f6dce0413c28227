"""The KV cache written into CIM arrays: each cell written once per generation, only the new
token's cells per step, attention through the tiles close to fp32."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.layers import AnalogEngine, DigitalEngine, Routing, build_model, load_model
from cimphys.layers.kv_cim import KVCimEngine
from cimphys.layers.mapping import map_integers
from cimphys.layers.tiny_llama import tiny_llama_config, tiny_llama_tensors, write_tiny_llama
from small_cards import config

CFG = config(16, 16, differential=True)
PROMPT = [3, 14, 15, 9, 2, 6]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = tiny_llama_config(layers=1)
    return build_model(load_model(write_tiny_llama(tmp_path_factory.mktemp("m"), cfg, tiny_llama_tensors(cfg, seed=2))))


def _steps(model, engine, n_new=5):
    """Cell writes of the prompt pass and of each decoding step, and the logits of each step."""
    engine.calibrate(model, np.array([PROMPT]))
    engine.reset_stats()
    cache, writes, logits = model.new_cache(), [], []
    ids = np.array([PROMPT])
    for _ in range(n_new):
        before = sum(st.costs.cell_writes for st in engine.stats.values())
        _, lg = model.forward(ids, engine=engine, logits=True, cache=cache)
        writes.append(sum(st.costs.cell_writes for st in engine.stats.values()) - before)
        logits.append(lg[0, -1])
        ids = np.array([[int(lg[0, -1].argmax())]])
    return np.array(writes), np.array(logits), cache


def test_each_kv_cell_written_once_and_only_new_tokens_written(model):
    eng = KVCimEngine(CFG, Routing(frozenset()), use_cache=False)
    writes, _, cache = _steps(model, eng)
    assert eng.max_writes_per_cell() == 1  # append-only: no cell rewritten during the generation
    # a decoding step writes exactly the nonzero cell levels (differential pairs, all slices)
    # of the new key column and value row; erased cells at level 0 need no write
    assert CFG.mapping.sign == "differential"
    expected = 0
    for (op, _, _, _), arr in eng.kv.items():
        last = arr.q[:, -1:] if op == "qk" else arr.q[-1:, :]
        expected += int(np.count_nonzero(map_integers(last, np.ones(last.shape[1]), CFG.mapping).digits))
    assert writes[-1] == expected
    assert writes[0] > writes[-1] > 0


def test_rewrite_per_call_grows_with_context(model):
    """The base engine's dynamic path writes every tile of the operand at every call: the writes
    per step never fall and grow with the tiles the context fills."""
    eng = AnalogEngine(CFG, Routing(frozenset({"qk", "av"})), use_cache=False)
    writes, _, _ = _steps(model, eng)
    assert np.all(np.diff(writes[1:]) >= 0) and writes[-1] > writes[1]
    kv = KVCimEngine(CFG, Routing(frozenset()), use_cache=False)
    kv_writes, _, _ = _steps(model, kv)
    assert kv_writes[1:].sum() < 0.5 * writes[1:].sum()


def test_attention_on_cim_close_to_fp32(model):
    eng = KVCimEngine(CFG, use_cache=False)  # projections and attention on tiles
    _, logits, _ = _steps(model, eng, n_new=3)
    _, ref = model.forward(np.array([PROMPT]), engine=DigitalEngine(), logits=True)
    cos = float(logits[0] @ ref[0, -1] / np.linalg.norm(logits[0]) / np.linalg.norm(ref[0, -1]))
    assert cos > 0.98  # 8-bit inputs and ADCs, 9-bit cells: a few % error per product
    assert eng.stats[("qk", 0)].costs.write > 0 and eng.stats[("av", 0)].costs.write_time > 0
