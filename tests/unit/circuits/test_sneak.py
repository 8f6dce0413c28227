"""Write schemes and read margin: ideal-wire limits derived by hand, the (N-1)-parallel sneak
formula, a reduced series-chain twin for nonlinear cells, and a dense twin with wires."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from cimphys.circuits.sneak import linear_cells, read_margin, sneak_resistance, state_cells, write_bias
from cimphys.devices import Level1Mosfet, OneTransistorOneResistor, SelectorResistorCell, SinhCell, SinhSelector
from cimphys.circuits.nodal import Network
from cimphys.errors import InputError
from dense_nodal import dense_twin

RTOL_EXACT = 1e-12  # ideal wires: the voltages are set by the sources alone, up to round-off
RTOL_FORMULA = 1e-10  # closed-form sneak network vs the full solve (floating nodes: cond ~1e4)
RTOL_CHAIN = 1e-8  # nested brentq twin (xtol 1e-15 V on ~1 V) vs Newton on the full network
RTOL_DENSE = 1e-10  # dense numpy solve of the same linear network


@pytest.mark.parametrize("scheme, half, unsel", [("V/2", 0.5, 0.0), ("V/3", 1 / 3, -1 / 3)])
@pytest.mark.parametrize("col", [3, None], ids=["cell", "row"])
def test_ideal_wires_give_the_textbook_voltages(rng, scheme, half, unsel, col):
    m, n, v = 6, 7, 1.8
    for cells in (rng.uniform(1e-6, 1e-4, (m, n)), SinhCell(k=rng.uniform(1e-7, 1e-6, (m, n)), a=5.0)):
        ds = write_bias(cells, v, row=2, col=col, scheme=scheme)
        vc, role = ds["v_cell"].values, ds["role"].values
        np.testing.assert_allclose(vc[role == 0], v, rtol=RTOL_EXACT)
        np.testing.assert_allclose(vc[(role == 1) | (role == 2)], half * v, rtol=RTOL_EXACT)
        np.testing.assert_allclose(vc[role == 3], unsel * v, atol=RTOL_EXACT * v)
        assert float(ds["write_margin"]) == pytest.approx((1 - half) * v, rel=RTOL_EXACT)
        assert (role == 0).sum() == (n if col is None else 1)


def dense_write(g, v_in, v_bl_end, r_wl, r_bl):
    """Cell voltages of linear cells by the dense twin: WLs driven at column 0, BLs held at
    row M-1's end."""
    net = Network.build(g.shape, r_wl=r_wl, r_bl=r_bl, v_bl_end=v_bl_end)
    v_wl, v_bl, _ = dense_twin(net, g, g, np.zeros_like(g), v_in)
    return v_wl - v_bl


@pytest.mark.parametrize("scheme, f_wl, f_bl", [("V/2", 0.5, 0.5), ("V/3", 1 / 3, 2 / 3)])
def test_wire_resistance_against_dense_twin(rng, scheme, f_wl, f_bl):
    m, n, v = 5, 6, 2.0
    g = rng.uniform(1e-5, 1e-3, (m, n))
    ds = write_bias(g, v, row=1, col=4, scheme=scheme, r_wl=8.0, r_bl=5.0)
    v_in = np.full(m, f_wl * v)
    v_in[1] = v
    v_end = np.full(n, f_bl * v)
    v_end[4] = 0.0
    want = dense_write(g, v_in, v_end, 8.0, 5.0)
    np.testing.assert_allclose(ds["v_cell"].values, want, atol=RTOL_DENSE * v, rtol=0)
    assert float(ds["v_selected_min"]) < v  # IR drop on both lines


def test_wire_resistance_worsens_the_selected_cell(rng):
    g = rng.uniform(1e-5, 1e-4, (16, 16))
    v_sel = [float(write_bias(g, 1.0, 0, 15, r_wl=r, r_bl=r)["v_selected_min"]) for r in (0.0, 2.0, 10.0, 50.0)]
    assert np.all(np.diff(v_sel) < 0)


@pytest.mark.parametrize("shape", [(2, 2), (4, 4), (8, 5), (3, 16), (32, 32)])
def test_linear_read_margin_matches_sneak_formula(shape):
    r_on, r_off, r_l, v = 1e4, 1e6, 5e3, 0.4
    ds = read_margin([shape], linear_cells(1 / r_on, 1 / r_off), v_read=v, r_load=r_l)
    rs = sneak_resistance(r_on, *shape)

    def v_out(r_sel):
        par = r_sel * rs / (r_sel + rs)
        return v * r_l / (r_l + par)

    assert float(ds["margin"][0]) == pytest.approx((v_out(r_on) - v_out(r_off)) / v, rel=RTOL_FORMULA)
    assert float(ds["v_out_on"][0]) == pytest.approx(v_out(r_on), rel=RTOL_FORMULA)


def chain_twin_sinh(m, n, k_on, k_sel, a, v, r_l):
    """Floating-line read of sinh cells with ideal wires, reduced to a series chain by hand.

    The unselected cells form three groups of identical parallel cells in series: (N-1) from
    the selected WL, (M-1)(N-1) in the middle, (M-1) into the selected BL; a group of c cells
    carrying I drops asinh(I / (c k)) / a.
    """
    groups = (n - 1, (m - 1) * (n - 1), m - 1)

    def sneak_current(u):
        drop = lambda i: sum(np.arcsinh(i / (c * k_on)) / a for c in groups) - u  # noqa: E731
        hi = 3 * len(groups) * max(groups) * k_on * np.sinh(a * max(u, 1e-300)) + 1e-30
        return brentq(drop, 0.0, hi, xtol=1e-30, rtol=1e-15) if u > 0 else 0.0

    def kcl(vb):
        u = v - vb
        return k_sel * np.sinh(a * u) + sneak_current(u) - vb / r_l

    return brentq(kcl, 0.0, v, xtol=1e-15, rtol=1e-15)


def test_nonlinear_read_margin_against_series_chain_twin():
    k_on, k_off, a, v, r_l = 2.5e-5, 2.5e-7, 4.0, 0.8, 1e4
    sizes = [(2, 2), (4, 6), (10, 10)]
    ds = read_margin(sizes, state_cells(lambda k: SinhCell(k=k, a=a), k_on, k_off), v_read=v, r_load=r_l)
    for s, (m, n) in enumerate(sizes):
        von = chain_twin_sinh(m, n, k_on, k_on, a, v, r_l)
        voff = chain_twin_sinh(m, n, k_on, k_off, a, v, r_l)
        assert float(ds["v_out_on"][s]) == pytest.approx(von, rel=RTOL_CHAIN)
        assert float(ds["v_out_off"][s]) == pytest.approx(voff, rel=RTOL_CHAIN)


def test_selector_holds_the_margin_as_the_array_grows():
    sel = SinhSelector(i_0=2e-10, v_0=0.0724)
    sizes = [4, 16, 48]
    cells = state_cells(lambda r: SelectorResistorCell(sel, r), 1e4, 1e6)
    one_s = read_margin(sizes, cells, 1.0, 1e4, r_wl=1.0, r_bl=1.0)
    bare = read_margin(sizes, linear_cells(1e-4, 1e-6), 1.0, 1e4, r_wl=1.0, r_bl=1.0)
    assert np.all(np.diff(bare["margin"].values) < 0)
    assert float(bare["margin"][-1]) < 0.01
    assert float(one_s["margin"][-1]) > 5 * float(bare["margin"][-1])
    assert all("units" in one_s[name].attrs for name in one_s.data_vars)


def test_rejects_bad_inputs(rng):
    g = rng.uniform(1e-6, 1e-5, (4, 4))
    with pytest.raises(InputError, match="scheme"):
        write_bias(g, 1.0, 0, 0, scheme="V/4")
    with pytest.raises(InputError, match="v_write"):
        write_bias(g, -1.0, 0, 0)
    with pytest.raises(InputError, match="row"):
        write_bias(g, 1.0, 4, 0)
    with pytest.raises(InputError, match="shape"):
        write_bias(SinhCell(k=1e-6, a=2.0), 1.0, 0, 0)
    nmos = Level1Mosfet(vto=0.4, kp=1e-4, w=1e-6, l=1e-6)
    with pytest.raises(InputError, match="passive"):
        write_bias(OneTransistorOneResistor(nmos, np.full((4, 4), 1e4), 1.0), 1.0, 0, 0)
    with pytest.raises(InputError, match="sizes"):
        read_margin([1], linear_cells(1e-4, 1e-6), 0.5, 1e4)
    with pytest.raises(InputError, match="r_load"):
        read_margin([4], linear_cells(1e-4, 1e-6), 0.5, 0.0)


def test_one_selector_one_resistor_row_write_with_wires(rng):
    """A V/3 row write of a 1S1R array with wires converges; the half-selected cells stay at V/3
    up to the small IR drop of their nearly-off selectors."""
    sel = SinhSelector(i_0=2e-10, v_0=0.0724)
    cells = SelectorResistorCell(sel, r=rng.uniform(1e4, 1e5, (12, 12)))
    v = 2.0
    ds = write_bias(cells, v, row=5, scheme="V/3", r_wl=5.0, r_bl=5.0)
    assert float(ds["v_selected_min"]) < v
    assert float(ds["v_selected_min"]) > 0.9 * v
    role = ds["role"].values
    assert not (role == 3).any()  # a row write selects every column: the rest are half-selected
    np.testing.assert_allclose(ds["v_cell"].values[role == 2], v / 3, rtol=0.01)  # V/3 - 0, small IR drop
    assert float(ds["v_half_max"]) < v / 3 * 1.01
