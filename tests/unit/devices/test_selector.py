"""1S1R (sinh selector + state resistance): against a brentq twin of the series node,
limits, odd symmetry and the implicit derivative against central differences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

import cimphys
from cimphys.devices import SelectorResistorCell, SinhSelector
from cimphys.errors import InputError

RTOL_TWIN = 1e-12  # both solve the same scalar root to ~machine precision
RTOL_FD = 1e-6  # central difference, h = 1e-6 V on a smooth I(V): truncation ~ h^2 I''' / I'
H_FD = 1e-6


def naive_1s1r(v, r, i0, v0):
    """Series current by brentq on the selector voltage, one cell."""
    if v == 0:
        return 0.0
    f = lambda x: i0 * np.sinh(x / v0) - (v - x) / r  # noqa: E731
    x = brentq(f, min(0.0, v), max(0.0, v), xtol=1e-300, rtol=8.9e-16, maxiter=500)
    gs = i0 / v0 * np.cosh(x / v0)
    return i0 * np.sinh(x / v0) if gs * r < 1 else (v - x) / r  # the better-conditioned side


def test_matches_brentq_twin(rng):
    sel = SinhSelector(i_0=2e-10, v_0=0.0724)
    r = rng.uniform(1e3, 1e6, size=(8, 6))
    v = rng.uniform(-1.5, 1.5, size=(3, 8, 6))
    i, _ = SelectorResistorCell(sel, r).current_and_conductance(v)
    pairs = zip(v.ravel(), np.broadcast_to(r, v.shape).ravel())
    want = np.array([naive_1s1r(vv, rr, 2e-10, 0.0724) for vv, rr in pairs])
    np.testing.assert_allclose(i.ravel(), want, rtol=RTOL_TWIN, atol=1e-30)


def test_limits():
    v = np.linspace(-1.0, 1.0, 21)
    # Strong selector (tiny v_0 * large i_0): nearly all the voltage across r.
    strong = SelectorResistorCell(SinhSelector(i_0=1.0, v_0=1e-3), r=1e4).current(v)
    np.testing.assert_allclose(strong, v / 1e4, rtol=1e-2, atol=1e-9)
    # Tiny r: the selector law alone.
    sel = SinhSelector(i_0=1e-9, v_0=0.1)
    bare = SelectorResistorCell(sel, r=1e-9).current(v)
    np.testing.assert_allclose(bare, sel.current(v), rtol=1e-6, atol=1e-30)


def test_odd_symmetry(rng):
    cell = SelectorResistorCell(SinhSelector(i_0=1e-8, v_0=0.1), r=rng.uniform(1e3, 1e5, size=(5, 5)))
    v = rng.uniform(0, 1, size=(5, 5))
    np.testing.assert_allclose(cell.current(v), -cell.current(-v), rtol=1e-15)


def test_conductance_against_central_differences(rng):
    cell = SelectorResistorCell(SinhSelector(i_0=2e-10, v_0=0.0724), r=rng.uniform(1e3, 1e5, size=(10, 10)))
    v = rng.uniform(-1.2, 1.2, size=(10, 10))
    _, g = cell.current_and_conductance(v)
    fd = (cell.current(v + H_FD) - cell.current(v - H_FD)) / (2 * H_FD)
    np.testing.assert_allclose(fd, g, rtol=RTOL_FD)


def test_series_conductance_formula():
    """dI/dV equals the series combination of r and the selector's g_s at the root."""
    sel = SinhSelector(i_0=1e-8, v_0=0.1)
    cell = SelectorResistorCell(sel, r=2e4)
    i, g = cell.current_and_conductance(np.array([0.7]))
    x = 0.7 - i[0] * 2e4
    gs = 1e-8 / 0.1 * np.cosh(x / 0.1)
    assert g[0] == pytest.approx(1 / (1 / gs + 2e4), rel=1e-13)


def test_card_nonlinearity():
    sel = SinhSelector.from_card(cimphys.load_device("sinh_selector_nl1000"))
    assert sel.nonlinearity(1.0) == pytest.approx(1000, rel=0.01)


def test_rejects_bad_inputs():
    with pytest.raises(InputError, match="v_0"):
        SinhSelector(i_0=1e-9, v_0=0.0)
    with pytest.raises(InputError, match="r"):
        SelectorResistorCell(SinhSelector(1e-9, 0.1), r=np.array([[1e3, -1.0]]))
    with pytest.raises(InputError, match="selector"):
        SelectorResistorCell("ovonic", r=1e3)
    cell = SelectorResistorCell(SinhSelector(1e-9, 0.1), r=np.full((2, 2), 1e3))
    with pytest.raises(InputError, match="v"):
        cell.current(np.array([[0.1, np.inf], [0.0, 0.0]]))


def test_selector_with_a_dynamic_memory_element_matches_a_root_finder():
    """1S1R whose memory element is the Stanford model at its gap: the kernel's series solve
    against scipy's brentq on the same two laws, cell by cell (machine precision both)."""
    from scipy.optimize import brentq

    from cimphys.cards import load_device
    from cimphys.devices import SelectorMemoryCell, StanfordPKU

    model = StanfordPKU.from_card(load_device("guan2012_stanford_pku"))
    sel = SinhSelector(i_0=1e-6, v_0=0.1)
    rng = np.random.default_rng(5)
    gap = rng.uniform(0.2e-9, 1.7e-9, (3, 4))
    cell = SelectorMemoryCell(sel, model, gap)
    v = rng.uniform(-1.5, 1.5, (3, 4))
    i, g = cell.current_and_conductance(v)
    for (r, c), vv in np.ndenumerate(v):
        u = brentq(lambda x: sel.i_0 * np.sinh(x / sel.v_0) - model.current(vv - x, gap[r, c]), min(0, vv),
                   max(0, vv), xtol=1e-300, rtol=1e-15)
        assert i[r, c] == pytest.approx(float(model.current(vv - u, gap[r, c])), rel=1e-11)
    # dI/dV by central differences (h = 1 uV): 1e-6 relative
    h = 1e-6
    fd = (cell.current(v + h) - cell.current(v - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5)
    # the memory element's share is what is left after the selector: between 0 and V
    vm = cell.memory_voltage(v)
    assert ((vm / v > 0) & (np.abs(vm) < np.abs(v))).all()
