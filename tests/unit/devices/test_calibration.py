"""Calibration: recover known parameters from noisy synthetic data; intervals; card provenance."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.cards import card_from_mapping, parse_card_bytes
from cimphys.devices import SinhCell
from cimphys.devices.calibration import calibrate, fit
from cimphys.errors import ConvergenceError, InputError

# Synthetic data with 1 % noise on 201 points: the estimators' standard errors are ~0.2 %
# (k) and ~0.1 % (a); 2 % (the task's contract) is > 10 standard errors.
RTOL_RECOVER = 0.02
K_TRUE, A_TRUE = 3.7e-7, 3.1


def _sinh_card(k=1e-6, a=2.0):
    data = {
        "model": {"name": "sinh"},
        "parameters": {"k": k, "a": a},
        "provenance": {"source": "synthetic test card", "url": "https://example.org/none", "fitted": "nothing",
                       "method": "chosen by hand", "residual": "none"},
    }
    return card_from_mapping(data, "device", "test", "synthetic_sinh")


def _iv(card, v):
    return SinhCell.from_card(card).current(v)


def _data(seed, n=201, noise=0.01):
    v = np.linspace(-1.0, 1.0, n)
    true = SinhCell(K_TRUE, A_TRUE).current(v)
    y = true * (1 + noise * np.random.default_rng(seed).standard_normal(n))
    return v, y, np.abs(true) + 1e-12


def test_recovers_sinh_parameters_and_updates_card():
    v, y, scale = _data(1)
    card, res = calibrate(_sinh_card(), _iv, v, y, ["k", "a"], bounds={"k": (1e-12, 1e-3), "a": (0.1, 20.0)},
                          scale=scale, data="synthetic I-V, 1 % noise")
    assert card["k"] == pytest.approx(K_TRUE, rel=RTOL_RECOVER)
    assert card["a"] == pytest.approx(A_TRUE, rel=RTOL_RECOVER)
    assert set(res.log_space) == {"k", "a"}  # both bounds span > 2 decades
    assert res.ci["k"][0] < K_TRUE < res.ci["k"][1]
    assert res.residual_rms == pytest.approx(0.01, rel=0.2)  # relative residuals ~ the 1 % noise
    assert card.provenance["residual"] == res.residual_rms
    assert "k, a" in card.provenance["fitted"] and "least_squares" in card.provenance["method"]
    again = parse_card_bytes(card.to_toml().encode(), "device", "roundtrip", "x")
    assert again.parameters == card.parameters and again.provenance["notes"] == card.provenance["notes"]


def test_confidence_intervals_cover_at_nominal_rate():
    # 40 independent data sets: a 95 % interval should miss ~2 times; fewer than 33 hits would
    # happen with probability < 1e-3 for correct intervals (binomial), so that bound is used.
    hits = 0
    for seed in range(40):
        v, y, scale = _data(100 + seed, n=41, noise=0.05)
        res = fit(lambda p, x: SinhCell(p["k"], p["a"]).current(x), v, y, ["k", "a"], [1e-6, 2.0],
                  ([1e-12, 0.1], [1e-3, 20.0]), scale=scale)
        hits += res.ci["a"][0] <= A_TRUE <= res.ci["a"][1]
    assert hits >= 33


def test_linear_space_fit_of_linear_model_is_exact_least_squares(rng):
    x = np.linspace(0, 1, 50)
    y = 2.0 * x + 0.5 + 0.01 * rng.standard_normal(50)
    res = fit(lambda p, xx: p["m"] * xx + p["c"], x, y, ["m", "c"], [1.0, 0.0], (-10.0, 10.0))
    m, c = np.polyfit(x, y, 1)
    assert res.values["m"] == pytest.approx(m, rel=1e-6) and res.values["c"] == pytest.approx(c, rel=1e-6)
    # the covariance of linear least squares is exact: compare with the textbook formula
    X = np.stack([x, np.ones_like(x)], axis=1)
    s2 = np.sum((X @ [m, c] - y) ** 2) / (50 - 2)
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ X)) * s2)
    assert res.stderr["m"] == pytest.approx(se[0], rel=1e-4) and res.log_space == ()


def test_does_not_converge_raises():
    v, y, scale = _data(2)
    with pytest.raises(ConvergenceError):
        fit(lambda p, x: SinhCell(p["k"], p["a"]).current(x), v, y, ["k", "a"], [1e-9, 0.5],
            ([1e-12, 0.1], [1e-3, 20.0]), scale=scale, max_nfev=1)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"p0": [1e-6]}, "p0"),
        ({"p0": [2e-3, 2.0]}, "p0"),
        ({"y": [np.nan] * 5}, "y"),
        ({"log": ["q"]}, "log"),
        ({"bounds": ([-1.0, 0.1], [1.0, 20.0]), "log": ["k"]}, "bounds"),
    ],
)
def test_bad_input_names_parameter(kwargs, name):
    args = {"forward": lambda p, x: SinhCell(p["k"], p["a"]).current(x), "x": np.linspace(-1, 1, 5),
            "y": np.linspace(-1, 1, 5) * 1e-6, "names": ["k", "a"], "p0": [1e-6, 2.0],
            "bounds": ([1e-12, 0.1], [1e-3, 20.0]), **kwargs}
    with pytest.raises(InputError, match=name):
        fit(**args)


def test_forward_nan_and_bad_names_rejected():
    with pytest.raises(InputError, match="forward"):
        fit(lambda p, x: np.full(x.shape, np.nan), np.zeros(3), np.zeros(3), ["k"], [1.0], (0.0, 2.0))
    with pytest.raises(InputError, match="fit_names"):
        calibrate(_sinh_card(), _iv, np.zeros(3), np.zeros(3), ["r_on"])
