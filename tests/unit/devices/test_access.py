"""1T1R cell: internal node against a brentq twin, stamp partials against central
differences, gate and body-effect behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from cimphys.devices import Level1Mosfet, OneTransistorOneResistor
from cimphys.errors import InputError

RTOL_TWIN = 1e-11  # same scalar root; brentq stops at rtol 8.9e-16 of x, not of the current
# Central differences with h = 1e-7 V; the current is piecewise quadratic in the node voltages
# composed with a smooth root: truncation ~ h^2, round-off ~ eps I/h ~ 1e-9 relative.
RTOL_FD = 1e-6
H_FD = 1e-7

NMOS = Level1Mosfet(vto=0.43, kp=115e-6, lambda_=0.06, gamma=0.4, phi=0.6, w=0.5e-6, l=0.25e-6)


def naive_cell(vw, vb, r, vg):
    if vw == vb:
        return 0.0

    def f(x):
        return float(NMOS.currents(x, vg, vb, 0.0).i_d) - (vw - x) / r

    x = brentq(f, min(vw, vb), max(vw, vb), xtol=1e-300, rtol=8.9e-16, maxiter=500)
    mos = NMOS.currents(x, vg, vb, 0.0)
    return float(mos.i_d) if mos.di_dvd * r < 1 else (vw - x) / r  # the better-conditioned side


def _points(rng, shape=(6, 5)):
    r = rng.uniform(5e3, 5e4, size=shape)
    vg = rng.uniform(0.9, 1.8, size=shape[0])
    vw = rng.uniform(-0.3, 0.8, size=shape)
    vb = rng.uniform(-0.2, 0.4, size=shape)
    return r, vg, vw, vb


def test_matches_brentq_twin(rng):
    r, vg, vw, vb = _points(rng)
    i, _, _ = OneTransistorOneResistor(NMOS, r, vg).stamp(vw, vb)
    want = np.array([[naive_cell(vw[p, q], vb[p, q], r[p, q], vg[p]) for q in range(5)] for p in range(6)])
    np.testing.assert_allclose(i, want, rtol=RTOL_TWIN, atol=1e-20)


def test_stamp_partials_against_central_differences(rng):
    r, vg, vw, vb = _points(rng, (12, 10))
    cell = OneTransistorOneResistor(NMOS, r, vg)
    i, a, b = cell.stamp(vw, vb)
    da = (cell.stamp(vw + H_FD, vb)[0] - cell.stamp(vw - H_FD, vb)[0]) / (2 * H_FD)
    db = -(cell.stamp(vw, vb + H_FD)[0] - cell.stamp(vw, vb - H_FD)[0]) / (2 * H_FD)
    scale = np.abs(a) + np.abs(b) + 1e-15
    np.testing.assert_array_less(np.abs(da - a) / scale, RTOL_FD)
    np.testing.assert_array_less(np.abs(db - b) / scale, RTOL_FD)
    assert np.max(np.abs(a - b) / scale) > 1e-3  # three-terminal: a != b in general


def test_gate_off_blocks_and_strong_gate_is_a_resistor():
    vw, vb = np.full((2, 2), 0.2), np.zeros((2, 2))
    off = OneTransistorOneResistor(NMOS, 1e4, v_gate=0.0).stamp(vw, vb)
    assert np.all(off[0] == 0.0) and np.all(off[1] == 0.0)
    wide = Level1Mosfet(vto=0.43, kp=115e-6, w=1e-3, l=1e-7)  # ~1 ohm channel
    on = OneTransistorOneResistor(wide, 1e4, v_gate=1.8).stamp(vw, vb)
    np.testing.assert_allclose(on[0], 0.2 / 1e4, rtol=1e-3)


def test_per_row_gate_and_shape_checks():
    cell = OneTransistorOneResistor(NMOS, np.full((3, 2), 1e4), v_gate=[0.0, 1.2, 1.8])
    i, _, _ = cell.stamp(np.full((3, 2), 0.3), np.zeros((3, 2)))
    assert np.all(i[0] == 0) and np.all(i[1] < i[2])
    with pytest.raises(InputError, match="v_gate"):
        OneTransistorOneResistor(NMOS, np.full((3, 2), 1e4), v_gate=[1.0, 1.0])
    with pytest.raises(InputError, match="v_gate"):
        OneTransistorOneResistor(NMOS, 1e4, v_gate=[1.0, 1.0]).check_array((3, 2))
    with pytest.raises(InputError, match="r"):
        OneTransistorOneResistor(NMOS, 0.0, v_gate=1.0)
    with pytest.raises(InputError, match="v_bl"):
        cell.stamp(np.zeros((3, 2)), np.zeros((2, 2)))
