"""TEAM and VTEAM kernels against their NumPy twins, finite differences and the thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from naive_dynamic import central_difference, team_iv, team_rate, vteam_rate

from cimphys.cards import load_device
from cimphys.devices import TEAM, VTEAM, TwoTerminalCell
from cimphys.errors import CardError, InputError

RTOL_KERNEL = 1e-12  # same formula evaluated twice in double precision
RTOL_FD = 1e-6  # central difference with h = 1 uV: truncation and rounding both far below this


def _params(card_name):
    return dict(load_device(card_name).parameters)


@pytest.fixture(params=[("kvatinsky2015_vteam_pickett", VTEAM), ("kvatinsky2013_team", TEAM)])
def model_and_params(request):
    name, cls = request.param
    return cls.from_card(load_device(name)), _params(name), cls


@pytest.mark.parametrize("iv", ["linear", "exponential"])
@pytest.mark.parametrize("window", ["none", "kvatinsky", "biolek"])
def test_kernels_match_twin(model_and_params, iv, window, rng):
    _, params, cls = model_and_params
    params = {**params, "iv": iv, "window": window}
    model = cls(**params)
    lo, hi = model.state_bounds
    v = rng.uniform(-2.5, 2.5, 4000) * (1.0 if cls is VTEAM else 0.05)
    x = rng.uniform(lo, hi, v.size)
    i, g = model.current_and_conductance(v, x)
    i_ref, g_ref = team_iv(params, v, x)
    np.testing.assert_allclose(i, i_ref, rtol=RTOL_KERNEL, atol=0)
    np.testing.assert_allclose(g, g_ref, rtol=RTOL_KERNEL, atol=0)
    twin = vteam_rate if cls is VTEAM else team_rate
    r_ref = twin(params, v, x)
    np.testing.assert_allclose(model.rate(v, x), r_ref, rtol=1e-11, atol=1e-300)
    assert np.count_nonzero(r_ref) > 100  # the draw reaches past the thresholds


def test_conductance_is_derivative(model_and_params, rng):
    model, _, _ = model_and_params
    lo, hi = model.state_bounds
    x = rng.uniform(lo, hi, 50)
    v = rng.uniform(-1, 1, 50)
    fd = central_difference(lambda vv: model.current(vv, x), v)
    np.testing.assert_allclose(model.conductance(v, x), fd, rtol=RTOL_FD)


def test_vteam_no_motion_between_thresholds():
    model = VTEAM.from_card(load_device("kvatinsky2015_vteam_pickett"))
    v = np.linspace(-1.5, 0.3, 1001)  # v_on .. v_off inclusive
    x = np.linspace(0.0, 3e-9, 1001)
    assert np.all(model.rate(v[:, None], x[None, :]) == 0.0)
    assert model.rate(0.31, 1e-9) > 0 and model.rate(-1.51, 1e-9) < 0
    assert model.thresholds == (-1.5, 0.3)


def test_team_thresholds_are_currents():
    params = _params("kvatinsky2013_team")
    model = TEAM(**params)
    x = 1.5e-9
    r = 1.0 / model.conductance(0.0, x)
    v_off = params["i_off"] * r
    assert model.rate(0.999 * v_off, x) == 0.0
    assert model.rate(1.01 * v_off, x) > 0.0


def test_per_cell_parameters(rng):
    params = _params("kvatinsky2015_vteam_pickett")
    k_off = rng.uniform(0.05, 0.2, (3, 4))
    model = VTEAM(**{**params, "k_off": k_off})
    assert model.shape == (3, 4)
    x = np.full((3, 4), 1e-9)
    r = model.rate(np.full((3, 4), 0.6), x)
    ref = vteam_rate({**params, "k_off": k_off}, np.full((3, 4), 0.6), x)
    np.testing.assert_allclose(r, ref, rtol=RTOL_KERNEL)


def test_read_cell_is_a_crossbar_cell(model_and_params):
    model, _, _ = model_and_params
    lo, hi = model.state_bounds
    state = np.linspace(lo, hi, 6).reshape(2, 3)
    cell = model.read_cell(state)
    assert isinstance(cell, TwoTerminalCell) and cell.shape == (2, 3)
    v = np.full((2, 3), 0.05)
    np.testing.assert_allclose(cell.current(v), model.current(v, state), rtol=RTOL_KERNEL)


@pytest.mark.parametrize(
    ("change", "match"),
    [({"k_on": 1.0}, "k_on"), ({"v_off": -0.1}, "v_off"), ({"r_on": float("nan")}, "r_on"),
     ({"window": "hann"}, "window"), ({"x_off": 0.0}, "x_off")],
)
def test_rejects_bad_parameters(change, match):
    params = {**_params("kvatinsky2015_vteam_pickett"), **change}
    with pytest.raises(InputError, match=match):
        VTEAM(**params)


def test_rejects_bad_state_and_voltage():
    model = VTEAM.from_card(load_device("kvatinsky2015_vteam_pickett"))
    with pytest.raises(InputError, match="state"):
        model.current(0.1, 4e-9)
    with pytest.raises(InputError, match="v"):
        model.rate(np.inf, 1e-9)


def test_card_checks_order():
    card = load_device("kvatinsky2015_vteam_pickett")
    with pytest.raises(CardError, match="r_off > r_on"):
        card.with_parameters(r_off=10.0)


def test_scalar_in_scalar_out():
    """Regression: 0-d inputs give 0-d outputs (ascontiguousarray promoted them to 1-d)."""
    model = VTEAM.from_card(load_device("kvatinsky2015_vteam_pickett"))
    assert model.current(0.5, 1e-9).shape == () and model.rate(0.5, 1e-9).shape == ()
    assert model.current([0.5, 0.6], 1e-9).shape == (2,)


def test_vectorised_linear_read_equals_scalar_loop_and_reports_bad_cells(rng):
    """One parameter set (the exit-free loop) against per-cell sets of equal values (the scalar
    loop): the same operations, so the same bits; a NaN voltage deep in the array still raises."""
    params = _params("kvatinsky2015_vteam_pickett")
    v = rng.uniform(-1.0, 1.0, 1000)
    x = rng.uniform(params["x_on"], params["x_off"], v.size)
    flat = VTEAM(**params).current_and_conductance(v, x)
    per_cell = VTEAM(**{**params, "r_on": np.full(v.size, params["r_on"])}).current_and_conductance(v, x)
    np.testing.assert_array_equal(flat[0], per_cell[0])
    np.testing.assert_array_equal(flat[1], per_cell[1])
    v[777] = np.nan
    with pytest.raises(InputError, match="^v: "):
        VTEAM(**params).current(v, x)


@pytest.mark.parametrize(("change", "match"), [({"r_on": 1e-30}, r"r_on: expected values in \[0.001, 1e\+15\] ohm"),
                                               ({"k_off": 9e40}, r"k_off: expected values in .*1e\+06\] m/s")])
def test_direct_construction_refuses_unit_slips(change, match):
    """Regression (issue 18.8): VTEAM(r_on=1e-30) and k_off = 9e40 were accepted when built
    directly (the card check did not apply); the unit windows of cards.PLAUSIBLE now do."""
    from cimphys.cards import load_device
    from cimphys.devices import VTEAM

    params = dict(load_device("kvatinsky2015_vteam_pickett").parameters)
    with pytest.raises(InputError, match=match):
        VTEAM(**{**params, **change})
