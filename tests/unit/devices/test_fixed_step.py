"""Fixed-step integration (method="euler", "heun", "rk4"): convergence orders against the closed
form of linear ion drift, the NumPy Euler loop of the benchmark, agreement with the adaptive
path for every model, the shared-voltage-factor path against the full rate law, errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, load_module

from cimphys.cards import load_device
from cimphys.devices import TEAM, VTEAM, LinearIonDrift, StanfordPKU, Yakopcic, integrate, pulse_train, sinusoid, triangle
from cimphys.devices.dynamics import _record_rows
from cimphys.devices.waveforms import Waveform
from cimphys.errors import ConvergenceError, InputError

ORDER_TOL = 0.3  # fitted log-log slope against the method's order
RTOL_LIKE_FOR_LIKE = 1e-12  # same algorithm and steps as the NumPy loop: rounding only
RTOL_SPLIT = 1e-13  # shared voltage factor vs the full rate law (1/D product, polynomial exp)

OBLEA = dict(load_device("yakopcic2011_oblea").parameters)
SLOW_VTEAM = dict(r_on=1e3, r_off=3e5, k_on=-5e-7, k_off=5e-7, alpha_on=3.0, alpha_off=3.0,
                  v_on=-0.5, v_off=0.3, window="biolek", p=2.0)


def _drift_closed_form(p, t, v0, omega, w0):
    """Windowless linear drift under v0 sin(omega t): F(w) = F(w0) + mu R_on/D * flux (Strukov 2008)."""
    r_on, r_off, d, mu = p["r_on"], p["r_off"], p["d"], p["mu_v"]
    dr = r_off - r_on
    f = r_off * w0 - dr * w0**2 / (2 * d) + mu * r_on / d * v0 / omega * (1 - np.cos(omega * t))
    return d / dr * (r_off - np.sqrt(r_off**2 - 2 * dr * f / d))


@pytest.mark.parametrize(("method", "order", "substeps"),
                         [("euler", 1, (4, 8, 16)), ("heun", 2, (1, 2, 4)), ("rk4", 4, (1, 2, 4))])
def test_convergence_order_against_the_closed_form(method, order, substeps):
    card = load_device("strukov2008_hp")
    model = LinearIonDrift.from_card(card)
    wave = sinusoid(1.0, 1.0, cycles=1, points_per_cycle=40)
    ref = _drift_closed_form(dict(card.parameters), wave.t, 1.0, 2 * np.pi, 1e-9)
    assert np.ptp(ref) > 0.2 * 1e-8  # the state sweeps a quarter of D
    errors = []
    for n in substeps:
        ds = integrate(model, wave, 1e-9, method=method, substeps=n, quantities=("state",))
        errors.append(np.max(np.abs(ds.state.values[:, 0] - ref)) / 1e-8)
        assert ds.attrs["steps"] == 40 * n and ds.attrs["method"] == method
    slope = -np.polyfit(np.log(substeps), np.log(errors), 1)[0]
    assert abs(slope - order) < ORDER_TOL
    assert errors[-1] < {1: 1e-3, 2: 1e-4, 4: 1e-9}[order]


def test_euler_equals_the_numpy_loop_of_the_benchmark(monkeypatch, rng):
    """Like for like: the same forward-Euler algorithm on the same 1000 steps."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # its fallback import of _common
    bench = load_module("benchmarks/bench_devices.py")
    cells = 300
    k_off = rng.uniform(0.08, 0.1, cells)
    x0 = rng.uniform(0.0, 0.3e-9, cells)
    wave = pulse_train(0.35, 0.9e-6, 3, period=2e-6, rise=0.05e-6, fall=0.05e-6, delay=0.05e-6)
    t = np.linspace(0.0, wave.t[-1], 301)
    wave = wave.with_times(t)
    ours = integrate(VTEAM(**{**bench.VTEAM_PARAMS, "k_off": k_off}), wave, x0, method="euler",
                     record="final", quantities=("state",)).state.values[0]
    peer = bench.numpy_euler(k_off, x0, t, wave(t))
    np.testing.assert_allclose(ours, peer, rtol=RTOL_LIKE_FOR_LIKE, atol=0)
    assert np.all(peer - x0 > 0.05 * 3e-9)  # every cell moved


CASES = [
    (LinearIonDrift(r_on=100.0, r_off=16e3, d=10e-9, mu_v=1e-14, window="joglekar", p=2.0),
     sinusoid(1.0, 1.0, cycles=2, points_per_cycle=50), 2e-9, 1e-9),
    (VTEAM(**SLOW_VTEAM), triangle(-1.0, 1.0, 1e3, cycles=2, points_per_cycle=50), 1.5e-9, 1e-9),
    (VTEAM(**{**SLOW_VTEAM, "window": "kvatinsky", "a_on": 0.3e-9, "a_off": 2.7e-9, "w_c": 0.2e-9}),
     triangle(-1.0, 1.0, 1e3, cycles=2, points_per_cycle=50), 1.5e-9, 1e-9),
    (Yakopcic(**OBLEA), sinusoid(0.25, 100.0, cycles=2, points_per_cycle=50), 0.11, 1e-6),
    # TEAM: the card's fit with the window centred on the bounds (the paper's placement keeps x low)
    (TEAM(**{**load_device("kvatinsky2013_team").parameters, "a_on": 1.2e-9, "a_off": 1.8e-9}),
     triangle(-0.3, 0.3, 1e3, points_per_cycle=50), 1.3e-9, 1e-5),
    # Stanford: the F_min step (smoothed over 1 % of F_min on the card) is steep: error ~ h, 1.5e-5 measured
    (StanfordPKU.from_card(load_device("guan2012_stanford_pku")), triangle(-1.6, 1.4, 1e3, points_per_cycle=40),
     1.6e-9, 1e-4),
]


@pytest.mark.parametrize(("model", "wave", "x0", "tol"), CASES,
                         ids=["drift-joglekar", "vteam-biolek", "vteam-kvatinsky", "yakopcic", "team", "stanford-pku"])
def test_fine_grid_rk4_agrees_with_the_adaptive_path(model, wave, x0, tol):
    """RK4 with 64 steps per sample interval against rk45 at rtol 1e-10.  Thresholds and bounds
    make the rate law non-smooth, so the error there falls only like h (TEAM's runaway to its
    bound the most: 1e-6 of the range measured, 1e-5 allowed); smooth laws reach 1e-10."""
    lo, hi = (float(np.min(b)) for b in model.state_bounds)
    ref = integrate(model, wave, x0, rtol=1e-10, atol=1e-13, quantities=("state",)).state.values[:, 0]
    ds = integrate(model, wave, x0, method="rk4", substeps=64)
    assert np.max(np.abs(ds.state.values[:, 0] - ref)) / (hi - lo) < tol
    assert np.ptp(ref) > 0.2 * (hi - lo)
    assert set(ds.data_vars) == {"voltage", "state", "current", "conductance"}
    i, _ = model.current_and_conductance(ds.voltage.values, ds.state.values[:, 0])
    np.testing.assert_allclose(ds.current.values[:, 0], i, rtol=1e-12)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("index", [1, 2, 3], ids=["vteam-biolek", "vteam-kvatinsky", "yakopcic"])
def test_shared_voltage_factor_equals_the_full_rate_law(index, method):
    """One voltage scale: the factor is taken once per stage; a per-cell scale array (all ones)
    makes every cell evaluate the full rate law instead.  Same states to rounding."""
    model, wave, x0, _ = CASES[index]
    shared = integrate(model, wave, [x0, x0], method=method, substeps=4, quantities=("state",))
    full = integrate(model, wave, [x0, x0], method=method, substeps=4, v_scale=np.ones(2), quantities=("state",))
    np.testing.assert_allclose(shared.state.values, full.state.values, rtol=RTOL_SPLIT, atol=0)


def _shared_vs_full(model, wave, x0, method):
    from cimphys.devices.laws.dispatch import split_eligible

    assert split_eligible(model.model_id, model._P, 1)  # the shared-factor path is taken
    shared = integrate(model, wave, x0, method=method, substeps=2, quantities=("state",))
    full = integrate(model, wave, x0, method=method, substeps=2, v_scale=np.ones(x0.size), quantities=("state",))
    np.testing.assert_allclose(shared.state.values, full.state.values, rtol=RTOL_SPLIT, atol=0)
    return shared.state.values


def test_per_cell_rate_constants_and_read_parameters(rng):
    """Per-cell k_on, k_off and r_off (VTEAM, p = 3: 2p = 6, not the constant-folded 20), and
    per-cell ap != an and a1 (Yakopcic): the shared-factor path against the full rate law."""
    k_on = -rng.uniform(1e-7, 5e-7, 8)
    vteam = VTEAM(**{**SLOW_VTEAM, "p": 3.0, "k_on": k_on, "k_off": -2 * k_on, "r_off": rng.uniform(2e5, 4e5, 8)})
    x = _shared_vs_full(vteam, triangle(-1.0, 1.0, 1e3, cycles=2, points_per_cycle=50), rng.uniform(0.5e-9, 2.5e-9, 8),
                        "rk4")
    assert np.ptp(x[:, 0]) > 0.1 * 3e-9
    ap = rng.uniform(2000.0, 6000.0, 8)
    yak = Yakopcic(**{**OBLEA, "ap": ap, "an": 0.5 * ap, "a1": rng.uniform(1e-4, 3e-4, 8)})
    x = _shared_vs_full(yak, sinusoid(0.25, 100.0, cycles=2, points_per_cycle=50), np.full(8, 0.3), "heun")
    assert np.ptp(x[:, 0]) > 0.1


def test_bounds_records_threads_and_quiet_steps(rng):
    model = VTEAM.from_card(load_device("kvatinsky2015_vteam_pickett"))  # ns switching: hits the bounds
    wave = pulse_train([1.0, -2.0, 1.0, -2.0], 1e-7, 4, rise=1e-9, fall=1e-9, points_per_pulse=20)
    x0 = rng.uniform(0.0, 3e-9, 5000)
    serial = integrate(model, wave, x0, method="rk4", parallel=False, quantities=("state",))
    x = serial.state.values
    assert x.min() >= 0.0 and x.max() <= 3e-9 and np.all(x[-1] == 0.0)  # clipped onto x_on
    threaded = integrate(model, wave, x0, method="rk4", parallel=True, quantities=("state",))
    np.testing.assert_array_equal(threaded.state.values, x)  # blocks are independent
    every = integrate(model, wave, x0[:3], method="rk4", record=7, quantities=("state",))
    np.testing.assert_array_equal(every.state.values, x[_record_rows(wave.t.size, 7), :3])
    below = integrate(model, pulse_train(0.29, 1e-6, 5), np.full(3, 1.1e-9), method="euler")
    assert np.all(below.state.values == 1.1e-9)  # below both thresholds nothing moves


def test_non_finite_rate_names_cell_and_time():
    # cell 2's rate overflows: (1000 V / 1 uV)^50 = 1e450 (rates within the physical window of
    # cards.PLAUSIBLE; the other cells' (1e9)^3 stay finite)
    alpha_off = np.array([3.0, 3.0, 50.0, 3.0])
    model = VTEAM(**{**SLOW_VTEAM, "alpha_off": alpha_off, "v_off": 1e-6, "window": "none"})
    with pytest.raises(ConvergenceError, match=r"cell 2 .*not finite.* t = "):
        integrate(model, pulse_train(1000.0, 1e-6, 1), np.full(4, 1e-9), method="euler")


@pytest.mark.parametrize(("kwargs", "match"),
                         [({"method": "midpoint"}, "method"), ({"method": "rk4", "substeps": 0}, "substeps"),
                          ({"method": "euler", "substeps": 1.5}, "substeps"),
                          ({"method": "rk45", "substeps": 4}, "substeps")])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        integrate(VTEAM(**SLOW_VTEAM), triangle(-1.0, 1.0, 1e3), [1e-9, 2e-9], **kwargs)


def test_rejects_non_increasing_times():
    with pytest.raises(InputError, match="t: expected at least 2 strictly increasing"):  # checked when built
        Waveform("pwl", np.array([0.0, 2e-3, 1e-3]), np.array([0.0, 3e-3]), np.array([0.0, 1.0]))


def test_device_command_fixed_step(tmp_path, capsys):
    from cimphys import results
    from cimphys.cli import main

    argv = ["device", "kvatinsky2015_vteam_pickett", "--sweep=-2:1:1e3", "--points", "80", "-o", str(tmp_path)]
    assert main([*argv, "--method", "rk4", "--substeps", "4"]) == 0
    ds = results.open(capsys.readouterr().out.split()[0])
    assert ds.attrs["method"] == "rk4" and ds.attrs["steps"] == 4 * (ds.sizes["time"] - 1)
    x = ds.state.values[:, 0]
    assert x.min() == 0.0 and x.max() == 3e-9  # switches fully, as the adaptive run does
    assert main([*argv, "--method", "rk4", "--substeps", "0"]) == 1
    assert "substeps" in capsys.readouterr().err
