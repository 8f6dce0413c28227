"""The analog engine on tiny random models: ideal limit, monotonic degradation, costs, cache, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits.tile_report import StackReport
from cimphys.errors import InputError
from cimphys.layers.config import CimConfig
from cimphys.layers.engine import AnalogEngine
from cimphys.layers.matmul import DigitalEngine, MatmulEngine
from cimphys.layers.report import build_report
from cimphys.layers.routing import Routing
from cimphys.layers.tiny import write_tiny_bert, write_tiny_gpt2
from cimphys.layers.transformer import BertEncoder, GPT2Decoder
from cimphys.layers import load_model
from cimphys.results import check_labelled

from small_cards import config

# Ideal chain (no wires, no device effects, 24-bit weights and inputs, 16-bit ideal ADCs over
# ranges that cover the inputs): each read is quantised to 2^-16 of its range and the binary
# shift-add keeps that relative size, so products stay ~1e-5 from fp32, below the 1e-4.
ATOL_IDEAL = 1e-4
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = write_tiny_bert(tmp_path_factory.mktemp("bert"), seed=11)
    return BertEncoder(load_model(folder))


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(7)
    ids = rng.integers(1, 100, size=(4, 10))
    mask = np.ones((4, 10), dtype=np.float32)
    mask[3, 7:] = 0
    return ids, mask


def _embed(model, ids, mask, engine):
    return model.pool(model.forward(ids, mask, engine)[-1], mask)


def _error(model, batch, cfg, seed, routing=None):
    """1 - mean cosine of analog vs fp32 embeddings (calibrated on the first two sequences)."""
    ids, mask = batch
    ref = _embed(model, ids, mask, DigitalEngine())
    eng = AnalogEngine(cfg, routing, seed=seed, use_cache=False)
    eng.calibrate(model, ids[:2], mask[:2])
    out = _embed(model, ids, mask, eng)
    return 1.0 - float(np.mean((out * ref).sum(1))), eng


def test_engines_satisfy_protocol():
    assert isinstance(DigitalEngine(), MatmulEngine) and isinstance(AnalogEngine(), MatmulEngine)


def test_ideal_chain_reproduces_fp32(tiny, batch):
    ids, mask = batch
    cfg = config(cell_bits=8, n_slices=3, input_bits=24, adc_bits=16)
    eng = AnalogEngine(cfg, use_cache=False)
    eng.calibrate(tiny, ids, mask)  # ranges cover these very inputs: no clipping
    out = _embed(tiny, ids, mask, eng)
    ref = _embed(tiny, ids, mask, DigitalEngine())
    assert np.abs(out - ref).max() < ATOL_IDEAL
    # 16-bit converters: ~96 dB for a full-scale signal, less where a product uses part of its range
    assert min(st.snr_db for st in eng.stats.values()) > 80.0


@pytest.mark.slow
def test_error_falls_monotonically_with_adc_bits(tiny, batch):
    # programming noise drawn with the same seeds at every resolution (common random numbers)
    base = config(programming="gaussian", programming_sigma=0.005)
    errs = [np.mean([_error(tiny, batch, base.with_(adc_bits=b), s)[0] for s in SEEDS]) for b in (3, 5, 8)]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs


@pytest.mark.slow
def test_error_grows_monotonically_with_wire_resistance(tiny, batch, tmp_path):
    # seeds vary the sense-amplifier noise; ideal programming lets the seeds share characterised tiles
    ids, mask = batch
    ref = _embed(tiny, ids, mask, DigitalEngine())
    # without the column-gain calibration, which would absorb the wires' mean attenuation
    base = config(adc_bits=10, n_slices=1, cell_bits=6, sections={"sense": {"noise_v_rms": 2e-4}},
                  column_gain_calibration=False)
    errs = []
    for r in (0.0, 10.0, 40.0, 160.0):
        cfg = base.with_(r_wire=r)
        per_seed = []
        for seed in SEEDS:
            eng = AnalogEngine(cfg, seed=seed, cache_dir=tmp_path)
            eng.calibrate(tiny, ids[:2], mask[:2])
            per_seed.append(1.0 - float(np.mean((_embed(tiny, ids, mask, eng) * ref).sum(1))))
        errs.append(np.mean(per_seed))
    assert all(a < b for a, b in zip(errs, errs[1:])), errs


def test_dynamic_ops_on_cim_count_writes(tiny, batch):
    cfg = config()
    err, eng = _error(tiny, batch, cfg, 0, Routing().with_(qk="analog", av="analog"))
    assert err < 0.05
    ids, mask = batch
    ref_states = tiny.forward(ids, mask)
    states = tiny.forward(ids, mask, eng)
    ds = build_report(eng, tiny.pool(states[-1], mask), states, tiny.pool(ref_states[-1], mask), ref_states, mask)
    check_labelled(ds)
    assert float(ds.cell_writes_per_token) > 0 and float(ds.energy_per_token.sel(bucket="write")) > 0
    assert np.isfinite(float(ds.endurance_tokens))
    assert bool(ds.analog.sel(op="qk").all()) and np.isfinite(ds.matmul_snr.sel(op="qk")).all()


def test_report_is_labelled_and_consistent(tiny, batch):
    ids, mask = batch
    _, eng = _error(tiny, batch, config(), 0)
    ref_states = tiny.forward(ids, mask)
    eng.reset_stats()
    states = tiny.forward(ids, mask, eng)
    emb, ref = tiny.pool(states[-1], mask), tiny.pool(ref_states[-1], mask)
    ds = build_report(eng, emb, states, ref, ref_states, mask)
    check_labelled(ds)
    assert ds.hidden_error.sel(state=0) == 0.0  # embeddings are digital
    assert (ds.tiles.sel(op="query") > 0).all() and (ds.tiles.sel(op="qk") == 0).all()
    total = float(ds.energy_per_token.sum())
    assert total == pytest.approx(float(ds.energy_total_per_token)) and total > 0
    assert float(ds.energy_per_token.sel(bucket="write")) == 0.0  # nothing written per token
    assert 0.9 < float(ds.embedding_cosine.min()) <= 1.0 + 1e-6


@pytest.mark.slow
def test_same_seed_same_numbers_and_cache_round_trip(tiny, batch, tmp_path):
    ids, mask = batch
    cfg = config(r_wire=1.0, programming="gaussian", programming_sigma=0.02, sections={"sense": {"noise_v_rms": 2e-4}})
    outs, hits, reports = [], [], []
    for seed in (3, 3, 4):
        eng = AnalogEngine(cfg, seed=seed, cache_dir=tmp_path)
        eng.calibrate(tiny, ids[:2], mask[:2])
        outs.append(_embed(tiny, ids, mask, eng))
        hits.append(eng.cache_hits)
        reports.append(StackReport.join(s.solve_report for m in eng.matrices.values() for s in m.stacks))
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])
    assert hits[0] == 0 and hits[1] > 0 and hits[2] == 0  # seed is part of the cache key
    # the solve reports come back from the cache as they were measured (times included)
    assert reports[1].paths == reports[0].paths and np.array_equal(reports[1].time, reports[0].time)
    assert np.array_equal(reports[1].residual, reports[0].residual, equal_nan=True) and reports[0].max_residual < 1e-10


def test_analog_gpt2_stays_causal(tmp_path):
    model = GPT2Decoder(load_model(write_tiny_gpt2(tmp_path / "g", seed=2)))
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 100, size=(2, 9))
    eng = AnalogEngine(config(sections={"sense": {"noise_v_rms": 1e-4}}), seed=0, use_cache=False)
    eng.calibrate(model, ids)
    a = model.forward(ids, engine=eng)[-1]
    changed = ids.copy()
    changed[:, 5:] = (changed[:, 5:] + 31) % 100
    eng2 = AnalogEngine(eng.cfg, seed=0, use_cache=False)
    eng2.calibrate(model, ids)
    b = model.forward(changed, engine=eng2)[-1]
    assert np.array_equal(a[:, :5], b[:, :5])
    ref = model.forward(ids)[-1]
    assert np.mean((a * ref).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(ref, axis=-1)) > 0.95


def test_engine_and_routing_reject_bad_input():
    with pytest.raises(InputError, match="seed"):
        AnalogEngine(seed=-1)
    with pytest.raises(InputError, match="unknown op"):
        Routing().with_(qkt="analog")
    with pytest.raises(InputError, match="analog' or 'digital"):
        Routing.parse("qk=maybe")
    with pytest.raises(ValueError, match="bits"):
        CimConfig().with_(adc_bits=99)
    with pytest.raises(InputError, match="temperature"):
        CimConfig(temperature=0.0)


def test_retrieval_agreement_limits(rng):
    from cimphys.layers.report import retrieval_agreement

    emb = rng.standard_normal((12, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert retrieval_agreement(emb, emb) == (1.0, 1.0)
    noisy = emb + 1e-3 * rng.standard_normal(emb.shape)
    rho, top1 = retrieval_agreement(noisy, emb)
    assert 0.99 < rho < 1.0 and top1 == 1.0
    rho_far, _ = retrieval_agreement(rng.standard_normal((12, 8)), emb)
    assert rho_far < 0.5  # unrelated embeddings do not rank alike


def test_programming_a_whole_model_up_front_changes_no_number(tiny, batch):
    """engine.program queues every tile on one pool; each matrix equals the one built alone."""
    from cimphys.layers.analog import AnalogMatrix
    ids, mask = batch
    cfg = config(r_wire=1.0, programming="gaussian", programming_sigma=0.02)
    eng = AnalogEngine(cfg, seed=5, use_cache=False)
    eng.compact_tiles = False  # to compare the characterisations
    queued = eng.program(tiny, ids[:2], mask[:2])
    assert queued > 0 and len(eng._pending) == 6 * tiny.n_layers
    t = tiny.weights.tensors
    w = t[next(k for k in t if k.endswith("ffn_down.w"))]
    layer = int(next(k for k in t if k.endswith("ffn_down.w")).split(".")[1])
    mapped, programmed, seeds = AnalogEngine(cfg, seed=5, use_cache=False)._program("ffn_down", layer, w)
    alone = AnalogMatrix(mapped, cfg, programmed, seeds)
    queued_matrix = eng.matrix("ffn_down", layer, w)
    for (t_q, y_q), (t_a, y_a) in zip(queued_matrix.characterisation, alone.characterisation):
        assert np.array_equal(t_q, t_a) and np.array_equal(y_q, y_a)
    for s_q, s_a in zip(queued_matrix.stacks, alone.stacks):  # the pool's reports reach the stacks
        assert s_q.solve_report.paths == s_a.solve_report.paths
        assert np.array_equal(s_q.solve_report.residual, s_a.solve_report.residual, equal_nan=True)
    eng.calibrate(tiny, ids[:2], mask[:2])  # collects the rest
    assert not eng._pending and eng._pool is None


def test_digital_nonlinearities_are_counted(tiny, batch):
    """softmax, LayerNorm and GELU: elements x (adds E_add + multiplies E_mul), digital only."""
    from cimphys.layers.op_stats import DIGITAL_OP_COUNTS

    ids, mask = batch
    _, eng = _error(tiny, batch, config(), 0)
    eng.reset_stats()
    states = tiny.forward(ids, mask, eng)
    ds = build_report(eng, tiny.pool(states[-1], mask), states, tiny.pool(states[-1], mask), states, mask)
    b, t = ids.shape
    h, heads, ffn = tiny.hidden, tiny.n_heads, tiny.t["layer.0.ffn_up.w"].shape[1]
    cfg = eng.cfg

    def joules(kind, elements):
        adds, muls = DIGITAL_OP_COUNTS[kind]
        return elements * (adds * cfg.fp_add_energy + muls * cfg.fp_mul_energy)

    e = ds.energy_by_op * int(ds.attrs["tokens"])  # J over the batch
    layers = tiny.n_layers
    softmax = float(e.sel(op="softmax", bucket="digital").sum())
    assert softmax == pytest.approx(joules("softmax", layers * b * heads * t * t))
    assert float(e.sel(op="gelu", bucket="digital").sum()) == pytest.approx(joules("gelu_erf", layers * b * t * ffn))
    # two per layer and one after the embeddings
    assert float(e.sel(op="layernorm", bucket="digital").sum()) == pytest.approx(
        joules("layernorm", (2 * layers + 1) * b * t * h))
    assert float(e.sel(op="softmax").sum()) == float(e.sel(op="softmax", bucket="digital").sum())
    assert not bool(ds.analog.sel(op="gelu").any()) and np.isnan(ds.matmul_snr.sel(op="gelu")).all()
    with pytest.raises(InputError, match="kind"):
        eng.nonlinear("relu", 0, 10)


def test_dropped_queue_leaves_a_working_engine(tiny, batch):
    ids, mask = batch
    cfg = config(r_wire=1.0)
    eng = AnalogEngine(cfg, seed=0, use_cache=False)
    assert eng.program(tiny, ids[:2], mask[:2]) > 0
    eng.drop_pending()
    assert eng._pool is None and not eng._pending
    eng.calibrate(tiny, ids[:2], mask[:2])  # queues again and collects everything
    assert len(eng.matrices) == 6 * tiny.n_layers and eng._pool is None


def test_range_cache_key_covers_every_config_input(tiny, batch):
    """Regression (issue 18.2): the ADC-range cache key left out column_gain_calibration, so a run
    with it off reused the gains of a run with it on (cosine 0.990 from the cache, 0.051 fresh).
    The key is now over CimConfig.identity(): every layer field and both cards' contents."""
    ids, mask = batch
    base = config()
    key = AnalogEngine(base, seed=0, cache_dir="unused")._calibration_key(tiny, ids, mask)
    for changed in (base.with_(column_gain_calibration=False), base.with_(adc_calibration="p99.9"),
                    base.with_(cell_bits=3), base.with_card(base.card.with_section("sense", power_w=2e-6))):
        assert AnalogEngine(changed, seed=0, cache_dir="unused")._calibration_key(tiny, ids, mask) != key
    assert AnalogEngine(base, seed=1, cache_dir="unused")._calibration_key(tiny, ids, mask) != key


def test_padding_stays_off_the_tiles(tiny, batch, monkeypatch, tmp_path):
    """Within padding_off(mask), static products read only the real positions: every tile read
    batch holds mask.sum() rows, padding rows carry the fp32 product exactly, real rows the
    tiles' product, and the statistics and costs count real rows only; the ADC ranges calibrated
    that way are keyed apart from ranges over every position."""
    from cimphys.layers.analog import AnalogMatrix

    ids, mask = batch  # sentence 3 has three padding positions
    real = int(mask.sum())
    eng = AnalogEngine(config(programming="gaussian", programming_sigma=0.02), seed=2, cache_dir=tmp_path)
    key_all = eng._calibration_key(tiny, ids, mask)
    with eng.padding_off(mask):
        assert eng._calibration_key(tiny, ids, mask) != key_all
        eng.calibrate(tiny, ids, mask)
    rows = []
    original = AnalogMatrix.matmul
    monkeypatch.setattr(AnalogMatrix, "matmul", lambda self, x: rows.append(len(x)) or original(self, x))
    t = tiny.weights.tensors
    name = next(k for k in t if k.endswith("ffn_up.w"))
    w, b = t[name], t[name[:-1] + "b"]
    x = np.random.default_rng(1).standard_normal(ids.shape + (w.shape[0],)).astype(np.float32)
    layer = int(name.split(".")[1])
    with eng.padding_off(mask):
        y = eng.matmul("ffn_up", layer, x, w, b)
    ref = (x.reshape(-1, w.shape[0]) @ w + b).reshape(y.shape)
    pad = mask == 0
    np.testing.assert_array_equal(y[pad], ref[pad])
    a, r = y[~pad].ravel().astype(np.float64), ref[~pad].ravel().astype(np.float64)
    assert not np.array_equal(a, r) and a @ r / np.sqrt((a @ a) * (r @ r)) > 0.9  # the tiles' estimate
    assert rows == [real] and eng.stats[("ffn_up", layer)].costs.rows == real
    eng.matmul("ffn_up", layer, x, w, b)  # outside the block: every position
    assert rows == [real, mask.size]


def test_streaming_keeps_only_read_state_and_changes_no_number(tiny, batch, tmp_path):
    """streaming=True (bounded look-ahead, calibration finished per matrix, T, g and the programmed
    cells freed) gives the embeddings of streaming=False bit for bit, with wires and the PCM
    card's programming and read noise; a compacted tile refuses what it can no longer answer."""
    ids, mask = batch
    cfg = config(r_wire=1.0, device="nandakumar2019_pcm")
    outs, engines = [], []
    for streaming in (False, True):
        eng = AnalogEngine(cfg, seed=3, cache_dir=tmp_path / str(streaming), streaming=streaming)
        if streaming:
            eng.LOOKAHEAD_TILES = 3  # a window smaller than the model: matrices are queued as others finish
        eng.calibrate(tiny, ids[:2], mask[:2])
        outs.append(_embed(tiny, ids, mask, eng))
        engines.append(eng)
    assert np.array_equal(outs[0], outs[1])
    am = next(iter(engines[1].matrices.values()))
    assert am.programmed.g is None and "_target" not in vars(am)
    stack = am.stacks[0]
    assert stack.g is None and stack.calibrated
    with pytest.raises(InputError, match="compacted"):
        stack.characterisation  # noqa: B018
    with pytest.raises(InputError, match="compact"):
        stack.read(np.full((1, stack.shape[0]), 0.5 * stack.dac.peak))
    # a second streaming run reads the tile cache the first one wrote: same numbers again
    again = AnalogEngine(cfg, seed=3, cache_dir=tmp_path / "True", streaming=True)
    again.calibrate(tiny, ids[:2], mask[:2])
    assert again.cache_hits > 0 and np.array_equal(_embed(tiny, ids, mask, again), outs[0])
