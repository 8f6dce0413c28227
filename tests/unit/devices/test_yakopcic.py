"""Yakopcic model kernels against the NumPy twin, thresholds and windows."""

from __future__ import annotations

import numpy as np
import pytest
from naive_dynamic import central_difference, yakopcic_iv, yakopcic_rate

from cimphys.cards import load_device
from cimphys.devices import Yakopcic
from cimphys.errors import InputError

RTOL_KERNEL = 1e-12  # same formula evaluated twice in double precision
RTOL_FD = 1e-6  # central difference, h = 1 uV


@pytest.fixture
def params():
    return dict(load_device("yakopcic2011_oblea").parameters)


@pytest.mark.parametrize("eta", [1.0, -1.0])
def test_kernels_match_twin(params, eta, rng):
    params = {**params, "eta": eta}
    model = Yakopcic(**params)
    v = rng.uniform(-1.0, 1.0, 4000)
    x = rng.uniform(0, 1, v.size)
    i, g = model.current_and_conductance(v, x)
    i_ref, g_ref = yakopcic_iv(params, v, x)
    np.testing.assert_allclose(i, i_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(g, g_ref, rtol=RTOL_KERNEL)
    np.testing.assert_allclose(model.rate(v, x), yakopcic_rate(params, v, x), rtol=1e-11, atol=1e-300)


def test_thresholds_and_bounds(params):
    model = Yakopcic(**params)
    x = np.linspace(0, 1, 11)
    assert np.all(model.rate(np.linspace(-params["vn"], params["vp"], 7)[:, None], x) == 0.0)
    assert model.rate(0.5, 1.0) == 0.0 and model.rate(-0.5, 0.0) == 0.0  # windows close at the bounds
    assert model.rate(0.5, 0.2) > 0.0 and model.rate(-0.5, 0.8) < 0.0
    assert model.thresholds == (-params["vn"], params["vp"])


def test_conductance_is_derivative(params, rng):
    model = Yakopcic(**params)
    v = rng.uniform(-1, 1, 20)
    x = rng.uniform(0, 1, 20)
    fd = central_difference(lambda vv: model.current(vv, x), v)
    np.testing.assert_allclose(model.conductance(v, x), fd, rtol=RTOL_FD)


def test_rejects_bad_eta(params):
    with pytest.raises(InputError, match="eta"):
        Yakopcic(**{**params, "eta": 0.5})
