"""Linear ion drift kernels and windows against NumPy twins and the papers' limits."""

from __future__ import annotations

import numpy as np
import pytest
from naive_dynamic import central_difference, drift_iv, drift_rate, drift_window

from cimphys.cards import load_device
from cimphys.devices import LinearIonDrift
from cimphys.errors import InputError

RTOL_KERNEL = 1e-12  # same formula evaluated twice in double precision
RTOL_FD = 1e-6  # central difference, h = 1 uV


@pytest.fixture
def params():
    return dict(load_device("strukov2008_hp").parameters)


@pytest.mark.parametrize("window", ["none", "joglekar", "biolek", "prodromakis"])
def test_kernels_match_twin(params, window, rng):
    params = {**params, "window": window, "p": 2.0, "j": 1.0}
    model = LinearIonDrift(**params)
    v = rng.uniform(-1.5, 1.5, 3000)
    w = rng.uniform(0, params["d"], v.size)
    i, g = model.current_and_conductance(v, w)
    i_ref, g_ref = drift_iv(params, v, w)
    np.testing.assert_allclose(i, i_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(g, g_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(model.rate(v, w), drift_rate(params, v, w), rtol=1e-11, atol=1e-300)


def test_windows_vanish_at_the_right_edges(params):
    u = np.array([0.0, 1.0])
    p = {**params, "p": 1.0}
    np.testing.assert_allclose(drift_window({**p, "window": "joglekar"}, u, np.ones(2)), 0.0, atol=1e-15)
    # Biolek: positive current closes the window at u = 1 only, negative at u = 0 only
    assert drift_window({**p, "window": "biolek"}, u, np.ones(2)).tolist() == [1.0, 0.0]
    model = LinearIonDrift(**{**params, "window": "biolek"})
    d = params["d"]
    assert model.rate(1.0, d) == 0.0 and model.rate(-1.0, d) < 0.0
    assert model.rate(-1.0, 0.0) == 0.0 and model.rate(1.0, 0.0) > 0.0


def test_resistance_limits(params):
    model = LinearIonDrift(**params)
    np.testing.assert_allclose(1 / model.conductance(0.3, [0.0, params["d"]]), [params["r_off"], params["r_on"]])


def test_conductance_is_derivative(params, rng):
    model = LinearIonDrift(**params)
    v = rng.uniform(-1, 1, 20)
    w = rng.uniform(0, params["d"], 20)
    fd = central_difference(lambda vv: model.current(vv, w), v)
    np.testing.assert_allclose(model.conductance(v, w), fd, rtol=RTOL_FD)


def test_pinched_at_zero_voltage(params, rng):
    model = LinearIonDrift(**params)
    w = rng.uniform(0, params["d"], 50)
    assert np.all(model.current(0.0, w) == 0.0) and np.all(model.rate(0.0, w) == 0.0)


def test_rejects_bad_input(params):
    with pytest.raises(InputError, match="window"):
        LinearIonDrift(**{**params, "window": "tukey"})
    with pytest.raises(InputError, match="r_off"):
        LinearIonDrift(**{**params, "r_off": 50.0})
    with pytest.raises(InputError, match="state"):
        LinearIonDrift(**params).current(0.1, -1e-9)
