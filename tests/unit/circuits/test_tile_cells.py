"""Tile cards with cells that have state (:mod:`cimphys.circuits.tile_cells`): the shipped 1T1R
card, conductance -> state inversion against a scalar root finder, the chord surrogate against
the exact Newton read, and the card's checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from cimphys.cards import card_from_mapping
from cimphys.circuits.tile_cells import TileCells, surrogate_error
from cimphys.circuits.tile_design import TileDesign
from cimphys.errors import CardError

CARD = "stanford_1t1r_64x64"


def small_card(rows=8, cols=8, r_wire=0.0, gain=1e12, g_max=6e-5, **cell):
    """An 8 x 8 tile of the shipped card's 1T1R Stanford cells (a TIA of gain ``gain``: 1e12
    holds the bit lines at 0 V to ~1e-9 V)."""
    data = {
        "model": {"name": "tile"},
        "parameters": {"rows": rows, "cols": cols, "g_min_s": 6e-6, "g_max_s": g_max, "v_read_v": 0.2,
                       "r_wire_per_cell_ohm": r_wire, "t_read_s": 1e-7},
        "dac": {"bits": 1, "energy_per_conversion_j": 3.9e-13},
        "sense": {"kind": "tia", "r_f_ohm": 650.0, "gain": gain, "v_swing_v": 1.0, "power_w": 1e-6,
                  "mode": "reference"},
        "adc": {"bits": 8, "kind": "ideal", "sample_rate_hz": 1.28e9, "power_w": 2e-3},
        "device": {"card": "guan2012_stanford_pku"},
        "cell": {"kind": "1T1R", "access": "level1_access_nmos", "v_gate_v": 2.5, **cell},
        "provenance": {"source": "tests", "url": "https://example.org", "fitted": "none", "method": "tests",
                       "residual": "none"},
    }
    return card_from_mapping(data, "circuit", "small 1T1R test card", "small_1t1r")


def test_the_shipped_card_reads_its_window_through_1t1r_cells():
    d = TileDesign(CARD)
    cells = d.cells
    assert isinstance(cells, TileCells) and cells.kind == "1T1R" and cells.read == "chord"
    lo, hi = cells.window()
    # the transistor (~2 kOhm on at 2.5 V gate) caps the cell below the memory element's 2 mS
    assert lo < d.g_min < d.g_max < hi < 1e-3


def test_states_invert_the_cells_own_read_current():
    """Every cell's state reads its target to the inversion's 1e-9, and matches a scalar root
    finder (brentq on the same 1T1R read current) to the states' 1e-18 m resolution."""
    cells = TileDesign(CARD).cells
    g = np.random.default_rng(0).uniform(6e-6, 6e-5, (16, 16))
    x = cells.states(g)
    np.testing.assert_allclose(cells.read_conductance(x), g, rtol=1e-9)
    for k in range(0, 256, 51):
        target = g.flat[k]
        ref = brentq(lambda s: cells.read_conductance(np.array([s]))[0] - target, 0.2e-9, 1.7e-9, xtol=1e-22)
        assert x.flat[k] == pytest.approx(ref, abs=1e-18)
    # the read conductance falls as the gap widens (Stanford-PKU), so the states order inversely
    assert np.all(np.diff(x.flat[np.argsort(g.flat)]) < 0)
    # beyond the window: the bound's state (the device goes no further), never a NaN
    edge = cells.states(np.array([1e-9, 1.0]))
    # (the release reads min(gap, g_max): a state one table step past 1.7 nm reads as 1.7 nm)
    assert np.isfinite(edge).all() and edge[0] == pytest.approx(1.7e-9, abs=12e-9 / 2048)
    np.testing.assert_allclose(cells.read_conductance(edge), cells.read_conductance(np.array([1.7e-9, 0.2e-9])),
                               rtol=1e-12)


def test_chord_surrogate_is_exact_without_wires_and_errs_with_them():
    """1-bit drivers and no wires: every driven cell sees v_read itself and every other cell
    0 V, where the chord current g v is the cell's own current: the surrogate is exact (to the
    Newton tolerance).  With wires, driven cells see less than v_read and the HfOx I-V is
    superlinear (its chord conductance falls with the voltage): an error that grows with the
    wire resistance, a few 1e-3 of a full column at the ISAAC card's 2.5 ohm."""
    g = np.random.default_rng(1).uniform(6e-6, 6e-5, (8, 8))
    errs = []
    for r in (0.0, 2.5, 25.0):
        d = TileDesign(small_card(r_wire=r))
        errs.append(surrogate_error(d.cells, g, d.wires, np.random.default_rng(2), 6, True)["max"])
    assert errs[0] < 1e-8  # Newton's tolerance on the cell currents
    assert 1e-6 < errs[1] < errs[2] < 0.05, errs


def test_card_checks_name_the_card():
    with pytest.raises(CardError, match="small_1t1r.*access"):
        TileDesign(small_card(access=""))
    with pytest.raises(CardError, match="kind"):
        TileDesign(small_card(kind="2T2R"))
    with pytest.raises(CardError, match="small_1t1r.*read window"):  # 1 mS: above the transistor's cap
        TileDesign(small_card(g_max=1e-3))
