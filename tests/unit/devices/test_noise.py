"""Read noise: closed forms, 1/f spectral slope, RTN dwell times against the Markov rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import periodogram

from cimphys.devices.noise import (
    BOLTZMANN,
    ELEMENTARY_CHARGE,
    _telegraph_fill,
    dwell_times,
    flicker_noise,
    random_telegraph,
    read_noise,
    shot_noise_std,
    thermal_noise_std,
)
from cimphys.errors import InputError

RTOL_FORMULA = 1e-12
# Averaged periodogram of 64 traces, slope fitted over two decades (~200 bins): the fitted slope
# scatters by ~0.01 between seeds; 0.05 leaves room without accepting 1/f^0.9 or 1/f^1.1.
ATOL_SLOPE = 0.05
# PSD level at 1 Hz from the fitted line: log-level scatter ~2 %; 10 % tolerance.
RTOL_PSD_LEVEL = 0.10
RTOL_STD = 0.03  # 1e4 Gaussian samples: SE of the std 0.7 %, 3 % is > 4 SE


def test_thermal_and_shot_closed_forms():
    g, df, temp, i = 20e-6, 1e6, 300.0, 3e-6
    assert float(thermal_noise_std(g, df, temp)) == pytest.approx(math.sqrt(4 * BOLTZMANN * temp * g * df), rel=RTOL_FORMULA)
    assert float(shot_noise_std(-i, df)) == pytest.approx(math.sqrt(2 * ELEMENTARY_CHARGE * i * df), rel=RTOL_FORMULA)


def test_read_noise_sampled_std():
    g = np.array([1e-6, 20e-6])
    ds = read_noise(g, 0.2, 1e8, rng=1, n_reads=10000)
    expected = np.sqrt(4 * BOLTZMANN * 300 * g * 1e8 + 2 * ELEMENTARY_CHARGE * g * 0.2 * 1e8)
    np.testing.assert_allclose(ds.sigma.values, expected, rtol=RTOL_FORMULA)
    np.testing.assert_allclose(ds.i.values.std(axis=0), expected, rtol=RTOL_STD)


def test_flicker_slope_and_level():
    s1, dt = 1e-20, 1e-3
    ds = flicker_noise(4096, dt, s1, rng=2, n_traces=64)
    f, p = periodogram(ds.noise.values, fs=1 / dt, axis=-1)
    p = p.mean(axis=0)
    sel = (f > 1.0) & (f < 100.0)
    slope, intercept = np.polyfit(np.log(f[sel]), np.log(p[sel]), 1)
    assert slope == pytest.approx(-1.0, abs=ATOL_SLOPE)
    assert math.exp(intercept) == pytest.approx(s1, rel=RTOL_PSD_LEVEL)


def test_flicker_alpha_two_is_brownian_slope():
    ds = flicker_noise(4096, 1e-3, 1e-20, rng=3, alpha=2.0, n_traces=64)
    f, p = periodogram(ds.noise.values, fs=1e3, axis=-1)
    sel = (f > 1.0) & (f < 100.0)
    slope = np.polyfit(np.log(f[sel]), np.log(p.mean(axis=0)[sel]), 1)[0]
    assert slope == pytest.approx(-2.0, abs=ATOL_SLOPE)


def _telegraph_naive(dwell_low, dwell_high, start_high, dt, n):
    out = np.zeros((len(start_high), n), dtype=np.int8)
    for r in range(len(start_high)):
        bounds, states, t, s, jl, jh = [], [], 0.0, start_high[r], 0, 0
        while t < n * dt:
            d = dwell_high[r, jh] if s else dwell_low[r, jl]
            jh, jl = (jh + 1, jl) if s else (jh, jl + 1)
            t += d
            bounds.append(t)
            states.append(s)
            s = 1 - s
        idx = np.searchsorted(np.array(bounds), np.arange(n) * dt, side="right")
        out[r] = np.array(states)[idx]
    return out


def test_telegraph_kernel_matches_naive(rng):
    dl = rng.exponential(0.01, (3, 400))
    dh = rng.exponential(0.02, (3, 400))
    start = np.array([0, 1, 0], dtype=np.int64)
    out = np.zeros((3, 1000), dtype=np.int8)
    assert _telegraph_fill(dl, dh, start, 1e-3, out) == 0
    np.testing.assert_array_equal(out, _telegraph_naive(dl, dh, start, 1e-3, 1000))


def test_rtn_dwell_means_and_occupancy():
    tau_low, tau_high, dt = 0.05, 0.02, 2e-4
    ds = random_telegraph(200_000, dt, tau_low, tau_high, 1e-9, rng=4, n_traces=2)
    low, high = dwell_times(ds.state.values, dt)
    for dwells, tau in ((low, tau_low), (high, tau_high)):
        # exponential dwells: SE of the mean tau/sqrt(n); 5 SE, plus the bias of sampling on a
        # grid (dwells shorter than dt of the other state are missed: ~dt/tau_other)
        tol = 5 / math.sqrt(dwells.size) + 2 * dt / min(tau_low, tau_high)
        assert dwells.mean() == pytest.approx(tau, rel=tol)
    p_high = tau_high / (tau_low + tau_high)
    assert ds.state.values.mean() == pytest.approx(p_high, rel=0.05)  # ~1e3 switching cycles per trace
    assert set(np.unique(ds.noise.values)) <= {0.0, 1e-9}


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: thermal_noise_std(-1e-6, 1e6), "g"),
        (lambda: thermal_noise_std(1e-6, 0.0), "bandwidth"),
        (lambda: shot_noise_std(np.inf, 1e6), "i"),
        (lambda: flicker_noise(8, 1e-3, 1e-20, 1), "n_samples"),
        (lambda: flicker_noise(64, 1e-3, 1e-20, 1, alpha=3.0), "alpha"),
        (lambda: random_telegraph(100, 1e-3, 0.0, 0.1, 1.0, 1), "tau_low"),
        (lambda: dwell_times(np.array([0, 2, 1]), 1e-3), "states"),
    ],
)
def test_bad_input_names_parameter(call, name):
    with pytest.raises(InputError, match=name):
        call()
