"""The gated-row solve of a 1T1R array (:mod:`cimphys.circuits.gated_row`) against the full
network's Newton solve (:func:`cimphys.circuits.newton.solve_nonlinear`), and row-parallel
write-verify of 1T1R VTEAM cells by V/3 with it against the same with the full solve."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from cimphys.cards import load_device
from cimphys.circuits.array_program import row_bias_voltages, write_verify_rows
from cimphys.circuits.gated_row import row_is_gated, solve_gated_row
from cimphys.circuits.network import Network
from cimphys.circuits.newton import solve_nonlinear
from cimphys.devices import Level1Mosfet
from cimphys.devices.dynamics import model_from_card
from cimphys.devices.transistor_memory import TransistorMemoryCell

# Both solve the same equations to the same KCL tolerance (1e-11 of the largest current): node
# voltages agree to ~1e-12 V, currents to ~1e-11 relative
ATOL_V = 1e-11
RTOL_I = 1e-9


@pytest.fixture(scope="module")
def parts():
    return (model_from_card(load_device("kvatinsky2015_vteam_pickett")),
            Level1Mosfet.from_card(load_device("level1_access_nmos")))


@pytest.mark.parametrize("kind", ["set", "reset", "read"])
def test_gated_row_is_the_full_network(parts, kind):
    vt, nmos = parts
    m, n, row = 9, 7, 4
    x = np.random.default_rng(3).uniform(0.2e-9, 3e-9, (m, n))
    v_gate = np.zeros(m)
    v_gate[row] = 3.3
    cells = TransistorMemoryCell(nmos, vt, x, v_gate)
    if kind == "read":
        v_in, v_bl = np.zeros(m), np.zeros(n)
        v_in[row] = 0.2
    else:
        amp = -1.8 if kind == "set" else 0.55
        v_in, v_bl = row_bias_voltages((m, n), row, np.where(np.arange(n) % 2 == 0, amp, 0.0), "V/3", grounded=True)
    net = Network.build((m, n), r_wl=2.5, r_bl=4.0, r_driver=10.0, r_sense=20.0, v_bl_end=v_bl)
    assert row_is_gated(cells, net, v_in, row)
    full, fast = solve_nonlinear(net, cells, v_in), solve_gated_row(cells, net, v_in, row)
    np.testing.assert_allclose(fast.v_wl, full.v_wl, rtol=0, atol=ATOL_V)
    np.testing.assert_allclose(fast.v_bl, full.v_bl, rtol=0, atol=ATOL_V)
    scale = np.abs(full.i_out).max()
    np.testing.assert_allclose(fast.i_out, full.i_out, rtol=0, atol=RTOL_I * scale)
    np.testing.assert_allclose(fast.i_cell, full.i_cell, rtol=0, atol=RTOL_I * scale)
    assert np.abs(full.i_cell[np.arange(m) != row]).max() == 0.0  # the cut-off rows carry nothing


def test_not_gated_when_another_gate_is_on_or_a_line_is_below_ground(parts):
    vt, nmos = parts
    x = np.full((3, 3), 1e-9)
    net = Network.build((3, 3), r_wl=1.0, r_bl=1.0)
    v = np.array([0.2, 0.0, 0.0])
    assert row_is_gated(TransistorMemoryCell(nmos, vt, x, [3.3, 0.0, 0.0]), net, v, 0)
    assert not row_is_gated(TransistorMemoryCell(nmos, vt, x, [3.3, 0.5, 0.0]), net, v, 0)
    assert not row_is_gated(TransistorMemoryCell(nmos, vt, x, [3.3, 0.0, 0.0]), net, -v, 0)
    assert not row_is_gated(TransistorMemoryCell(nmos, vt, x, [3.3, 0.0, 0.0]), net, v, None)
    assert not row_is_gated(TransistorMemoryCell(nmos, vt, x, 3.3), net, v, 0)  # one gate voltage: all rows on


@pytest.mark.slow
def test_v3_write_verify_of_1t1r_cells_is_the_full_solves(parts):
    """V/3 is the scheme for gated 1T1R VTEAM cells: the off transistors hold every other row at
    0 V and the selected row's inhibited cells see |V_w|/3 (0.6 V SET, < 0.2 V RESET), inside
    VTEAM's thresholds (-1.5 V, +0.3 V): no disturb.  The gated-row solve gives the states the
    full-network solves give (the same pulses, to the integration's tolerance)."""
    vt, nmos = parts
    m = 5
    target = 1.0 / np.exp(np.random.default_rng(1).uniform(np.log(110e3), np.log(280e3), (m, m)))
    kw = dict(rtol=0.05, v_set=(1.6, 0.02, 2.5), v_reset=(0.4, 0.02, 0.59), set_polarity=-1, substeps=1,
              r_wl=2.5, r_bl=2.5, width=10e-9, max_pulses=100, scheme="V/3", access=(nmos, 3.3))
    x_fast, ds_fast = write_verify_rows(vt, np.full((m, m), 3e-9), target, **kw)
    with mock.patch("cimphys.circuits.array_program.row_is_gated", return_value=False):
        x_full, ds_full = write_verify_rows(vt, np.full((m, m), 3e-9), target, **kw)
    np.testing.assert_array_equal(ds_fast.writes.values, ds_full.writes.values)
    np.testing.assert_allclose(x_fast, x_full, rtol=1e-6, atol=1e-15)
    assert bool(ds_fast.done.all()) and float(ds_fast.disturb.max()) == 0.0
