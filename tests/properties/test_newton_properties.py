"""Invariants of the Newton crossbar solve on random sinh and 1S1R arrays (Hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cimphys.circuits.newton import solve_nonlinear
from cimphys.circuits.newton_options import VNTOL
from cimphys.circuits.nodal import Network
from cimphys.devices import SelectorResistorCell, SinhCell, SinhSelector

RTOL_BALANCE = 1e-9  # power and KCL balances at the Newton tolerance (1e-11 of the cell current)
# The Ohm's-law current (v_in - v_wl)/r is known only as well as the node voltage: the solver
# promises node voltages to VNTOL (SPICE's vntol), and in these ill-conditioned networks (0.1 ohm
# wires beside nearly-off 1S1R cells, ~1e-8 S) the direct solve really is tens of ulps off (seen:
# 5.7e-16 A on 5.6e-9 A, i.e. ~60 ulps of v_wl), so the absolute floor is VNTOL / r.

cases = st.fixed_dictionaries(
    {
        "m": st.integers(1, 6),
        "n": st.integers(1, 6),
        "r": st.floats(0.1, 20.0),
        "r_driver": st.floats(0.1, 50.0),
        "seed": st.integers(0, 2**31),
        "selector": st.booleans(),
    }
)


def _build(c):
    rng = np.random.default_rng(c["seed"])
    shape = (c["m"], c["n"])
    if c["selector"]:
        cell = SelectorResistorCell(SinhSelector(2e-10, 0.0724), r=rng.uniform(5e3, 5e4, shape))
        v_in = rng.uniform(0.2, 1.2, c["m"])
    else:
        cell = SinhCell(k=rng.uniform(1e-6, 2e-5, shape), a=rng.uniform(1.0, 8.0))
        v_in = rng.uniform(0.0, 0.5, c["m"])
    net = Network.build(shape, r_wl=c["r"], r_bl=c["r"], r_driver=c["r_driver"], r_sense=0.0)
    return net, cell, v_in


@settings(max_examples=25, deadline=None)
@given(cases)
def test_power_in_equals_power_dissipated(c):
    net, cell, v_in = _build(c)
    sol = solve_nonlinear(net, cell, v_in)
    r_first = c["r_driver"] + c["r"]
    i_src = sol.i_cell.sum(axis=1)  # KCL on each word line (far end open)
    i_ohm = (v_in - sol.v_wl[:, 0]) / r_first  # the same current by Ohm's law (cancels: eps v/r)
    np.testing.assert_array_less(np.abs(i_ohm - i_src), RTOL_BALANCE * np.abs(i_src) + VNTOL / r_first)
    p_in = float(v_in @ i_src)
    p_cells = float(np.sum(sol.i_cell * (sol.v_wl - sol.v_bl)))
    p_wl = float(np.sum(np.diff(sol.v_wl, axis=1) ** 2) / c["r"] + np.sum(i_src**2) * r_first)
    v_bl_ext = np.vstack([sol.v_bl, np.zeros((1, c["n"]))])  # sense node at 0 V after r_bl
    p_bl = float(np.sum(np.diff(v_bl_ext, axis=0) ** 2) / c["r"])
    assert abs(p_in - (p_cells + p_wl + p_bl)) <= RTOL_BALANCE * p_in + 1e-30


@settings(max_examples=25, deadline=None)
@given(cases)
def test_output_is_monotone_in_the_drive(c):
    """A network of increasing (passive, monotone) elements has no gain: raising every source
    cannot lower any output current."""
    net, cell, v_in = _build(c)
    low = solve_nonlinear(net, cell, v_in).i_out
    high = solve_nonlinear(net, cell, v_in * 1.1).i_out
    assert np.all(high >= low * (1 - 1e-12))
    np.testing.assert_allclose(low, solve_nonlinear(net, cell, v_in).i_out, rtol=0)  # deterministic
