"""Variation, stuck-at faults and endurance: sampled statistics against analytic values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cimphys.devices.variability import (
    EnduranceWindow,
    Variability,
    apply_stuck_at,
    cycle_to_cycle,
    device_to_device,
    stuck_at_faults,
    vary,
)
from cimphys.errors import InputError

N = 40000
# sample std of n Gaussians: relative standard error 1/sqrt(2n) = 0.35 % at n = 4e4; 2 % is ~6 SE
RTOL_STD = 0.02
# sample mean of a lognormal factor (sigma = 0.3): SE = sqrt(exp(s^2)-1)/sqrt(n) = 0.15 %; 1 % is ~6 SE
RTOL_MEAN = 0.01
BINOMIAL_SIGMAS = 6.0  # counts outside 6 binomial standard deviations fail (p < 2e-9 for a correct sampler)


def test_lognormal_d2d_median_and_log_std():
    g = device_to_device(10e-6, 0.3, (N,), rng=1)
    assert np.std(np.log(g / 10e-6)) == pytest.approx(0.3, rel=RTOL_STD)
    assert np.median(g) == pytest.approx(10e-6, rel=RTOL_MEAN)


def test_mean_preserving_lognormal():
    g = vary(10e-6, 0.3, (N,), rng=2, preserve="mean")
    assert g.mean() == pytest.approx(10e-6, rel=RTOL_MEAN)


def test_normal_distribution_relative_std():
    g = vary(np.full(N, 5.0), 0.05, (N,), rng=3, distribution="normal")
    assert g.std() / 5.0 == pytest.approx(0.05, rel=RTOL_STD)


def test_c2c_around_each_device():
    dev = np.array([1e-6, 1e-5])
    ds = cycle_to_cycle(dev, 0.2, N, rng=4)
    assert ds.value.dims == ("cycle", "cell")
    logs = np.log(ds.value.values / dev)
    np.testing.assert_allclose(logs.std(axis=0), 0.2, rtol=RTOL_STD)


def test_stuck_at_counts_within_binomial_bounds():
    n, p_on, p_off = 200_000, 0.01, 0.003
    faults = stuck_at_faults((n,), p_on, p_off, rng=5)
    for code, p in ((1, p_on), (-1, p_off)):
        count = int((faults == code).sum())
        assert abs(count - n * p) <= BINOMIAL_SIGMAS * math.sqrt(n * p * (1 - p))
    g = apply_stuck_at(np.full(n, 5e-6), faults, 25e-6, 0.1e-6)
    assert (g[faults == 1] == 25e-6).all() and (g[faults == -1] == 0.1e-6).all()
    assert (g[faults == 0] == 5e-6).all()


def test_variability_table_and_seed_reproducible():
    v = Variability.from_mapping({"d2d_sigma": 0.2, "p_stuck_on": 0.01})
    a = v.sample_devices(5e-6, (64, 64), 25e-6, 1e-7, rng=7)
    b = v.sample_devices(5e-6, (64, 64), 25e-6, 1e-7, rng=7)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="unknown"):
        Variability.from_mapping({"d2d_sigmaa": 0.1})


def test_endurance_interpolates_in_log_cycles():
    w = EnduranceWindow(cycles=(1, 1e4, 1e6), g_on=(100e-6, 100e-6, 50e-6), g_off=(1e-6, 1e-6, 10e-6))
    on, off = w.window(np.array([1.0, 1e5, 1e8]))
    np.testing.assert_allclose(on, [100e-6, math.sqrt(100e-6 * 50e-6), 50e-6], rtol=1e-12)
    np.testing.assert_allclose(off, [1e-6, math.sqrt(1e-6 * 10e-6), 10e-6], rtol=1e-12)
    np.testing.assert_allclose(w.narrow([1e-6, 100e-6], 1e6), [10e-6, 50e-6], rtol=1e-12)
    assert w.on_off_ratio(1e6) == pytest.approx(5.0)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: vary(-1.0, 0.1, (3,), 1), "nominal"),
        (lambda: vary(1.0, np.nan, (3,), 1), "sigma"),
        (lambda: vary(1.0, 0.1, (3,), 1, distribution="cauchy"), "distribution"),
        (lambda: stuck_at_faults((3,), 0.7, 0.6, 1), "p_stuck_on"),
        (lambda: stuck_at_faults((3,), 0.1, 0.1, None), "seed"),
        (lambda: EnduranceWindow((1, 1), (2e-6, 2e-6), (1e-6, 1e-6)), "cycles"),
        (lambda: EnduranceWindow((1, 10), (1e-6, 2e-6), (1e-6, 1e-6)), "g_on"),
        (lambda: Variability(d2d_sigma=-0.1), "d2d_sigma"),
    ],
)
def test_bad_input_names_parameter(call, name):
    with pytest.raises(InputError, match=name):
        call()


def _card_with(tables: str, tmp_path):
    from cimphys.cards import load_device

    base = (Path(__file__).parents[3] / "devices" / "kvatinsky2015_vteam_pickett.toml").read_text()
    path = tmp_path / "vteam_with_data.toml"
    path.write_text(base + "\n" + tables)
    return load_device(path)


def test_a_card_carries_variability_and_endurance_data(tmp_path):
    card = _card_with(
        "[variability]\nd2d_sigma = 0.2\np_stuck_off = 0.01\n\n"
        "[endurance]\ncycles = [1.0, 1e4, 1e6]\ng_on = [1e-3, 1e-3, 5e-4]\ng_off = [3.3e-6, 3.3e-6, 1e-5]\n",
        tmp_path,
    )
    var = Variability.from_card(card)
    assert (var.d2d_sigma, var.c2c_sigma, var.p_stuck_off) == (0.2, 0.0, 0.01)  # defaults filled
    window = EnduranceWindow.from_card(card)
    on, off = window.window(1e6)
    assert (float(on), float(off)) == pytest.approx((5e-4, 1e-5), rel=1e-12)
    bare = _card_with("", tmp_path)
    assert Variability.from_card(bare) == Variability() and EnduranceWindow.from_card(bare) is None


@pytest.mark.parametrize(
    "tables, message",
    [
        ("[variability]\nd2d_sgima = 0.2\n", "d2d_sigma"),  # a typo: the loader suggests the key
        ("[variability]\nd2d_sigma = -0.1\n", "d2d_sigma"),
        ("[endurance]\ncycles = [1.0, 1e4]\ng_on = [1e-3]\ng_off = [1e-6, 1e-6]\n", "one length"),
        ("[endurance]\ncycles = [1e4, 1.0]\ng_on = [1e-3, 1e-3]\ng_off = [1e-6, 1e-6]\n", "increasing"),
    ],
)
def test_bad_card_data_is_named(tables, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        EnduranceWindow.from_card(_card_with(tables, tmp_path))
