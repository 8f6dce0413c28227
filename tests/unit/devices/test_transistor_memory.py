"""1T1R with a dynamic memory element (:mod:`cimphys.devices.transistor_memory`): the kernel
against a plain root-finding twin and finite differences, and gate selection against V/3
write disturb (the ngspice transient of a 1T1R array is in tests/unit/circuits/test_array_program.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from cimphys.cards import load_device
from cimphys.circuits.array_program import ArrayWriter, row_bias_voltages
from cimphys.devices import Level1Mosfet, StanfordPKU
from cimphys.devices.dynamics import model_from_card
from cimphys.devices.transistor_memory import TransistorMemoryCell

# The kernel solves its internal node to a few ulps; the twin (brentq, xtol 1e-15 V) to ~1e-15 V
# too: currents agree to ~1e-12 relative (the steeper element amplifies the node's error).
RTOL_TWIN = 1e-9
# Central differences with h = 1e-6 V on exponential laws: truncation ~ (h/v0)^2 ~ 1e-10.
RTOL_FD = 1e-5


@pytest.fixture(scope="module")
def pku():
    return StanfordPKU.from_card(load_device("guan2012_stanford_pku"))


@pytest.fixture(scope="module")
def nmos():
    return Level1Mosfet.from_card(load_device("level1_access_nmos"))


def test_kernel_cache_digest_matches_the_model_kernels():
    from cimphys.devices import laws, transistor_memory

    assert transistor_memory.KERNEL_SOURCES == laws.sources_digest()


def test_current_against_a_root_finding_twin_and_finite_differences(pku, nmos):
    rng = np.random.default_rng(2)
    m, n = 3, 4
    gap = rng.uniform(0.3e-9, 1.7e-9, (m, n))
    vw, vb = rng.uniform(-1.5, 2.0, (m, n)), rng.uniform(-0.3, 0.5, (m, n))
    vg = np.array([2.5, 1.2, 0.0])
    cell = TransistorMemoryCell(nmos, pku, gap, vg)
    i, a, b = cell.stamp(vw, vb)
    vm = cell.memory_voltage(vw, vb)
    for r in range(m):
        for c in range(n):
            def f(x):
                return nmos.currents(x, vg[r], vb[r, c], 0.0).i_d - pku.current(vw[r, c] - x, gap[r, c])

            lo, hi = sorted((vw[r, c], vb[r, c]))
            # no sign change: the transistor is cut off, no current, the memory element at 0 V
            x = brentq(f, lo, hi, xtol=1e-15, rtol=1e-15) if f(lo) * f(hi) < 0 else vw[r, c]
            ref = float(pku.current(vw[r, c] - x, gap[r, c]))
            assert i[r, c] == pytest.approx(ref, rel=RTOL_TWIN, abs=1e-18)
            if vg[r] > 0:
                assert vm[r, c] == pytest.approx(vw[r, c] - x, rel=1e-9, abs=1e-12)
    h = 1e-6
    da = (cell.stamp(vw + h, vb)[0] - cell.stamp(vw - h, vb)[0]) / (2 * h)
    db = -(cell.stamp(vw, vb + h)[0] - cell.stamp(vw, vb - h)[0]) / (2 * h)
    on = vg[:, None].repeat(n, 1) > 0
    np.testing.assert_allclose(a[on], da[on], rtol=RTOL_FD, atol=1e-12)
    np.testing.assert_allclose(b[on], db[on], rtol=RTOL_FD, atol=1e-12)
    # gate at 0 V: the level-1 transistor is cut off, no current, no voltage on the memory
    np.testing.assert_array_equal(i[2], 0.0)


def test_gates_off_keep_vteam_cells_still_under_v3(nmos):
    """The V/3 SET pulse that turns VTEAM cells off the selected row and columns off
    (tests/unit/circuits/test_array_program.py) leaves them alone in a 1T1R array: their
    transistors are off, their memory elements see nothing."""
    vt = model_from_card(load_device("kvatinsky2015_vteam_pickett"))
    m, n = 3, 3
    x0 = np.full((m, n), 1.5e-9)
    # every line at or above 0 V (grounded): the gates at 0 V then hold the other rows off
    v_in, v_bl = row_bias_voltages((m, n), 1, [0.0, -1.8, 0.0], "V/3", grounded=True)
    bare, e_bare = ArrayWriter(vt, (m, n), r_wl=2.5, r_bl=2.5).pulse(x0, v_in, v_bl, 10e-9)
    v_in0, v_bl0 = row_bias_voltages((m, n), 1, [0.0, -1.8, 0.0], "V/3")
    assert min(v_in.min(), v_bl.min()) == 0.0 and v_in0.min() < 0.0
    bare0, e_bare0 = ArrayWriter(vt, (m, n), r_wl=2.5, r_bl=2.5).pulse(x0, v_in0, v_bl0, 10e-9)
    np.testing.assert_allclose(bare, bare0, rtol=1e-9)  # a common shift changes nothing for 2-terminal cells
    assert e_bare == pytest.approx(e_bare0, rel=1e-9)
    gated, _ = ArrayWriter(vt, (m, n), r_wl=2.5, r_bl=2.5, access=(nmos, 2.5)).pulse(x0, v_in, v_bl, 10e-9, row=1)
    off_rows = np.ones((m, n), bool)
    off_rows[1] = False
    assert (bare[off_rows] != x0[off_rows]).sum() >= 4  # the unselected-unselected cells turn off
    np.testing.assert_array_equal(gated[off_rows], x0[off_rows])  # no disturb behind an off transistor
    # the selected cell sets in both; through its transistor less far (the NMOS drops voltage)
    assert gated[1, 1] < x0[1, 1] and bare[1, 1] < gated[1, 1]


def test_docstring_example():
    import doctest

    from cimphys.devices import transistor_memory

    assert doctest.testmod(transistor_memory).failed == 0
