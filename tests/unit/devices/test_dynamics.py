"""The state integrator: waveforms, accuracy against references, bounds, thresholds, records."""

from __future__ import annotations

import numpy as np
import pytest
from naive_dynamic import drift_rate, vteam_rate, yakopcic_rate
from scipy.integrate import solve_ivp

from cimphys.cards import load_device
from cimphys.devices import (
    TEAM,
    VTEAM,
    LinearIonDrift,
    StanfordPKU,
    Yakopcic,
    integrate,
    pulse_train,
    pwl,
    sinusoid,
    triangle,
)
from cimphys.errors import ConvergenceError, InputError

# Our runs use rtol = 1e-9; the references are solved to 1e-12.  Local errors of 1e-9 add up
# over a few hundred steps to ~1e-7 of the state range; 1e-6 leaves a margin of ten.
RTOL_REFERENCE = 1e-6
RTOL_KERNEL = 1e-12  # chord conductance vs the model's own current

OBLEA = dict(load_device("yakopcic2011_oblea").parameters)
SLOW_VTEAM = dict(r_on=1e3, r_off=3e5, k_on=-5e-7, k_off=5e-7, alpha_on=3.0, alpha_off=3.0,
                  v_on=-0.5, v_off=0.3, window="biolek", p=2.0)


def _reference(rate, waveform, x0, lo, hi, t_eval):
    """One cell by scipy's DOP853 at tight tolerance, the state clipped to its bounds."""
    if waveform.kind == "sine":
        w, a, off = 2 * np.pi * waveform.frequency, waveform.amplitude, waveform.offset
        def volt(t):
            return off + a * np.sin(w * t)
    else:
        kt, kv = waveform.knots_t, waveform.knots_v
        def volt(t):
            return np.interp(t, kt, kv)

    def f(t, y):
        r = float(rate(np.array([volt(t)]), np.clip(y, lo, hi))[0])
        return [0.0 if (y[0] >= hi and r > 0) or (y[0] <= lo and r < 0) else r]

    span = t_eval[-1] - t_eval[0]
    sol = solve_ivp(f, (t_eval[0], t_eval[-1]), [x0], method="DOP853", t_eval=t_eval,
                    rtol=1e-12, atol=1e-15 * (hi - lo), max_step=span / 400)
    return np.clip(sol.y[0], lo, hi)


def test_waveform_constructors():
    tri = triangle(-1.0, 2.0, 10.0, cycles=2, points_per_cycle=12)
    assert tri(np.array([0.0, 1 / 30, 1 / 30 + 0.05, 0.1])).tolist() == pytest.approx([0, 2, -1, 0])  # equal slopes
    assert tri.t[0] == 0 and tri.t[-1] == pytest.approx(0.2) and np.all(np.diff(tri.t) > 0)
    pulses = pulse_train([1.0, 2.0, 3.0], 1e-6, 3, period=4e-6, rise=1e-8, fall=1e-8)
    t, v = pulses.samples()
    assert v.max() == 3.0 and v[0] == 0.0 and v[-1] == 0.0
    ends = 1e-8 + 4e-6 * np.arange(1, 4)
    assert all(np.isclose(t, e).any() for e in ends)
    s = sinusoid(0.5, 1e3, cycles=1.5, points_per_cycle=40)
    assert s.t.size == 61 and s(2.5e-4).item() == pytest.approx(0.5)
    with pytest.raises(InputError, match="t"):
        pwl([0.0, 1.0, 1.0], [0, 1, 0])
    with pytest.raises(InputError, match="amplitude"):
        pulse_train([1.0, 2.0], 1e-6, 3)
    with pytest.raises(InputError, match="frequency"):
        sinusoid(1.0, -1.0)


@pytest.mark.parametrize(
    ("model", "twin", "waveform", "x0"),
    [
        (LinearIonDrift(r_on=100.0, r_off=16e3, d=10e-9, mu_v=1e-14, window="joglekar", p=2.0),
         lambda v, x: drift_rate(dict(r_on=100.0, r_off=16e3, d=10e-9, mu_v=1e-14, window="joglekar", p=2.0), v, x),
         sinusoid(1.0, 1.0, cycles=2, points_per_cycle=50), 2e-9),
        (VTEAM(**SLOW_VTEAM), lambda v, x: vteam_rate({**SLOW_VTEAM, "x_on": 0.0, "x_off": 3e-9}, v, x),
         triangle(-1.0, 1.0, 1e3, cycles=2, points_per_cycle=50), 1.5e-9),
        (Yakopcic(**OBLEA), lambda v, x: yakopcic_rate(OBLEA, v, x),
         sinusoid(0.25, 100.0, cycles=2, points_per_cycle=50), 0.11),
    ],
    ids=["drift-joglekar", "vteam-triangle", "yakopcic-sine"],
)
@pytest.mark.parametrize("method", ["rk45", "rk23"])
def test_matches_reference(model, twin, waveform, x0, method):
    ds = integrate(model, waveform, x0, rtol=1e-9, atol=1e-12, method=method)
    lo, hi = model.state_bounds
    ref = _reference(twin, waveform, x0, lo, hi, waveform.t)
    err = np.max(np.abs(ds.state.values[:, 0] - ref)) / (hi - lo)
    assert err < RTOL_REFERENCE
    assert np.ptp(ref) > 0.05 * (hi - lo)  # the state really moves in this case


def test_per_cell_parameters_and_scale_match_single_runs(rng):
    k_off = rng.uniform(2e-7, 8e-7, 6)
    model = VTEAM(**{**SLOW_VTEAM, "k_off": k_off})
    scale = rng.uniform(0.5, 1.5, 6)
    wave = pulse_train(1.0, 1e-4, 3, rise=1e-6, fall=1e-6)
    ds = integrate(model, wave, np.full(6, 1e-9), v_scale=scale, rtol=1e-9, atol=1e-12)
    for c in (0, 3, 5):
        one = VTEAM(**{**SLOW_VTEAM, "k_off": k_off[c]})
        single = integrate(one, wave, 1e-9, v_scale=scale[c], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ds.state.values[:, c], single.state.values[:, 0], rtol=1e-12, atol=0)
    assert ds.v_scale.attrs["units"] == "1"


def test_state_never_leaves_bounds():
    model = VTEAM.from_card(load_device("kvatinsky2015_vteam_pickett"))  # ns switching
    wave = pulse_train([1.0, -2.0, 1.0, -2.0], 1e-7, 4, rise=1e-9, fall=1e-9, points_per_pulse=20)
    ds = integrate(model, wave, np.linspace(0, 3e-9, 5))
    x = ds.state.values
    assert x.min() >= 0.0 and x.max() <= 3e-9
    assert np.all(x[-1] == 0.0)  # the last pulse is an ON pulse that reaches x_on


def test_runaway_switching_reaches_the_bound():
    # the card's fit with its Kvatinsky window centred on the bounds (a_on = x_on, a_off = x_off),
    # so that the ON runaway reaches x_on; the paper's placement (a_off = 1.2 nm = x_on, a_on =
    # 1.8 nm = x_off, Kvatinsky et al. 2013, Fig. 8 and Sec. IV-D) keeps the state low instead
    params = {**load_device("kvatinsky2013_team").parameters, "a_on": 1.2e-9, "a_off": 1.8e-9}
    ds = integrate(TEAM(**params), triangle(-0.3, 0.3, 1e3), 1.3e-9)
    assert ds.state.values[-1, 0] == pytest.approx(1.2e-9, abs=0)
    assert ds.state.values.max() < 1.8e-9


def test_team_card_window_keeps_the_state_low():
    # Kvatinsky et al. 2013, Sec. IV-D: "the proposed window function constrains the state variable
    # to a low range": with a_off = x_on, OFF switching stalls a few w_c above x_on, and f_on is
    # ~exp(-exp(4)) there, so the ON pulse cannot bring the state back
    model = TEAM.from_card(load_device("kvatinsky2013_team"))
    ds = integrate(model, triangle(-0.3, 0.3, 1e3), 1.3e-9)
    x = ds.state.values[:, 0]
    assert x.max() > 1.35e-9 and x.max() < 1.2e-9 + 2 * 107e-12
    assert x[-1] == pytest.approx(x.max(), rel=1e-6)


def test_below_threshold_nothing_moves_and_costs_nothing():
    model = VTEAM.from_card(load_device("kvatinsky2015_vteam_pickett"))
    wave = pulse_train(0.29, 1e-6, 50)
    ds = integrate(model, wave, np.full(4, 1.1e-9))
    assert np.all(ds.state.values == 1.1e-9)
    assert ds.attrs["steps_total"] == 0


def test_threshold_crossing_is_resolved():
    """A ramp through v_off: the step is split at the crossing, matching a quadrature."""
    from scipy.integrate import quad

    model = VTEAM(**{**SLOW_VTEAM, "window": "none"})
    wave = pwl([0.0, 1e-3], [0.0, 1.0])
    ds = integrate(model, wave, 0.5e-9, record="final", rtol=1e-10, atol=1e-13)
    # with no window the rate depends on v(t) only: x(T) = x0 + integral of k_off (v/v_off - 1)^a
    dx, _ = quad(lambda t: 5e-7 * max(t * 1e3 / 0.3 - 1, 0) ** 3, 0, 1e-3, points=[0.3e-3], epsabs=0, epsrel=1e-13)
    assert ds.state.values[0, 0] == pytest.approx(0.5e-9 + dx, rel=1e-9)


def test_record_options():
    model = StanfordPKU.from_card(load_device("guan2012_stanford_pku"))
    wave = triangle(-1.6, 1.4, 1e3, points_per_cycle=40)
    full = integrate(model, wave, [1.6e-9, 1.0e-9])  # SET to g_min, then RESET to g_max
    final = integrate(model, wave, [1.6e-9, 1.0e-9], record="final")
    every = integrate(model, wave, [1.6e-9, 1.0e-9], record=7)
    assert final.sizes == {"time": 1, "cell": 2}
    np.testing.assert_allclose(final.state.values[0], full.state.values[-1], rtol=1e-7)
    assert every.time.values[-1] == full.time.values[-1] and every.sizes["time"] == len(range(0, 41, 7)) + 1
    for name in ("voltage", "state", "current", "conductance"):
        assert {"units", "long_name"} <= set(full[name].attrs)
    assert full.state.attrs["units"] == "m"
    i, g = model.current_and_conductance(full.voltage.values[:, None], full.state.values)
    np.testing.assert_allclose(full.current.values, i, rtol=RTOL_KERNEL)
    at_zero = full.voltage.values == 0.0
    np.testing.assert_allclose(full.conductance.values[at_zero], g[at_zero], rtol=RTOL_KERNEL)
    # the integrated gap (the release's idt) runs past [g_min, g_max] to its bounds [0, t_ox]
    assert full.state.values.min() == 0.0 and full.state.values[-1].tolist() == [12e-9, 12e-9]


def test_unmeetable_budget_raises():
    model = VTEAM(**SLOW_VTEAM)
    with pytest.raises(ConvergenceError, match="too many steps"):
        integrate(model, triangle(-1.0, 1.0, 1e3), 1.5e-9, max_steps=3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"record": "some"}, "record"), ({"record": 0}, "record"), ({"method": "leapfrog"}, "method"),
     ({"rtol": float("nan")}, "rtol"), ({"v_scale": [1.0, 2.0, 3.0]}, "v_scale"),
     ({"quantities": ("power",)}, "quantities")],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        integrate(VTEAM(**SLOW_VTEAM), triangle(-1.0, 1.0, 1e3), [1e-9, 2e-9], **kwargs)


def test_rejects_state_out_of_bounds():
    with pytest.raises(InputError, match="state"):
        integrate(VTEAM(**SLOW_VTEAM), triangle(-1.0, 1.0, 1e3), 5e-9)


@pytest.mark.parametrize(("volts", "u0", "u1"), [(0.5, 0.1, 0.9), (-2.0, 0.9, 0.1)])
def test_vteam_pickett_switching_time_matches_quadrature(volts, u0, u1):
    """The published Pickett fit under a constant drive: the time to move the state from u0 to u1
    is D / (k (v/v_th - 1)^alpha) * integral du / f(u) with the Biolek window f; integrating
    for exactly that time must land on u1."""
    from scipy.integrate import quad

    card = load_device("kvatinsky2015_vteam_pickett")
    p = dict(card.parameters)
    model = VTEAM.from_card(card)
    d = p["x_off"] - p["x_on"]
    if volts > 0:
        speed = p["k_off"] * (volts / p["v_off"] - 1) ** p["alpha_off"]
        window = lambda u: 1 - u ** (2 * p["p"])  # noqa: E731
    else:
        speed = p["k_on"] * (volts / p["v_on"] - 1) ** p["alpha_on"]
        window = lambda u: 1 - (u - 1) ** (2 * p["p"])  # noqa: E731
    integral, _ = quad(lambda u: 1 / window(u), u0, u1, epsabs=0, epsrel=1e-13)
    t_switch = d / speed * integral
    ds = integrate(model, pwl([0.0, t_switch], [volts, volts]), u0 * d, record="final", rtol=1e-11, atol=1e-14)
    assert ds.state.values[0, 0] / d == pytest.approx(u1, rel=1e-8)
    assert 1e-10 < t_switch < 1e-6  # ns-scale switching, as the fit describes


def test_kernel_cache_digest_is_current():
    """Guards against stale Numba caches: every module that compiles kernels calling the laws
    carries the one digest of the laws' sources (see :mod:`cimphys.devices.laws`)."""
    import importlib
    import re
    from pathlib import Path

    import cimphys.devices as pkg
    from cimphys.devices.laws import sources_digest

    digest = sources_digest()
    here = Path(pkg.__file__).parent

    def inlines_a_law(path: Path) -> bool:
        """Whether the file compiles kernels of its own (a ``@jit`` other than ``inline="always"``,
        which is compiled into its callers only) and imports a law module."""
        text = path.read_text()
        law = r"^from \.(?!\.)\w+ import" if path.parent.name == "laws" else r"^from \.laws\.\w+ import"
        compiled = re.search(r'^@jit(?!\(inline="always"\))', text, re.MULTILINE) is not None
        return compiled and re.search(law, text, re.MULTILINE) is not None

    inlining = [p for p in sorted(here.rglob("*.py")) if inlines_a_law(p)]
    names = sorted(p.stem for p in inlining)
    # the files that inline laws today (a new one must carry the digest too)
    assert names == ["access", "adaptive_step", "dispatch", "fixed_step", "selector", "stanford_pku",
                     "transistor_memory"], names
    for path in inlining:
        module = importlib.import_module("cimphys.devices." + ".".join(path.relative_to(here).with_suffix("").parts))
        assert module.KERNEL_SOURCES == digest, f'set KERNEL_SOURCES = "{digest}" in {path.relative_to(here)}'


def test_final_record_of_a_sinusoid_equals_the_full_run():
    """Regression: a final-only record must not let the first step stride over periods."""
    model = Yakopcic(**OBLEA)
    wave = sinusoid(0.25, 100.0, cycles=3, points_per_cycle=40)
    full = integrate(model, wave, 0.11, rtol=1e-9, atol=1e-12)
    final = integrate(model, wave, 0.11, rtol=1e-9, atol=1e-12, record="final")
    assert final.state.values[0, 0] == pytest.approx(full.state.values[-1, 0], rel=1e-7)
    assert abs(full.state.values[-1, 0] - 0.11) > 0.05


@pytest.mark.parametrize("module", ["dynamics", "waveforms", "team", "drift", "fixed_step"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"cimphys.devices.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_threaded_run_equals_serial_and_is_the_default_for_many_cells(rng, monkeypatch):
    """parallel=None threads from PARALLEL_MIN_CELLS cells on; each cell is integrated alone,
    so threads change nothing, to the bit (per-cell parameters, scales and quiet stretches)."""
    from cimphys.devices import dynamics

    k_off = rng.uniform(2e-7, 8e-7, 24)
    model = VTEAM(**{**SLOW_VTEAM, "k_off": k_off})
    wave = pulse_train([1.0, -1.0, 0.2], 1e-4, 3, rise=1e-6, fall=1e-6)
    x0 = rng.uniform(0.0, 3e-9, 24)
    kw = dict(v_scale=rng.uniform(0.5, 1.5, 24), record="all", rtol=1e-9, atol=1e-12)
    serial = integrate(model, wave, x0, parallel=False, **kw)
    threaded = integrate(model, wave, x0, parallel=True, **kw)
    np.testing.assert_array_equal(threaded.state.values, serial.state.values)
    calls = []
    real = dynamics.integrate_cells_parallel
    monkeypatch.setattr(dynamics, "integrate_cells_parallel", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(dynamics, "PARALLEL_MIN_CELLS", 24)
    monkeypatch.setattr("numba.get_num_threads", lambda: 2)
    np.testing.assert_array_equal(integrate(model, wave, x0, **kw).state.values, serial.state.values)
    assert calls == [1]
    monkeypatch.setattr(dynamics, "PARALLEL_MIN_CELLS", 25)
    integrate(model, wave, x0, **kw)
    assert calls == [1]  # fewer cells than the threshold: serial
