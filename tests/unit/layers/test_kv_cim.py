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


def _steps(model, engine, n_new=5, calibrate=True, prompt=PROMPT):
    """Cell writes of the prompt pass and of each decoding step, and the logits of each step."""
    if calibrate:
        engine.calibrate(model, np.array([PROMPT]))
    engine.reset_stats()
    cache, writes, logits = model.new_cache(), [], []
    ids = np.array([prompt])
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


def _nonzero(q, op):
    """Cells with a nonzero level in the mapping of integer operand ``q`` (positions independent:
    differential pairs, one scale per position)."""
    return int(np.count_nonzero(map_integers(q, np.ones(q.shape[1]), CFG.mapping).digits))


def test_kv_writes_counts_exact_and_flags_cells_past_endurance(model):
    """One generation writes each nonzero cell of the positions once.  A shorter, other sequence
    on the same arrays writes exactly the cells of its own positions whose level changes; the
    cells past its length are masked, not reset: they keep the earlier sequence's levels and no
    write.  The cells written twice are flagged past an endurance of 1."""
    n_new = 3  # 8 positions: every array one tile wide (differential pairs, 16 columns)
    eng = KVCimEngine(CFG.with_(endurance=1), Routing(frozenset()), use_cache=False)
    writes, _, _ = _steps(model, eng, n_new=n_new)
    ds = eng.kv_writes()
    assert ds.sizes["array"] == 2 * 2  # (Kᵀ, V) x 2 KV heads of the 1-block model
    assert int(ds.total_writes.sum()) == writes.sum() and ds.attrs["max_writes_per_cell"] == 1
    first = {}
    for i in range(ds.sizes["array"]):
        key = tuple(ds[c].values[i].item() for c in ("op", "layer", "sequence", "kv_head"))
        arr = eng.kv[key]
        axis = 1 if key[0] == "qk" else 0
        assert arr.q.shape[axis] == len(PROMPT) + n_new - 1  # the last generated token is never fed back
        assert int(ds.cells_by_writes[i, 1]) == _nonzero(arr.q, key[0])
        first[key] = (arr.q, eng.held[key][0].copy())
    assert ds.attrs["cells_past_endurance"] == 0 and ds.attrs["endurance"] == 1
    assert "assumed" in ds.attrs["endurance_source"]
    short = [5, 8, 13, 21]
    again, _, _ = _steps(model, eng, n_new=1, calibrate=False, prompt=short)  # 4 positions, other tokens
    changed = rewritten = 0
    for key, (q1, held1) in first.items():
        axis = 1 if key[0] == "qk" else 0
        q2 = eng.kv[key].q
        assert q2.shape[axis] == len(short)
        d1 = map_integers(np.take(q1, range(len(short)), axis=axis), np.ones(q2.shape[1]), CFG.mapping).digits
        d2 = map_integers(q2, np.ones(q2.shape[1]), CFG.mapping).digits
        changed += int(np.count_nonzero(d1 != d2))
        rewritten += int(np.count_nonzero((d1 != d2) & (d1 != 0)))
        held2 = eng.held[key][0]
        # positions 4..7: columns 8..15 of Kᵀ (differential pairs), rows 4..7 of V
        past = (Ellipsis, slice(2 * len(short), None)) if key[0] == "qk" else (Ellipsis, slice(len(short), None),
                                                                                slice(None))
        assert np.array_equal(held2[past], held1[past]) and np.any(held1[past])  # kept, not reset
    assert again[0] == changed > 0  # the old reset would add every nonzero cell of positions 4..7
    later = eng.kv_writes()
    assert int(later.cells_by_writes.sel(writes=2).sum()) == rewritten > 0
    assert later.attrs["cells_past_endurance"] == rewritten == int(later.past_endurance.sum())
    assert int(later.total_writes.sum()) == writes.sum() + changed
    from cimphys.results import check_labelled
    check_labelled(later)


def test_endurance_limit_from_the_device_cards_window(tmp_path):
    """[endurance] window of the device card: the cells' 1-10 uS levels fit until g_off(n) rises past
    1 uS, log-linear between 1e3 cycles (0.8 uS) and 1e6 (2 uS): n = 10^(3 + 3 ln 1.25 / ln 2.5)
    = 5377 (g_on falls below 10 uS later, at 22340); sampled in steps of 0.7 %."""
    import tomllib

    from cimphys.cards import card_from_mapping, load_device
    from cimphys.layers.kv_cim import endurance_limit

    data = tomllib.loads(load_device("nandakumar2019_pcm").to_toml())
    data["endurance"] = {"cycles": [1.0, 1e3, 1e6], "g_on": [2e-5, 1.2e-5, 8e-6], "g_off": [5e-7, 8e-7, 2e-6]}
    path = tmp_path / "pcm_worn.toml"
    path.write_text(card_from_mapping(data, "device", "worn PCM (test)", "pcm_worn").to_toml())
    cfg = config(16, 16, differential=True, device=str(path))
    limit, source = endurance_limit(cfg)
    assert limit == pytest.approx(10 ** (3 + 3 * np.log(1.25) / np.log(2.5)), rel=0.01)
    assert "[endurance]" in source
    ds = KVCimEngine(cfg, use_cache=False).kv_writes()
    assert ds.attrs["endurance"] == limit and ds.sizes["array"] == 0
    narrow = dict(data, endurance={"cycles": [1.0, 10.0], "g_on": [5e-6, 4e-6], "g_off": [5e-7, 6e-7]})
    path.write_text(card_from_mapping(narrow, "device", "narrow PCM (test)", "pcm_narrow").to_toml())
    assert endurance_limit(config(16, 16, differential=True, device=str(path)))[0] == 0.0
