"""Stanford-PKU RRAM kernels against the NumPy twin; read path as a crossbar cell."""

from __future__ import annotations

import numpy as np
import pytest
from naive_dynamic import K_B_OVER_Q, central_difference, pku_iv, pku_rate

from cimphys.cards import load_device
from cimphys.devices import SinhCell, StanfordPKU, StanfordPKUCell, TwoTerminalCell
from cimphys.devices.stanford_pku import K_B_OVER_Q as K_PKG
from cimphys.errors import InputError

RTOL_KERNEL = 1e-12  # same formula evaluated twice in double precision
RTOL_FD = 1e-6  # central difference, h = 1 uV


@pytest.fixture
def params():
    return dict(load_device("guan2012_stanford_pku").parameters)


def test_kernels_match_twin(params, rng):
    model = StanfordPKU(**{**params, "r_th": 2.1e3})
    params = {**params, "r_th": 2.1e3}
    v = rng.uniform(-2.0, 2.0, 4000)
    g = rng.uniform(0.0, params["t_ox"], v.size)  # integrated gaps, also beyond [g_min, g_max]
    i, di = model.current_and_conductance(v, g)
    i_ref, di_ref = pku_iv(params, v, g)
    np.testing.assert_allclose(i, i_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(di, di_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(model.rate(v, g), pku_rate(params, v, g), rtol=1e-11, atol=1e-300)
    assert K_PKG == K_B_OVER_Q


def test_signs_and_heating(params):
    model = StanfordPKU(**{**params, "r_th": 2.1e3})  # the card's r_th is 0 (see its provenance)
    assert model.rate(1.5, 1e-9) < 0 < model.rate(-1.5, 1e-9)  # SET shrinks the gap
    assert model.rate(0.0, 1e-9) == 0.0
    cold = StanfordPKU(**{**params, "r_th": 0.0})
    assert abs(model.rate(1.2, 0.5e-9)) > abs(cold.rate(1.2, 0.5e-9))  # Joule heating speeds it up


def test_conductance_is_derivative(params, rng):
    model = StanfordPKU(**params)
    v = rng.uniform(-1, 1, 20)
    g = rng.uniform(params["g_min"], params["g_max"], 20)
    fd = central_difference(lambda vv: model.current(vv, g), v)
    np.testing.assert_allclose(model.conductance(v, g), fd, rtol=RTOL_FD)


def test_read_cell_equals_sinh_cell(params, rng):
    model = StanfordPKU(**params)
    gap = rng.uniform(params["g_min"], params["g_max"], (3, 5))
    cell = model.read_cell(gap)
    assert isinstance(cell, StanfordPKUCell) and isinstance(cell, TwoTerminalCell)
    ref = SinhCell(k=params["i0"] * np.exp(-gap / params["g0"]), a=1 / params["v0"])
    v = rng.uniform(-0.3, 0.3, (2, 3, 5))  # a batch over the grid
    i, g = cell.current_and_conductance(v)
    i_ref, g_ref = ref.current_and_conductance(v)
    np.testing.assert_allclose(i, i_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(g, g_ref, rtol=RTOL_KERNEL)


RTOL_ELEMENTARY = 1e-15  # exp_fast is ~1 ulp, sinh_cosh a few ulp: 1e-15 is ~4.5 ulp


def test_vectorisable_exp_sinh_cosh_match_numpy(rng):
    """The plain-arithmetic exp/sinh/cosh of the vectorised I-V loop, against libm (NumPy)."""
    from numba import njit

    from cimphys.devices.laws.kernel_math import exp_fast, sinh_cosh

    @njit
    def twin_loop(z, e, s, c):
        for n in range(z.size):
            e[n] = exp_fast(z[n])
            s[n], c[n] = sinh_cosh(z[n])

    z = np.concatenate([rng.uniform(-690.0, 690.0, 2000), rng.uniform(-1.0, 1.0, 2000),
                        np.linspace(-1e-6, 1e-6, 201), [0.0, -0.5, 0.5, 5e-324, -1e-300, -745.0, -740.0]])
    e, s, c = np.empty_like(z), np.empty_like(z), np.empty_like(z)
    twin_loop(z, e, s, c)
    normal = np.exp(z) > 1e-300  # subnormal results carry fewer significant bits
    np.testing.assert_allclose(e[normal], np.exp(z[normal]), rtol=RTOL_ELEMENTARY)
    with np.errstate(over="ignore"):  # sinh/cosh(-745) overflow to -inf/inf, as ours must
        np.testing.assert_allclose(s, np.sinh(z), rtol=RTOL_ELEMENTARY, atol=0.0)
        np.testing.assert_allclose(c, np.cosh(z), rtol=RTOL_ELEMENTARY)
    assert e[-2] == np.exp(-745.0) and e[-1] == pytest.approx(np.exp(-740.0), rel=1e-12)  # subnormals
    edge = np.array([-800.0, 720.0])
    twin_loop(edge, e[:2], s[:2], c[:2])
    assert e[0] == 0.0 and np.isinf(e[1]) and s[0] == -np.inf and s[1] == np.inf


def test_vectorised_iv_path_reports_bad_cells(params):
    """One parameter set, one state per cell (the loop without exits): bad cells still raise."""
    model = StanfordPKU(**params)
    v = np.linspace(-1.0, 1.0, 1000)
    g = np.full(v.size, params["g_min"])
    v[617] = np.nan
    with pytest.raises(InputError, match="^v: "):
        model.current_and_conductance(v, g)
    v[617] = 0.0
    g[700] = 2.0 * params["t_ox"]  # beyond the integrated gap's bounds [0, t_ox]
    with pytest.raises(InputError, match="at flat index 700"):
        model.current_and_conductance(v, g)


def test_vectorised_iv_equals_scalar_loop(params, rng):
    """One parameter set (polynomial exp, vectorised loop) against per-cell sets of equal values
    (libm exp/expm1, scalar loop): the same law to within RTOL_ELEMENTARY.  Regression: the
    scalar path took sinh/cosh from expm1 at every V, and lost digits in ``expm1 + 1`` at
    strongly negative V/V0 (1.6e-13 relative at V/V0 = -8)."""
    v = np.concatenate([rng.uniform(-2.0, 2.0, 1000), [0.0, 1e-12, -1e-9]])
    g = rng.uniform(params["g_min"], params["g_max"], v.size)
    flat = StanfordPKU(**params).current_and_conductance(v, g)
    per_cell = StanfordPKU(**{**params, "i0": np.full(v.size, params["i0"])}).current_and_conductance(v, g)
    np.testing.assert_allclose(flat[0], per_cell[0], rtol=RTOL_ELEMENTARY, atol=0)
    np.testing.assert_allclose(flat[1], per_cell[1], rtol=RTOL_ELEMENTARY, atol=0)
