"""Stanford-PKU RRAM kernels against the NumPy twin; read path as a crossbar cell."""

from __future__ import annotations

import numpy as np
import pytest
from naive_dynamic import K_B_OVER_Q, central_difference, pku_iv, pku_rate

from cimphys.cards import load_device
from cimphys.devices import SinhCell, StanfordPKU, StanfordPKUCell, TwoTerminalCell
from cimphys.devices.stanford_pku import K_B_OVER_Q as K_PKG

RTOL_KERNEL = 1e-12  # same formula evaluated twice in double precision
RTOL_FD = 1e-6  # central difference, h = 1 uV


@pytest.fixture
def params():
    return dict(load_device("guan2012_stanford_pku").parameters)


def test_kernels_match_twin(params, rng):
    model = StanfordPKU(**params)
    v = rng.uniform(-2.0, 2.0, 4000)
    g = rng.uniform(params["g_min"], params["g_max"], v.size)
    i, di = model.current_and_conductance(v, g)
    i_ref, di_ref = pku_iv(params, v, g)
    np.testing.assert_allclose(i, i_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(di, di_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(model.rate(v, g), pku_rate(params, v, g), rtol=1e-11, atol=1e-300)
    assert K_PKG == K_B_OVER_Q


def test_signs_and_heating(params):
    model = StanfordPKU(**params)
    assert model.rate(1.0, 1e-9) < 0 < model.rate(-1.0, 1e-9)  # SET shrinks the gap
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
