"""Q4_1 codes as cell levels: exact with ideal periphery, better than re-quantising the
dequantised weights onto the same 4-bit cells, and the tiny Q4_1 Llama through the engine."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.errors import CacheWarning, InputError
from cimphys.layers import AnalogEngine, DigitalEngine, build_model, load_model
from cimphys.layers.analog import AnalogMatrix
from cimphys.layers.mapping import Mapping, map_matrix, map_q4_1
from cimphys.layers.quantised import QuantisedEngine, QuantisedMatrix
from cimphys.layers.tiny_llama import tiny_llama_config, tiny_llama_tensors, write_tiny_llama_gguf
from small_cards import config

gguf = pytest.importorskip("gguf", reason="pip install gguf (the 'llm' extra of cimphys)")

# 24-bit inputs, 16-bit ideal ADCs over calibrated ranges, no wires, ideal cells: each read is
# quantised to ~2^-15 of its range, kept relative by the binary shift-add: 1e-4 of the output.
RTOL_IDEAL = 1e-4
IDEAL = config(32, 16, input_bits=24, adc_bits=16)


@pytest.fixture(scope="module")
def q41(tmp_path_factory):
    cfg = tiny_llama_config()
    path = write_tiny_llama_gguf(tmp_path_factory.mktemp("q") / "m.gguf", cfg, tiny_llama_tensors(cfg, seed=9),
                                 qtype="Q4_1")
    return load_model(path)


def _calibrated(am, x):
    am.calibrate(x, np.random.default_rng(0))
    am.finish_calibration()
    return am


def test_codes_exact_with_ideal_periphery(q41, rng):
    qt = q41.quant["blk.0.ffn_down.weight"]  # (out 64, in 96)
    w = qt.dequantised().T.astype(np.float64)  # (in, out)
    x = rng.standard_normal((6, w.shape[0]))
    qm = _calibrated(QuantisedMatrix(qt.codes.T, qt.scale.T, qt.min.T, IDEAL, rng), x)
    y, costs = qm.matmul(x)
    ref = x @ w
    assert np.abs(y - ref).max() / np.abs(ref).max() < RTOL_IDEAL
    assert costs.digital > 0 and costs.adc > 0 and qm.n_tiles == 3 * 5  # 96/32 blocks x ceil(64/15) tiles
    # the generic mapping of the dequantised weights onto the same 4-bit cells (sign and 4
    # magnitude bits would need two cells; one 16-level cell leaves 3 bits of magnitude)
    one_cell = IDEAL.with_(rows=32, cell_bits=4, n_slices=1)
    generic = _calibrated(AnalogMatrix.program(map_matrix(w, one_cell.mapping), one_cell, rng), x)
    err_generic = np.abs(generic.matmul(x)[0] - ref).max() / np.abs(ref).max()
    assert err_generic > 100 * RTOL_IDEAL


def test_map_q4_1_layout_and_checks():
    codes = np.arange(32 * 5).reshape(32, 5) % 16
    mm = map_q4_1(codes, np.ones(5), Mapping(rows=32, cols=8, cell_bits=4, n_slices=1, sign="offset"))
    assert mm.digits.shape == (1, 1, 1, 32, 8)
    assert np.array_equal(mm.digits[0, 0, 0, :, :5], codes) and np.all(mm.digits[0, 0, 0, :, 7] == 8)
    assert np.array_equal(mm.q, codes - 8)
    with pytest.raises(InputError, match="rows=32"):
        map_q4_1(codes, np.ones(5), Mapping(rows=64, cols=8, cell_bits=4, n_slices=1, sign="offset"))
    with pytest.raises(InputError, match="0..15"):
        map_q4_1(codes + 1, np.ones(5), Mapping(rows=32, cols=8, cell_bits=4, n_slices=1, sign="offset"))


def test_tiny_q4_1_llama_on_the_quantised_engine(q41):
    """Ideal periphery: the whole decoder on code-mapped tiles gives the dequantised model's logits."""
    model = build_model(q41)
    ids = np.array([[3, 14, 15, 9, 2, 6, 5, 35]])
    eng = QuantisedEngine(q41, IDEAL)
    eng.calibrate(model, ids)
    _, out = model.forward(ids, engine=eng, logits=True)
    _, ref = model.forward(ids, engine=DigitalEngine(), logits=True)
    # 2 blocks of 6 products, each with ~3e-5 relative ADC rounding, compounded through RMSNorm and
    # softmax (measured 1.1e-3): 5e-3
    assert np.abs(out - ref).max() / np.abs(ref).max() < 5e-3
    assert all(isinstance(eng.matrices[(op, 0)], QuantisedMatrix) for op in ("query", "ffn_up", "ffn_down"))
    with pytest.raises(InputError, match="no Q4_1"):
        QuantisedEngine(load_model(write_tiny_llama_gguf(
            q41.path.parent / "f32.gguf", tiny_llama_config(), tiny_llama_tensors(tiny_llama_config()))))
    assert isinstance(eng, AnalogEngine)


@pytest.mark.slow  # 11 s at load 6
def test_q4_1_codes_with_the_kv_cache_on_cim(q41):
    """QuantisedKVEngine: Q4_1 code tiles for the projections and the KV cache written into CIM
    arrays, together.  Against the same code tiles with attention digital, the only new error is
    the KV arrays' (8-bit operands per position, 8-bit inputs and 16-bit ADCs of the ideal card),
    and each KV cell is written once over a greedy generation."""
    from cimphys.layers import Routing
    from cimphys.layers.kv_cim import KVCimEngine, QuantisedKVEngine
    from cimphys.layers.sampling import generate

    model = build_model(q41)
    cfg = IDEAL.with_(input_bits=8)
    prompt = [3, 14, 15, 9, 2, 6, 5, 35]
    runs = {}
    for name, eng in (("kv", QuantisedKVEngine(q41, cfg, Routing(), streaming=True)),
                      ("digital kv", QuantisedEngine(q41, cfg, Routing()))):
        eng.calibrate(model, np.array([[7, 1, 8, 2, 8, 18, 28, 4]]))  # not the prompt
        eng.reset_stats()
        runs[name] = (generate(model, prompt, 4, eng), eng)
    (kv, eng), (ref, _) = runs["kv"], runs["digital kv"]
    assert isinstance(eng, KVCimEngine) and isinstance(eng, QuantisedEngine)
    assert all(isinstance(eng.matrices[(op, 1)], QuantisedMatrix) for op in ("query", "ffn_down"))
    assert eng.stats[("qk", 1)].costs.write > 0 and eng.stats[("av", 0)].costs.cell_writes > 0
    assert eng.kv_writes().attrs["max_writes_per_cell"] == 1
    a, b = np.array(kv.logits, np.float64), np.array(ref.logits, np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    # 8-bit q, K, V and softmax weights (~0.5 % rms per product) over 2 blocks: measured min 0.99991
    assert cos.min() > 0.999 and kv.tokens[0] == ref.tokens[0]


def test_code_tiles_and_adc_ranges_cached_and_keyed_on_codes(q41, tmp_path):
    """Code tiles with wires go to the tile cache and their ADC ranges to the range cache: a
    second engine loads both (no calibration pass; each matrix from its read state, without
    programming) and gives the same logits bit for bit, and so does one whose read states were
    damaged (they are refused and rebuilt from the tile entries); other codes (another model),
    another seed or other calibration tokens miss."""
    model = build_model(q41)
    ids = np.array([[3, 14, 15, 9, 2, 6]])
    cfg = config(32, 16, r_wire=1.0)
    logits, engines = [], []
    for _ in range(2):
        eng = QuantisedEngine(q41, cfg, seed=1, cache_dir=tmp_path, streaming=True)
        eng.calibrate(model, ids[:, :4])
        logits.append(model.forward(ids, engine=eng, logits=True)[1])
        engines.append(eng)
    n = len(engines[0].matrices)
    tiles = lambda: [p for p in tmp_path.glob("*.npz") if p.name.count(".") == 1]  # noqa: E731
    states = sorted(tmp_path.glob("*.state.npz"))
    assert engines[0].cache_hits == 0 and engines[1].cache_hits == n + 1 > 1  # + the ADC ranges
    assert len(tiles()) == n == len(states) and len(list(tmp_path.glob("*.ranges.npz"))) == 1
    assert all(am.stacks[0].g is None and am.stacks[0].compacted for am in engines[1].matrices.values())
    assert np.array_equal(logits[0], logits[1])
    for p in states:
        p.write_bytes(p.read_bytes()[:-50])  # truncated: refused, the tiles rebuilt from their entries
    with pytest.warns(CacheWarning):
        eng = QuantisedEngine(q41, cfg, seed=1, cache_dir=tmp_path, streaming=True)
        eng.calibrate(model, ids[:, :4])
        assert np.array_equal(model.forward(ids, engine=eng, logits=True)[1], logits[0])
    assert eng.cache_hits == n + 1 and len(list(tmp_path.glob("*.state.npz"))) == n
    other = QuantisedEngine(q41, cfg, seed=2, cache_dir=tmp_path)
    other.calibrate(model, ids[:, :4])
    assert other.cache_hits == 0 and len(tiles()) == 2 * n
    tokens = QuantisedEngine(q41, cfg, seed=1, cache_dir=tmp_path)
    tokens.calibrate(model, ids[:, 1:5])  # the tiles hit, the ranges (other tokens) miss
    assert tokens.cache_hits == n and len(list(tmp_path.glob("*.ranges.npz"))) == 3
    # the float mapping of the same weights, configuration and tokens keeps ranges of its own
    flt = AnalogEngine(cfg, seed=1, cache_dir=tmp_path)
    flt.calibrate(model, ids[:, :4])
    assert len(list(tmp_path.glob("*.ranges.npz"))) == 4


def _per_block(codes, scale, mins, cfg, seed, x_cal, x):
    """The product block by block, one AnalogMatrix per 32-row block (the reads before
    QuantisedMatrix merged them): the reference the merged reads must equal bit for bit."""
    from cimphys.layers.quantised import offset_config

    cfg = offset_config(cfg)
    rng = np.random.default_rng(seed)
    blocks = [AnalogMatrix.program(map_q4_1(codes[b * 32:(b + 1) * 32], scale[b], cfg.mapping), cfg, rng)
              for b in range(codes.shape[0] // 32)]
    cal = np.random.default_rng(seed + 1)
    for b, a in enumerate(blocks):
        a.calibrate(x_cal[:, b * 32:(b + 1) * 32], cal)
        a.finish_calibration()
    y, latency, energy = np.zeros((x.shape[0], codes.shape[1])), [], 0.0
    for b, a in enumerate(blocks):
        yb, c = a.matmul(x[:, b * 32:(b + 1) * 32])
        y += yb
        latency.append(c.latency)
        energy += c.array + c.dac + c.sense + c.adc
    y += x.reshape(x.shape[0], -1, 32).sum(axis=2) @ (8.0 * scale + mins).astype(np.float64)
    return y, latency, energy


@pytest.mark.parametrize("per_read", [128, 6])
def test_merged_block_reads_equal_per_block_reads(per_read, monkeypatch):
    """The default card (wires, device read noise, sense offsets and noise, column fits): reading
    all blocks' tiles in one stack (or in stacks of two blocks, per_read=6) gives the per-block
    product bit for bit (same input quantisation per block, same draws per tile); the energy is
    the same sum in another order (1e-12); the blocks read in parallel: one block's latency."""
    from cimphys.layers import CimConfig, default_card

    if default_card() is None:
        pytest.skip("the default tile card is not installed")
    monkeypatch.setattr(QuantisedMatrix, "TILES_PER_READ", per_read)
    r = np.random.default_rng(5)
    k, n = 96, 300  # 3 blocks of 3 tiles (127 weight columns per tile)
    codes = r.integers(0, 16, (k, n)).astype(np.uint8)
    scale, mins = r.uniform(0.01, 0.02, (3, n)).astype(np.float32), r.uniform(-0.2, 0, (3, n)).astype(np.float32)
    x_cal, x = r.standard_normal((8, k)), r.standard_normal((5, k))
    cfg = CimConfig.from_card(default_card())
    ref, latency, energy = _per_block(codes, scale, mins, cfg, 3, x_cal, x)
    qm = QuantisedMatrix(codes, scale, mins, cfg, np.random.default_rng(3))
    assert [len(g) for g in qm.groups] == ([3] if per_read == 128 else [2, 1])
    qm.calibrate(x_cal, np.random.default_rng(4))
    qm.finish_calibration()
    y, costs = qm.matmul(x)
    assert np.array_equal(y, ref)
    assert costs.array + costs.dac + costs.sense + costs.adc == pytest.approx(energy, rel=1e-12)
    assert costs.latency == pytest.approx(latency[0], rel=1e-12) and len(set(latency)) == 1


def test_a_matrix_rebuilt_from_its_read_state_reads_bit_for_bit():
    """The read state (stacks' operands, seeds, solve reports, drift, programming costs) stands
    in for programming and characterising again: a matrix rebuilt from it reads, after the same
    ADC ranges, exactly like the compacted matrix that stored it, and reports the same solves
    and programming; a state of the wrong size is refused."""
    from cimphys.layers import CimConfig, default_card

    if default_card() is None:
        pytest.skip("the default tile card is not installed")
    r = np.random.default_rng(6)
    k, n = 96, 200
    codes = r.integers(0, 16, (k, n)).astype(np.uint8)
    scale, mins = r.uniform(0.01, 0.02, (3, n)).astype(np.float32), r.uniform(-0.2, 0, (3, n)).astype(np.float32)
    cfg = CimConfig.from_card(default_card())
    qm = QuantisedMatrix(codes, scale, mins, cfg, np.random.default_rng(3))
    _calibrated(qm, r.standard_normal((8, k)))
    state = qm.read_state()
    qm.compact()
    again = QuantisedMatrix.from_read_state(codes, scale, mins, cfg, state)
    again.set_calibration(qm.calibration)
    x = r.standard_normal((4, k))
    (y0, c0), (y1, c1) = qm.matmul(x), again.matmul(x)
    assert np.array_equal(y0, y1) and c0 == c1
    assert qm.programming == again.programming and np.array_equal(qm.drift, again.drift)
    for s0, s1 in zip(qm.stacks, again.stacks):
        assert s0.solve_report.arrays().keys() == s1.solve_report.arrays().keys()
        for f, a in s0.solve_report.arrays().items():
            np.testing.assert_array_equal(a, s1.solve_report.arrays()[f])
    bad = {**state, "seeds": state["seeds"][:-1]}
    with pytest.raises(InputError, match="read state"):
        QuantisedMatrix.from_read_state(codes, scale, mins, cfg, bad)
