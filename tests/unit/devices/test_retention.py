"""Retention (stretched exponential, Arrhenius): closed forms, sampling and the fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cimphys.devices.noise import BOLTZMANN
from cimphys.devices.retention import RetentionModel, fit_retention
from cimphys.errors import InputError

RTOL_FORMULA = 1e-12
# 60 log-spaced reads with 0.2 % noise: standard errors of tau and beta are ~0.3 %; 2 % is > 6 SE
RTOL_RECOVER = 0.02
EV = 1.602176634e-19


def test_closed_forms():
    m = RetentionModel(g_rest=1e-6, tau_ref=1e4, beta=0.5)
    assert float(m.remaining_fraction(1e4)) == pytest.approx(math.exp(-1), rel=RTOL_FORMULA)
    assert float(m.time_to_fraction(math.exp(-1))) == pytest.approx(1e4, rel=RTOL_FORMULA)
    g = m.conductance(np.array([10e-6, 1e-6]), np.array([0.0, 4e4]))
    np.testing.assert_allclose(g[0], [10e-6, 1e-6], rtol=RTOL_FORMULA)
    np.testing.assert_allclose(g[1], [1e-6 + 9e-6 * math.exp(-2), 1e-6], rtol=RTOL_FORMULA)


def test_arrhenius_time_constant():
    m = RetentionModel(g_rest=0.0, tau_ref=1e6, activation_energy=1.0 * EV, temperature_ref=358.0)
    assert float(m.tau()) == pytest.approx(1e6, rel=RTOL_FORMULA)
    expected = 1e6 * math.exp(EV / BOLTZMANN * (1 / 300.0 - 1 / 358.0))
    assert float(m.tau(300.0)) == pytest.approx(expected, rel=RTOL_FORMULA)
    assert float(m.tau(400.0)) < 1e6  # hotter relaxes faster


def test_simulate_spread_of_tau():
    m = RetentionModel(g_rest=1e-6, tau_ref=1e4, tau_sigma=0.5)
    ds = m.simulate(np.full(20000, 20e-6), [0.0, 1e4], seed=3)
    assert np.std(np.log(ds.tau.values / 1e4)) == pytest.approx(0.5, rel=0.03)  # SE 0.5 %
    np.testing.assert_allclose(ds.g.values[0], 20e-6)
    assert ds.g.attrs["units"] == "S"
    same = RetentionModel(g_rest=1e-6, tau_ref=1e4).simulate([20e-6], [1e4], seed=1)
    assert float(same.g[0, 0]) == pytest.approx(float(RetentionModel(1e-6, 1e4).conductance(20e-6, 1e4)))


def test_fit_recovers_parameters(rng):
    true = RetentionModel(g_rest=2e-6, tau_ref=3e5, beta=0.6)
    t = np.geomspace(1.0, 1e8, 60)
    g = true.conductance(20e-6, t) * (1 + 0.002 * rng.standard_normal(60))
    model, res = fit_retention(t, g, 20e-6)
    assert model.tau_ref == pytest.approx(3e5, rel=RTOL_RECOVER)
    assert model.beta == pytest.approx(0.6, rel=RTOL_RECOVER)
    assert model.g_rest == pytest.approx(2e-6, rel=RTOL_RECOVER)
    assert res.ci["beta"][0] < 0.6 < res.ci["beta"][1]


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: RetentionModel(g_rest=-1.0, tau_ref=1.0), "g_rest"),
        (lambda: RetentionModel(g_rest=0.0, tau_ref=1.0, beta=1.5), "beta"),
        (lambda: RetentionModel(0.0, 1.0).conductance(1e-6, -1.0), "t"),
        (lambda: RetentionModel(0.0, 1.0).tau(np.nan), "temperature"),
        (lambda: RetentionModel(0.0, 1.0).time_to_fraction(1.0), "fraction"),
        (lambda: fit_retention([1.0, 2.0], [1e-6, 1e-6], 2e-6), "t"),
    ],
)
def test_bad_input_names_parameter(call, name):
    with pytest.raises(InputError, match=name):
        call()
