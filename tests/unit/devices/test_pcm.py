"""PCM statistical model: published functions at hand-computed points, sampling, drift, compensation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cimphys.cards import load_device
from cimphys.devices.pcm import PCMModel, drift_compensation_factor, folded_normal_mean
from cimphys.errors import InputError

RTOL_FORMULA = 1e-12  # closed forms evaluated twice in double precision
# 2e4 samples: the sample std of a Gaussian has relative standard error 1/sqrt(2n) = 0.5 %;
# 3 % is six standard errors, so a correct sampler fails with probability < 1e-8.
RTOL_SAMPLED_STD = 0.03
G_MAX = 25e-6


@pytest.fixture
def pcm():
    return PCMModel.from_card(load_device("nandakumar2019_pcm"))


def test_card_equals_defaults(pcm):
    assert pcm == PCMModel()


def test_sigma_prog_published_polynomial(pcm):
    # sigma_P = max(-1.1731 g^2 + 1.9650 g + 0.2635, 0) uS at g = G_T/G_max (Joshi 2020, Methods)
    g = np.array([0.0, 0.3, 1.0])
    expected = (0.26348 + 1.9650 * g - 1.1731 * g**2) * 1e-6
    np.testing.assert_allclose(pcm.sigma_prog(g * G_MAX), expected, rtol=RTOL_FORMULA)


def test_drift_exponent_statistics_formulas(pcm):
    g = np.array([1e-3, 0.05, 0.1, 0.5])
    mu = np.clip(-0.0155 * np.log(g) + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * np.log(g) - 0.0059, 0.008, 0.045)
    np.testing.assert_allclose(pcm.nu_mean(g * G_MAX), mu, rtol=RTOL_FORMULA)
    np.testing.assert_allclose(pcm.nu_std(g * G_MAX), sd, rtol=RTOL_FORMULA)
    assert pcm.nu_mean(0.0) == 0.1 and pcm.nu_std(0.0) == 0.045  # clipped at G -> 0


def test_folded_normal_mean_limits_and_quadrature():
    assert folded_normal_mean(0.0, 1.0) == pytest.approx(math.sqrt(2 / math.pi), rel=RTOL_FORMULA)
    assert folded_normal_mean(10.0, 0.1) == pytest.approx(10.0, rel=RTOL_FORMULA)
    x = np.linspace(-1, 1, 200001)
    pdf = np.exp(-((x - 0.049) ** 2) / (2 * 0.045**2)) / (0.045 * math.sqrt(2 * math.pi))
    quad = np.trapezoid(np.abs(x) * pdf, x)
    assert folded_normal_mean(0.049, 0.045) == pytest.approx(quad, rel=1e-8)  # trapezoid error ~h^2


def test_read_noise_formula(pcm):
    g, t = 10e-6, 3600.0
    q = min(0.0088 / max((g / G_MAX) ** 0.65, 1e-3), 0.2)
    expected = q * math.sqrt(math.log((t + 250e-9) / (2 * 250e-9)))
    assert float(pcm.sigma_read(g, t)) == pytest.approx(expected, rel=RTOL_FORMULA)


def test_programming_noise_sampled(pcm):
    target = np.full(20000, 0.6 * G_MAX)
    err = pcm.program(target, 5) - target
    assert err.std() == pytest.approx(float(pcm.sigma_prog(0.6 * G_MAX)), rel=RTOL_SAMPLED_STD)
    np.testing.assert_array_equal(pcm.program(target, 5), pcm.program(target, 5))  # seeded


def test_drift_power_law_and_no_drift_before_t0(pcm):
    g = np.array([5e-6, 20e-6])
    nu = np.array([0.05, 0.1])
    out = pcm.drift(g, nu, np.array([10.0, 20.0, 2000.0]))
    np.testing.assert_allclose(out[0], g)
    np.testing.assert_allclose(out[1], g)
    np.testing.assert_allclose(out[2], g * 100.0 ** (-nu), rtol=RTOL_FORMULA)


def test_compensation_exact_without_noise(pcm):
    g = np.linspace(1e-6, G_MAX, 50)
    nu = np.full(50, 0.06)  # uniform drift: compensation undoes it exactly
    g_t = pcm.drift(g, nu, 1e6)
    alpha = drift_compensation_factor(g, g_t)
    np.testing.assert_allclose(alpha * g_t, g, rtol=1e-12)


def test_simulate_dataset_labelled(pcm):
    ds = pcm.simulate(np.linspace(0, G_MAX, 100), [20.0, 3600.0], seed=3)
    assert ds.g.dims == ("time", "cell")
    for name, var in ds.data_vars.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name
    assert (ds.g.values >= 0).all() and np.isfinite(ds.g_compensated.values).all()


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda m: m.sigma_prog(-1e-6), "g_target"),
        (lambda m: m.sigma_prog(np.nan), "g_target"),
        (lambda m: m.sigma_prog(30e-6), "g_target"),
        (lambda m: m.sigma_read(1e-6, 0.0), "t"),
        (lambda m: m.program([1e-6], rng=1.5), "seed"),
        (lambda m: m.drift([1e-6], [0.05, 0.05], 100.0), "nu"),
        (lambda m: PCMModel(g_max=-1.0), "g_max"),
        (lambda m: PCMModel(nu_mean_min=0.2), "nu_mean_min"),
    ],
)
def test_bad_input_names_parameter(pcm, call, name):
    with pytest.raises(InputError, match=name):
        call(pcm)
