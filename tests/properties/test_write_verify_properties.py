"""Invariants of PCM write-verify and of the variation draws, over generated inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cimphys.devices.pcm import PCMModel
from cimphys.devices.programming import write_verify
from cimphys.devices.variability import vary

PCM = PCMModel()


@settings(max_examples=30, deadline=None)
@given(
    targets=st.lists(st.floats(0.0, 25e-6), min_size=1, max_size=64),
    tolerance=st.floats(1e-8, 5e-6),
    max_pulses=st.integers(1, 30),
    seed=st.integers(0, 2**32),
)
def test_write_verify_invariants(targets, tolerance, max_pulses, seed):
    ds = write_verify(PCM, np.array(targets), tolerance, max_pulses, seed)
    g, read, target = ds.g.values, ds.g_read.values, ds.g_target.values
    assert np.all((g >= 0) & (g <= PCM.g_max)) and np.all(read >= 0)
    ok = ds.converged.values
    assert np.all(np.abs(read[ok] - target[ok]) <= tolerance)
    assert np.all((ds.pulses.values >= 1) & (ds.pulses.values <= max_pulses))
    assert np.all(ds.pulses.values[~ok] == max_pulses) and ds.attrs["n_failed"] == int((~ok).sum())
    np.testing.assert_array_equal(ds.error.values, g - target)


@settings(max_examples=30, deadline=None)
@given(
    nominal=st.floats(0.0, 1e-3),
    sigma=st.floats(0.0, 3.0),
    distribution=st.sampled_from(["lognormal", "normal"]),
    seed=st.integers(0, 2**32),
)
def test_variation_is_finite_and_non_negative(nominal, sigma, distribution, seed):
    x = vary(nominal, sigma, (50,), seed, distribution)
    assert x.shape == (50,) and np.all(np.isfinite(x)) and np.all(x >= 0)
    if sigma == 0.0:
        np.testing.assert_array_equal(x, nominal)
