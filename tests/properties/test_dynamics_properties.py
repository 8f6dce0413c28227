"""Invariants of the state integrators (adaptive and fixed-step) over random VTEAM devices and pulse trains."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cimphys.devices import VTEAM, integrate, pulse_train

BASE = dict(r_on=1e3, r_off=3e5, x_on=0.0, x_off=3e-9, k_on=-216.2, k_off=0.091, alpha_on=4.0, alpha_off=4.0,
            v_on=-1.5, v_off=0.3, window="biolek", p=10.0)


@settings(max_examples=25, deadline=None)
@given(
    k_off=st.floats(1e-4, 10.0), alpha=st.floats(1.0, 6.0), p=st.integers(1, 10),
    amps=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=6),
    u0=st.floats(0.0, 1.0), window=st.sampled_from(["biolek", "kvatinsky", "none"]),
)
def test_positive_pulses_only_increase_the_state_within_bounds(k_off, alpha, p, amps, u0, window):
    model = VTEAM(**{**BASE, "k_off": k_off, "alpha_off": alpha, "p": float(p), "window": window,
                     "a_off": 2.7e-9, "a_on": 0.3e-9, "w_c": 0.2e-9})
    ds = integrate(model, pulse_train(amps, 1e-7, len(amps), rise=1e-9, fall=1e-9), u0 * 3e-9,
                   quantities=("state",))
    x = ds.state.values[:, 0]
    assert np.all((x >= 0.0) & (x <= 3e-9))
    assert np.all(np.diff(x) >= -1e-9 * 3e-9)  # OFF pulses never move the state back
    if max(amps) <= 0.3:  # never above v_off: nothing moves
        assert np.all(x == x[0])


@settings(max_examples=25, deadline=None)
@given(
    k_off=st.floats(1e-4, 10.0), alpha=st.floats(1.0, 6.0), p=st.integers(1, 10),
    amps=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=6),
    u0=st.floats(0.0, 1.0), window=st.sampled_from(["biolek", "kvatinsky", "none"]),
    method=st.sampled_from(["euler", "heun", "rk4"]), substeps=st.integers(1, 4),
)
def test_fixed_steps_keep_bounds_and_direction(k_off, alpha, p, amps, u0, window, method, substeps):
    """Fixed-step methods: every stage state is clipped and every stage rate of an OFF pulse is
    >= 0, so the state stays in its bounds and never moves back; below v_off nothing moves."""
    model = VTEAM(**{**BASE, "k_off": k_off, "alpha_off": alpha, "p": float(p), "window": window,
                     "a_off": 2.7e-9, "a_on": 0.3e-9, "w_c": 0.2e-9})
    wave = pulse_train(amps, 1e-7, len(amps), rise=1e-9, fall=1e-9, points_per_pulse=8)
    ds = integrate(model, wave, [u0 * 3e-9] * 3, method=method, substeps=substeps, quantities=("state",))
    x = ds.state.values
    assert np.all((x >= 0.0) & (x <= 3e-9))
    assert np.all(np.diff(x, axis=0) >= 0.0)
    assert np.all(x == x[:, :1])  # identical cells stay identical
    if max(amps) <= 0.3:
        assert np.all(x == x[0])
