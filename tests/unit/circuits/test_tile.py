"""Tile: the whole digital -> analog -> digital chain, against exact integer products and the
crossbar solved directly."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.cards import card_from_mapping, load_circuit
from cimphys.circuits.crossbar import Crossbar
from cimphys.circuits.tile import Tile, weights_to_conductances
from cimphys.devices import SinhCell
from cimphys.errors import CardError, InputError

# Fast path (cached T, Y) vs a fresh nodal solve: both are 1e-12-residual linear solves.
RTOL_FAST = 1e-9
G_UNIT = 1e-6


def make_card(params=None, **sections):
    base = {"rows": 12, "cols": 8, "g_min_s": 0.0, "g_max_s": 16 * G_UNIT, "v_read_v": 0.3,
            "r_wire_per_cell_ohm": 0.0, "t_read_s": 1e-8}
    data = {
        "model": {"name": "tile"},
        "parameters": {**base, **(params or {})},
        "dac": {"bits": 1},
        "sense": {"kind": "tia", "r_f_ohm": 1e4, "gain": 1e9, "v_swing_v": 10.0},
        "adc": {"bits": 12},
        "energy": {"cols_per_adc": 4},
        "provenance": {"source": "unit test", "url": "https://example.org", "fitted": "none",
                       "method": "made up for the test", "residual": "none"},
    }
    for name, table in sections.items():
        data[name] = {**data.get(name, {}), **table}
    return card_from_mapping(data, "circuit", "test card", "test")


def exact_range(tile: Tile, bits: int = 12):
    """ADC range whose LSB is one unit conductance times one DAC step (ideal chain)."""
    lsb = tile.sense.transimpedance * G_UNIT * tile.dac.lsb
    tile.set_adc_range(0.0, lsb * (2**bits - 1))


@pytest.mark.parametrize("dac_bits,signed", [(1, False), (2, False), (3, True)])
def test_ideal_chain_is_the_exact_integer_product(dac_bits, signed, rng):
    k = rng.integers(0, 16, (12, 8))
    tile = Tile(make_card(dac={"bits": dac_bits}), k * G_UNIT, seed=0)
    exact_range(tile)
    lo, hi = (-128, 128) if signed else (0, 256)
    x = rng.integers(lo, hi, (20, 12))
    y, record = tile.mvm(x, input_bits=8, signed=signed)
    np.testing.assert_array_equal(y, x @ k)
    np.testing.assert_array_equal(tile.mvm(x[3], input_bits=8, signed=signed)[0], x[3] @ k)
    np.testing.assert_allclose(tile.codes_to_dot(y, 8, signed), x @ (k * G_UNIT), rtol=1e-12, atol=1e-20)
    assert int(record.saturated.sum()) == 0


def test_differential_ideal_chain(rng):
    w = rng.integers(-7, 8, (12, 4))
    g = weights_to_conductances(make_card({"differential": True}), w, w_max=15)
    k = np.round(g / G_UNIT)
    np.testing.assert_allclose(k[:, 0::2] - k[:, 1::2], w)
    tile = Tile(make_card({"differential": True}), k * G_UNIT)
    exact_range(tile)
    x = rng.integers(0, 16, (9, 12))
    y, _ = tile.mvm(x, input_bits=4)
    np.testing.assert_array_equal(y, x @ w)


def test_fast_path_equals_full_solve(rng):
    card = make_card({"r_wire_per_cell_ohm": 5.0, "r_driver_ohm": 20.0})
    g = rng.uniform(0.0, 16 * G_UNIT, (12, 8))
    tile = Tile(card, g)
    v = rng.uniform(0.0, 0.3, (5, 12))
    sol = Crossbar(g, r_wl=5.0, r_bl=5.0, r_driver=20.0, r_sense=tile.sense.r_sense).solve(v)
    res = tile.read(v)
    np.testing.assert_allclose(res.i_out, sol.i_out, rtol=RTOL_FAST)
    np.testing.assert_allclose(res.p_source, sol.power()["source"].sum(axis=-1), rtol=RTOL_FAST)
    cached = Tile(card, g, characterisation=tile.characterisation())
    np.testing.assert_array_equal(cached.read(v).i_out, res.i_out)


def test_nonlinear_cells_go_through_the_full_solve(rng):
    card = make_card({"r_wire_per_cell_ohm": 2.0})
    cell = SinhCell(k=rng.uniform(1e-7, 1e-6, (12, 8)), a=3.0)
    tile = Tile(card, None, cell=cell)
    tile.set_adc_range(0.0, 0.05)
    x = rng.integers(0, 4, (3, 12))
    y, record = tile.mvm(x, input_bits=2)
    digits = np.stack([x & 1, (x >> 1) & 1]) * 0.3
    sol = Crossbar(None, 2.0, 2.0, 0.0, tile.sense.r_sense, cell=cell).solve(digits.reshape(-1, 12))
    codes = tile.adc.convert(tile.sense.output(sol.i_out, g_source=0.0)[0]).reshape(2, 3, 8)
    np.testing.assert_array_equal(y, codes[0] + 2 * codes[1])
    # Array energy = power dissipated in cells, wires and the sense input resistance (conservation).
    v_in, v_wl, v_bl, r, rs = digits.reshape(-1, 12), sol.v_wl, sol.v_bl, 2.0, tile.sense.r_sense
    p_cell = (sol.i_cell * (v_wl - v_bl)).sum(axis=(1, 2))
    p_wl = ((v_in - v_wl[:, :, 0]) ** 2).sum(-1) / r + (np.diff(v_wl, axis=2) ** 2).sum(axis=(1, 2)) / r
    p_bl = (np.diff(v_bl, axis=1) ** 2).sum(axis=(1, 2)) / r + ((v_bl[:, -1] - sol.i_out * rs) ** 2).sum(-1) / r
    p_total = p_cell + p_wl + p_bl + (sol.i_out**2 * rs).sum(-1)
    np.testing.assert_allclose(record.energy_array.values,
                               p_total.reshape(2, 3).sum(0) * 1e-8, rtol=1e-7)  # Newton tolerance
    with pytest.raises(InputError, match="cell"):
        tile.characterisation()


def test_codes_to_current_is_within_half_an_lsb_per_phase(rng):
    card = make_card({"r_wire_per_cell_ohm": 3.0}, adc={"bits": 8})
    g = rng.uniform(0.0, 16 * G_UNIT, (12, 8))
    tile = Tile(card, g, seed=4)
    x = rng.integers(0, 256, (30, 12))
    tile.calibrate(x, input_bits=8)
    y, _ = tile.mvm(x, input_bits=8)
    t = tile.characterisation()["T"]
    analog = (x * tile.dac.lsb) @ t.T  # sum_p 2**p i_p for binary drivers
    bound = 0.5 * tile.adc.lsb / tile.sense.transimpedance * 255  # 1/2 LSB on each of 8 phases
    assert np.all(np.abs(tile.codes_to_current(y, 8) - analog) <= bound * (1 + 1e-9))


def test_seeded_noise_is_reproducible():
    card = make_card(sense={"noise_v_rms": 1e-3, "offset_sigma_v": 1e-3}, adc={"bits": 8, "noise_lsb": 0.5})
    g = np.full((12, 8), 8 * G_UNIT)
    x = np.arange(24).reshape(2, 12) % 16
    ya = Tile(card, g, seed=5).mvm(x, 4)[0]
    yb = Tile(card, g, seed=5).mvm(x, 4)[0]
    yc = Tile(card, g, seed=6).mvm(x, 4)[0]
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, yc)
    tile = Tile(card, g, seed=5)
    np.testing.assert_array_equal(tile.mvm(x, 4, rng=1)[0], tile.mvm(x, 4, rng=1)[0])


def test_calibration_shares_pair_ranges(rng):
    card = make_card({"differential": True}, adc={"bits": 8})
    g = rng.uniform(0.0, 16 * G_UNIT, (12, 8))
    tile = Tile(card, g).calibrate(rng.integers(0, 16, (10, 12)), input_bits=4)
    np.testing.assert_array_equal(tile.adc.lo[0::2], tile.adc.lo[1::2])
    np.testing.assert_array_equal(tile.adc.hi[0::2], tile.adc.hi[1::2])
    assert tile.adc.lo.size == 8


def test_energy_record_components(rng):
    card = make_card(dac={"energy_per_conversion_j": 1e-13, "c_wordline_f": 1e-14},
                     sense={"power_w": 1e-5}, adc={"bits": 8, "power_w": 1e-3, "sample_rate_hz": 1e9},
                     energy={"cols_per_adc": 4, "pipelined": False, "e_shift_add_j": 1e-15})
    tile = Tile(card, rng.uniform(0.0, 16 * G_UNIT, (12, 8)))
    x = rng.integers(0, 16, (3, 12))
    _, rec = tile.mvm(x, input_bits=4)
    v = np.stack([(x >> p) & 1 for p in range(4)]) * 0.3
    p_src = np.einsum("pbm,mk,pbk->b", v, tile.characterisation()["Y"], v)
    # binary drivers: the tile takes V sum_j i_out[j] (from T), equal to v.Y.v up to the unit
    # solves' accuracy (Y and T come from separate solves with residual <= 1e-10)
    np.testing.assert_allclose(rec.energy_array, p_src * 1e-8, rtol=1e-9)
    np.testing.assert_allclose(rec.energy_dac, 4 * 12 * 1e-13 + 1e-14 * (v**2).sum(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(rec.energy_sense, 4 * 8 * 1e-5 * 1e-8, rtol=1e-12)
    np.testing.assert_allclose(rec.energy_adc, 4 * 8 * 1e-12, rtol=1e-12)
    assert float(rec.latency) == pytest.approx(4 * (1e-8 + 4 * 1e-9))
    assert rec.energy_total.attrs["units"] == "J" and rec.latency.attrs["units"] == "s"


def test_shipped_cards_build_tiles(rng):
    for name in ("isaac_128x128", "neurram_256x256"):
        card = load_circuit(name)
        assert card.model == "tile" and {"dac", "sense", "adc"} <= set(card.sections)
    card = load_circuit("isaac_128x128")
    tile = Tile(card, np.full((128, 128), card["g_min_s"]))
    assert tile.energy.t_conversion * tile.energy.cols_per_adc == pytest.approx(card["t_read_s"])


def test_bad_inputs_raise(rng):
    tile = Tile(make_card(), np.zeros((12, 8)))
    with pytest.raises(InputError, match="x_int"):
        tile.mvm(np.zeros((2, 11), dtype=int), 4)
    with pytest.raises(InputError, match="x_int"):
        tile.mvm(np.full((2, 12), 16), 4)
    with pytest.raises(InputError, match="conductances"):
        Tile(make_card(), np.full((12, 8), 1.0))
    with pytest.raises(InputError, match="conductances"):
        Tile(make_card(), np.zeros((12, 9)))
    with pytest.raises(CardError, match="tile"):
        Tile(card_from_mapping({"model": {"name": "adc"}, "parameters": {"bits": 4},
                                "provenance": {"source": "s", "url": "u", "fitted": "f", "method": "m",
                                               "residual": "r"}}, "circuit", "adc card", "a"), None)


def test_integrator_sensing_ideal_chain_and_load_resistor_loading(rng):
    k = rng.integers(0, 16, (12, 8))
    card = make_card(sense={"kind": "integrator", "c_int_f": 1e-12, "t_int_s": 1e-8, "v_swing_v": 100.0},
                     adc={"bits": 12, "kind": "ramp", "f_clk_hz": 1e10})
    tile = Tile(card, k * G_UNIT)
    assert tile.sense.r_sense == 0.0 and tile.energy.t_read == 1e-8
    exact_range(tile)
    x = rng.integers(0, 16, (6, 12))
    np.testing.assert_array_equal(tile.mvm(x, input_bits=4)[0], x @ k)
    # Voltage-mode sensing: the load resistor is the array's r_sense, so the column current drops.
    load = Tile(make_card(sense={"kind": "load", "r_load_ohm": 1e4}), k * G_UNIT)
    v = np.full((1, 12), 0.3)
    sol = Crossbar(k * G_UNIT, r_wl=0.0, r_bl=0.0, r_sense=1e4).solve(v)
    np.testing.assert_allclose(load.read(v).i_out, sol.i_out, rtol=RTOL_FAST)
    np.testing.assert_allclose(load.read(v).v_sense, 1e4 * sol.i_out, rtol=RTOL_FAST)
    live = k.sum(axis=0) > 0
    assert np.all(sol.i_out[:, live] < (v @ (k * G_UNIT))[:, live])


def test_cell_current_noise_has_the_stated_variance(rng):
    """A read with ``current_noise`` adds a Gaussian column current of variance
    thermal + |v| @ shot; zero noise leaves the codes of a plain read unchanged."""
    card = make_card()
    g = rng.uniform(1 * G_UNIT, 15 * G_UNIT, (12, 8))
    tile = Tile(card, g, seed=3)
    x = rng.integers(0, 16, (5, 12))
    zero = (np.zeros(8), np.zeros((12, 8)))
    np.testing.assert_array_equal(tile.mvm(x, 4, rng=2, current_noise=zero)[0], tile.mvm(x, 4, rng=2)[0])
    thermal, shot = np.linspace(1e-18, 4e-18, 8), np.full((12, 8), 2e-18)
    v = np.tile(rng.uniform(0.0, 0.2, 12), (20_000, 1))
    clean = tile.read(v[:1], rng=4).i_out[0]
    noisy = tile.read(v, rng=4, current_noise=(thermal, shot)).i_out
    want = np.sqrt(thermal + np.abs(v[0]) @ shot)
    # sample std of 2e4 Gaussians: relative standard error 0.5 %; 3 % is 6 SE
    np.testing.assert_allclose((noisy - clean).std(axis=0), want, rtol=0.03)
    np.testing.assert_allclose((noisy - clean).mean(axis=0), 0.0, atol=6 * want.max() / np.sqrt(2e4))
    with pytest.raises(InputError, match="current_noise shot"):
        tile.read(v[:1], current_noise=(thermal, np.zeros((3, 8))))
    with pytest.raises(InputError, match="current_noise thermal"):
        tile.read(v[:1], current_noise=(np.full(8, np.nan), shot))
    with pytest.raises(InputError, match="current_noise"):
        tile.read(v[:1], current_noise=thermal)
