"""TileStack: many tiles of one card read at once are, tile by tile, exactly single Tiles; every
converter, driver and amplifier has its own seeded mismatch; the sensing schemes are exact."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.cards import card_from_mapping
from cimphys.circuits.tile import Tile, TileStack
from cimphys.errors import CardError, InputError

G_UNIT = 1e-6


def card(params=None, **sections):
    base = {"rows": 12, "cols": 8, "g_min_s": 0.0, "g_max_s": 16 * G_UNIT, "v_read_v": 0.3,
            "r_wire_per_cell_ohm": 2.0, "t_read_s": 1e-8}
    data = {
        "model": {"name": "tile"},
        "parameters": {**base, **(params or {})},
        "dac": {"bits": 2, "mismatch_sigma": 0.03},
        "sense": {"kind": "tia", "r_f_ohm": 1e4, "gain": 1e4, "v_swing_v": 10.0, "offset_sigma_v": 2e-3,
                  "noise_v_rms": 1e-3},
        "adc": {"bits": 8, "kind": "sar", "cap_mismatch_sigma": 0.02, "comparator_noise_lsb": 0.3,
                "noise_lsb": 0.2},
        "energy": {"cols_per_adc": 2},
        "provenance": {"source": "unit test", "url": "https://example.org", "fitted": "none",
                       "method": "made up for the test", "residual": "none"},
    }
    for name, table in sections.items():
        data[name] = {**data.get(name, {}), **table}
    return card_from_mapping(data, "circuit", "test card", "test")


@pytest.mark.parametrize("sections", [{}, {"sense": {"mode": "reference"}},
                                      {"sense": {"mode": "pair"}, "params": {"differential": True}},
                                      {"params": {"differential": True}}])
def test_stack_is_exactly_its_single_tiles(sections, rng):
    """Same card, same seed: tile k of a stack and Tile(card, G_k, seed=s_k) give identical codes,
    with every random effect on (DAC, sense, ADC mismatch and noise, wires)."""
    params = sections.get("params")
    c = card(params, **{k: v for k, v in sections.items() if k != "params"})
    seeds = [5, 9, 11]
    g = rng.uniform(0.0, 16 * G_UNIT, (3, 12, 8))
    x = rng.integers(-15, 16, (6, 12))
    stack = TileStack(c, g, seeds=seeds).calibrate(x, input_bits=5, signed=True, method="absmax", rng=3)
    y, record = stack.mvm(x, input_bits=5, signed=True)
    nt, ch = 3, stack.design.channels
    lo, hi = (np.broadcast_to(a, (nt * ch,)).reshape(nt, ch) for a in (stack.adc.lo, stack.adc.hi))
    total = 0.0
    for k in range(3):
        tile = Tile(c, g[k], seed=seeds[k]).set_adc_range(lo[k], hi[k])
        yk, rk = tile.mvm(x, input_bits=5, signed=True)
        np.testing.assert_array_equal(y[:, k], yk)
        total = total + rk.energy_total.values
    np.testing.assert_allclose(record.energy_total.values, total, rtol=1e-12)


def test_every_converter_driver_and_amplifier_draws_its_own_mismatch():
    c = card(energy={"cols_per_adc": 1})
    stack = TileStack(c, np.full((2, 12, 8), 8 * G_UNIT), seeds=[1, 2])
    levels = stack.adc.transition_levels.reshape(2, 8, -1)  # (tiles, converters, levels)
    assert all(not np.array_equal(levels[t, a], levels[t, b]) for t in range(2) for a, b in [(0, 1), (3, 7)])
    assert not np.array_equal(levels[0], levels[1])
    again = TileStack(c, np.full((2, 12, 8), 8 * G_UNIT), seeds=[1, 2])
    np.testing.assert_array_equal(again.adc.transition_levels, stack.adc.transition_levels)
    shared = TileStack(card(energy={"cols_per_adc": 4}), np.full((1, 12, 8), 8 * G_UNIT), seeds=[1])
    np.testing.assert_array_equal(shared.adc.column_converter, [0, 0, 0, 0, 1, 1, 1, 1])
    offsets = np.asarray(stack.sense.offset_v).reshape(2, 8)
    assert np.unique(offsets).size == 16
    assert stack._dac_levels.shape == (2, 12, 4) and np.unique(stack._dac_levels[:, :, 3]).size == 24


@pytest.mark.parametrize("mode,differential", [("pair", True), ("reference", False), ("column", True)])
def test_sensing_schemes_are_exact_for_an_ideal_chain(mode, differential, rng):
    """No wires, ideal converters wide enough: the codes are the integer products of the
    conductance differences the scheme senses."""
    c = card({"differential": differential, "r_wire_per_cell_ohm": 0.0},
             dac={"bits": 1, "mismatch_sigma": 0.0},
             sense={"mode": mode, "offset_sigma_v": 0.0, "noise_v_rms": 0.0, "gain": 1e12},
             adc={"bits": 14, "kind": "ideal", "cap_mismatch_sigma": 0.0, "comparator_noise_lsb": 0.0,
                  "noise_lsb": 0.0})
    k = rng.integers(0, 16, (12, 8))
    tile = Tile(c, k * G_UNIT)
    lsb = tile.sense.transimpedance * G_UNIT * tile.dac.lsb
    half = 2 ** 13
    tile.set_adc_range(-half * lsb, (half - 1) * lsb)
    x = rng.integers(0, 16, (5, 12))
    y = tile.mvm(x, input_bits=4)[0]
    if mode == "reference":
        want = x @ (k[:, :-1] - k[:, -1:])
    else:
        want = x @ (k[:, 0::2] - k[:, 1::2])
    offset = 0 if (mode == "column") else half * sum(2**p for p in range(4))
    np.testing.assert_array_equal(y - offset, want)


def test_stack_inputs_are_checked():
    c = card()
    with pytest.raises(InputError, match="seeds"):
        TileStack(c, np.zeros((2, 12, 8)), seeds=[1])
    with pytest.raises(InputError, match="conductances"):
        TileStack(c, np.zeros((2, 12, 9)))
    with pytest.raises(CardError, match="pair"):
        card(sense={"mode": "pair"}) and TileStack(card(sense={"mode": "pair"}), np.zeros((1, 12, 8)))
    with pytest.raises(CardError, match="units of g_max_s"):
        Tile(card({"g_max_s": 0.9}), None, cell=object())


def test_pulse_width_inputs_against_the_pulse_by_pulse_charge(rng):
    """A PWM tile (integrator sensing, wires): its codes are the integer product of an ideal chain
    with the charge-equivalent drive, and its array energy is V times the charge the pulses
    deliver, slot by slot (cimphys.circuits.dac.pulse_width_charge, one solve per active set)."""
    from cimphys.circuits.crossbar import Crossbar
    from cimphys.circuits.dac import pulse_width_charge

    bits, t_read = 3, 7e-8
    c = card({"r_wire_per_cell_ohm": 3.0, "t_read_s": t_read}, dac={"kind": "pwm", "bits": bits, "mismatch_sigma": 0.0},
             sense={"kind": "integrator", "c_int_f": 1e-12, "t_int_s": t_read, "v_swing_v": 100.0,
                    "offset_sigma_v": 0.0, "noise_v_rms": 0.0},
             adc={"bits": 16, "kind": "ideal", "cap_mismatch_sigma": 0.0, "comparator_noise_lsb": 0.0, "noise_lsb": 0.0})
    g = rng.uniform(0.0, 16 * G_UNIT, (12, 8))
    tile = Tile(c, g)
    x = rng.integers(0, 2**bits, (4, 12))
    _, record = tile.mvm(x, input_bits=bits)
    t_unit = t_read / (2**bits - 1)
    xb = Crossbar(g, r_wl=3.0, r_bl=3.0, r_sense=0.0)
    q = pulse_width_charge(lambda v: xb.solve(v).i_out, x, 0.3, t_unit, bits)  # C per column
    # the same charge from the tile's transfer matrix (linear cells: superposition); 1e-9: both are
    # residual-checked linear solves (RTOL_SOLVE), rounding apart
    np.testing.assert_allclose(tile.read(x * 0.3 / (2**bits - 1)).i_out * t_read, q, rtol=1e-9)
    # energy: each pulse slot drives its rows at 0.3 V, so the sources deliver 0.3 V times that charge
    np.testing.assert_allclose(record.energy_array.values, 0.3 * q.sum(axis=1), rtol=1e-9)


@pytest.mark.parametrize("dac", [{"bits": 1, "mismatch_sigma": 0.0}, {}])
def test_compacted_stack_reads_bit_for_bit_in_less_memory(dac, rng):
    """compact() keeps S T, the column sums of T and the combined noise coefficients in the
    product's dtype and drops T: the codes, currents and energies of every read stay identical
    (binary drivers with cell noise, and multi-level drivers with mismatch that need Y), the
    operands take less memory, and what it dropped is refused by name."""
    c = card(None, dac=dac)
    g = rng.uniform(0.0, 16 * G_UNIT, (3, 12, 8))
    noise = tuple(rng.uniform(0.0, s, (3, 12, 8)) for s in (1e-22, 1e-21, 1e-20))
    x = rng.integers(-15, 16, (6, 12))
    stacks = [TileStack(c, g, seeds=[1, 2, 3], cell_noise=noise).calibrate(x, input_bits=5, signed=True, rng=3)
              for _ in range(2)]
    before = sum(a.nbytes for a in (*stacks[1].characterisation, stacks[1].sensed_transfer) if a is not None)
    stacks[1].compact()
    after = sum(a.nbytes for a in (*stacks[1]._casts.values(), stacks[1]._col, *stacks[1]._noise_at.values(),
                                   stacks[1]._char[1]) if a is not None)
    assert after < before
    for _ in range(2):  # and again: the operands are reused, the noise streams go on alike
        (ya, ra), (yb, rb) = (s.mvm(x, input_bits=5, signed=True) for s in stacks)
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(ra.energy_total.values, rb.energy_total.values)
    with pytest.raises(InputError, match="compact"):
        stacks[1].characterisation
    with pytest.raises(InputError, match="float64"):
        stacks[1].read(np.full((2, 12), 0.1))


@pytest.mark.parametrize("mode,differential", [("pair", True), ("reference", False), ("column", True),
                                               ("column", False)])
def test_channels_gathered_are_the_dense_subtraction_bit_for_bit(mode, differential, rng):
    """``TileDesign.to_channels`` gathers each channel's one or two columns instead of
    multiplying by the dense ``S``: the same numbers exactly, for signed sums (``S T``) and for
    variances (``|S|``), along any axis."""
    from cimphys.circuits.tile_design import TileDesign

    d = TileDesign(card({"differential": differential}, sense={"mode": mode}))
    s = d.subtraction
    t = rng.uniform(0.0, 1e-5, (3, 8, 12))  # (tiles, N, M), like T
    np.testing.assert_array_equal(d.to_channels(t, axis=1), np.einsum("cn,tnm->tcm", s, t))
    a = rng.uniform(0.0, 1e-20, (3, 12, 8))  # (tiles, M, N), like the shot coefficients
    np.testing.assert_array_equal(d.to_channels(a, variance=True), a @ np.abs(s).T)


def test_cell_noise_is_the_single_tiles_for_any_thread_count(rng):
    """The cells' read noise (normals made in the read kernel from each tile's key, read and
    channel): tile k of a stack reads exactly as Tile(card, G_k, seed=s_k, cell_noise=...), and
    the same on one Numba thread as on all; a second read draws new noise."""
    import numba

    c = card()
    seeds, nt = [4, 17, 30], 3
    g = rng.uniform(0.0, 16 * G_UNIT, (nt, 12, 8))
    noise = tuple(rng.uniform(0.0, s, (nt, 12, 8)) for s in (1e-18, 2e-17, 1e-16))
    v = rng.choice([0.0, 0.3], (50, 12))
    reads = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        before = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            stack = TileStack(c, g, seeds=seeds, cell_noise=noise)
            reads.append((stack.read(v).i_out, stack.read(v).i_out))
        finally:
            numba.set_num_threads(before)
    np.testing.assert_array_equal(reads[0][0], reads[1][0])
    np.testing.assert_array_equal(reads[0][1], reads[1][1])
    assert not np.array_equal(reads[0][0], reads[0][1])
    for k in range(nt):
        tile = Tile(c, g[k], seed=seeds[k], cell_noise=tuple(a[k] for a in noise))
        np.testing.assert_array_equal(reads[0][0][:, k], tile.read(v).i_out.reshape(len(v), -1))
        np.testing.assert_array_equal(reads[0][1][:, k], tile.read(v).i_out.reshape(len(v), -1))


@pytest.mark.parametrize("adc", [{"cap_mismatch_sigma": 0.02}, {"cap_mismatch_sigma": 0.0}, {"kind": "ideal"}])
@pytest.mark.parametrize("dac", [{"bits": 1, "mismatch_sigma": 0.0}, {}])
def test_fused_mvm_is_the_reads_converted_and_shift_added(adc, dac, rng, monkeypatch):
    """A noiseless converter is run inside the read kernel (codes and shift-add in one pass):
    the codes, energies and clip counts equal those of the sense outputs converted by
    ``ADC.convert`` and shift-added, for SARs with and without capacitor mismatch, an ideal
    converter, binary and multi-level drivers with mismatch, and cell noise."""
    from cimphys.circuits.adc import ADC

    c = card(None, dac=dac, adc={"comparator_noise_lsb": 0.0, "noise_lsb": 0.0, **adc},
             sense={"noise_v_rms": 0.0, "v_swing_v": 0.15})
    g = rng.uniform(0.0, 16 * G_UNIT, (3, 12, 8))
    noise = tuple(rng.uniform(0.0, s, (3, 12, 8)) for s in (1e-22, 1e-21, 1e-20))
    x = rng.integers(-15, 16, (6, 12))
    stacks = [TileStack(c, g, seeds=[1, 2, 3], cell_noise=noise).calibrate(x[:3], input_bits=5, signed=True, rng=3)
              for _ in range(2)]
    assert stacks[0].adc.kernel_terms(stacks[0].n_tiles * stacks[0].design.channels) is not None
    fused = stacks[0].mvm(x, input_bits=5, signed=True)
    monkeypatch.setattr(ADC, "kernel_terms", lambda self, ncol: None)
    apart = stacks[1].mvm(x, input_bits=5, signed=True)
    np.testing.assert_array_equal(fused[0], apart[0])
    assert np.unique(fused[0]).size > 10
    for name in ("energy_total", "saturated"):
        np.testing.assert_array_equal(fused[1][name].values, apart[1][name].values)
    assert fused[1].saturated.values.any()


@pytest.mark.parametrize("noisy", [True, False])
def test_a_stack_from_its_read_state_reads_like_the_compacted_stack(noisy, rng):
    """``read_state`` holds what a compacted stack reads with; ``from_read_state`` rebuilds that
    stack without its conductances: the same codes, energies and solve report, bit for bit.
    Drivers with several levels need ``Y``: they have no read state."""
    c = card(None, dac={"bits": 1, "mismatch_sigma": 0.0})
    g = rng.uniform(0.0, 16 * G_UNIT, (3, 12, 8))
    noise = tuple(rng.uniform(0.0, s, (3, 12, 8)) for s in (1e-22, 1e-21, 1e-20)) if noisy else None
    x = rng.integers(-15, 16, (6, 12))
    stack = TileStack(c, g, seeds=[1, 2, 3], cell_noise=noise).calibrate(x, input_bits=5, signed=True, rng=3)
    state = stack.read_state()
    stack.compact()
    again = TileStack.from_read_state(c, [1, 2, 3], state, stack.solve_report)
    again.set_adc_range(stack.adc.lo, stack.adc.hi)
    (ya, ra), (yb, rb) = (s.mvm(x, input_bits=5, signed=True) for s in (stack, again))
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ra.energy_total.values, rb.energy_total.values)
    assert again.solve_report is stack.solve_report and again.g is None and again.compacted
    assert TileStack(card(None), g, seeds=[1, 2, 3]).read_state() is None  # 2-bit DACs with mismatch
    with pytest.raises(InputError, match="read state operand"):
        TileStack.from_read_state(c, [1, 2], state, stack.solve_report)
