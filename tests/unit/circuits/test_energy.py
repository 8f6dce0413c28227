"""Energy and latency model: closed forms, and the array energy of a crossbar solution."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits.crossbar import Crossbar
from cimphys.circuits.energy import COMPONENTS, EnergyModel, read_record, source_power
from cimphys.errors import InputError

# Power bookkeeping of a 1e-12-residual linear solve.
RTOL_POWER = 1e-10


def test_latency_pipelined_and_not():
    em = EnergyModel(t_read=100e-9, t_conversion=1e-9, e_conversion=1e-12, cols_per_adc=128)
    # ISAAC: 128 conversions at 1.28 GS/s fill exactly one 100 ns read; 16 bit-serial phases.
    assert em.latency(16) == pytest.approx(100e-9 + 15 * 128e-9 + 128e-9)
    slow = EnergyModel(t_read=100e-9, t_conversion=1e-9, e_conversion=1e-12, cols_per_adc=128, pipelined=False)
    assert slow.latency(16) == pytest.approx(16 * (100e-9 + 128e-9))
    fast_adc = EnergyModel(t_read=100e-9, t_conversion=1e-10, e_conversion=0.0, cols_per_adc=8)
    assert fast_adc.latency(4) == pytest.approx(4 * 100e-9 + 0.8e-9)


def test_record_by_hand(rng):
    em = EnergyModel(t_read=1e-8, t_conversion=1e-9, e_conversion=2e-12, e_dac=1e-13, c_wordline=5e-15,
                     p_sense=1e-5, cols_per_adc=2, e_shift_add=1e-15)
    p = rng.uniform(0.0, 1e-3, (3, 4))
    v = rng.choice([0.0, 0.2], (3, 4, 6))
    rec = em.record(p, v, columns=5)
    e = np.stack([rec[f"energy_{c}"].values for c in COMPONENTS])
    np.testing.assert_allclose(e[0], p.sum(0) * 1e-8)
    np.testing.assert_allclose(e[1], 3 * 6 * 1e-13 + 5e-15 * (v**2).sum(axis=(0, 2)))
    np.testing.assert_allclose(e[2:], np.array([[3 * 5 * 1e-5 * 1e-8], [3 * 5 * 2e-12], [3 * 5 * 1e-15]]) * np.ones(4))
    np.testing.assert_allclose(rec.energy_total, e.sum(0))
    assert int(rec.conversions) == 15 and rec.energy_total.attrs["units"] == "J"
    np.testing.assert_array_equal(rec.rows_driven, (v != 0).sum(axis=(0, 2)))


def test_read_energy_is_source_power_and_is_dissipated(rng):
    g = rng.uniform(1e-6, 1e-4, (7, 5))
    xb = Crossbar(g, r_wl=2.0, r_bl=3.0, r_driver=10.0, r_sense=5.0)
    v = rng.uniform(0.0, 0.3, (4, 7))
    sol = xb.solve(v)
    near, far = sol.source_currents
    p = source_power(v, near + far)
    power = sol.power()
    dissipated = sum(power[k].sum(axis=tuple(range(1, power[k].ndim))) for k in ("cell", "wl", "bl", "driver", "sense"))
    np.testing.assert_allclose(p, dissipated, rtol=RTOL_POWER)
    np.testing.assert_allclose(p, power["source"].sum(-1), rtol=RTOL_POWER)
    rec = EnergyModel(t_read=1e-8, t_conversion=1e-9, e_conversion=0.0).record(p[None], v[None], columns=5)
    np.testing.assert_allclose(rec.energy_array, p * 1e-8, rtol=RTOL_POWER)


def test_read_record_splits_the_source_energy(rng):
    g = rng.uniform(1e-6, 1e-4, (5, 4))
    sol = Crossbar(g, r_wl=1.0, r_bl=2.0, r_driver=3.0, r_sense=4.0).solve(rng.uniform(0.0, 0.2, (3, 5)))
    rec = read_record(sol, 1e-8)
    parts = sum(rec[f"energy_{k}"] for k in ("cell", "wl", "bl", "driver", "sense"))
    np.testing.assert_allclose(parts, rec.energy_source, rtol=RTOL_POWER)
    np.testing.assert_allclose(rec.energy_source, sol.power()["source"].sum(-1) * 1e-8, rtol=1e-14)
    assert rec.energy_source.dims == ("batch",) and rec.latency.attrs["units"] == "s"
    single = read_record(Crossbar(g).solve(np.full(5, 0.1)), 1e-8)
    assert single.energy_source.dims == ()


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="t_read"):
        EnergyModel(t_read=0.0, t_conversion=1e-9, e_conversion=0.0)
    with pytest.raises(InputError, match="i_in"):
        source_power(np.zeros(3), np.zeros(4))
    em = EnergyModel(t_read=1e-8, t_conversion=1e-9, e_conversion=0.0)
    with pytest.raises(InputError, match="v_rows"):
        em.record(np.zeros((2, 3)), np.zeros((2, 4, 5)), 3)
    with pytest.raises(InputError, match="p_sources"):
        em.record(np.full((2, 3), np.nan), np.zeros((2, 3, 5)), 3)
