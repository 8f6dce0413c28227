"""Validation campaign: linear ion drift against its closed-form solution."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_module


@pytest.fixture(scope="module")
def campaign():
    return load_module("validation/drift_closed_form.py")


@pytest.mark.slow
def test_campaign_passes_every_check(campaign, tmp_path):
    report = campaign.run(tmp_path, quick=True)
    assert report["campaign"] == "drift_closed_form"
    for check in report["checks"]:
        assert check["value"] <= check["tolerance"], check
    assert report["passed"]
    areas = list(report["areas"].values())
    assert all(a > b for a, b in zip(areas, areas[1:]))  # lobes shrink with frequency


def test_closed_form_is_a_solution(campaign):
    """The closed form satisfies the state equation (finite differences in time)."""
    params = dict(r_on=100.0, r_off=16e3, d=10e-9, mu_v=1e-14)
    omega = 2 * np.pi
    t = np.linspace(0.01, 1.9, 200)
    h = 1e-6
    w, i = campaign.closed_form(params, t, 1.0, omega, 1e-9)
    w_p, _ = campaign.closed_form(params, t + h, 1.0, omega, 1e-9)
    w_m, _ = campaign.closed_form(params, t - h, 1.0, omega, 1e-9)
    dwdt = (w_p - w_m) / (2 * h)
    np.testing.assert_allclose(dwdt, params["mu_v"] * params["r_on"] / params["d"] * i, rtol=1e-6, atol=1e-18)
