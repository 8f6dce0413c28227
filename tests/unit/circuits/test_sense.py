"""Sense amplifiers: closed-form op-amp algebra, integrator charge, comparator offsets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cimphys.circuits.sense import TIA, ChargeIntegrator, LatchComparator, LoadResistor, sense_from_parameters
from cimphys.errors import InputError

# Closed forms evaluated two ways in float64.
RTOL = 1e-12


def solve_opamp_node(i_sc, g_s, r_f, a, v_os):
    """Naive twin: KCL at the inverting node and v_o = A (v_os - v_-) as a 2x2 linear system."""
    # unknowns (v_minus, v_o):  g_s v_- + (v_- - v_o)/R_f = i_sc ;  A v_- + v_o = A v_os
    m = np.array([[g_s + 1.0 / r_f, -1.0 / r_f], [a, 1.0]])
    return np.linalg.solve(m, [i_sc, a * v_os])


@pytest.mark.parametrize("gain", [10.0, 1e3, 1e6])
def test_tia_matches_the_opamp_equations(gain):
    r_f, g_s, i_sc, v_os = 2e4, 3e-4, 5e-6, 1.5e-3
    v_minus, v_o = solve_opamp_node(i_sc, g_s, r_f, gain, v_os)
    tia = TIA(r_f=r_f, gain=gain, offset_v=v_os)
    # The array solve (with r_sense = R_f/(1+A), no offset) delivers i_out = i_sc - g_s v_- ;
    # the offset enters by superposition through the noise gain.
    v0_minus, _ = solve_opamp_node(i_sc, g_s, r_f, gain, 0.0)
    i_out = i_sc - g_s * v0_minus
    assert v0_minus / i_out == pytest.approx(tia.r_sense, rel=RTOL)
    v, sat = tia.output(i_out, g_source=g_s)
    assert not sat
    assert v == pytest.approx(-v_o, rel=RTOL)


def test_tia_saturates_and_noise_is_seeded():
    tia = TIA(r_f=1e4, gain=1e4, v_swing=0.5, noise_v_rms=1e-3)
    v, sat = tia.output([1e-5, 1e-4, -1e-4], rng=3)
    assert sat.tolist() == [False, True, True] and v[1] == 0.5 and v[2] == -0.5
    np.testing.assert_array_equal(tia.output(np.full(1000, 1e-5), rng=4)[0], tia.output(np.full(1000, 1e-5), rng=4)[0])
    spread = np.std(tia.output(np.full(20000, 1e-5), rng=5)[0])
    assert spread == pytest.approx(1e-3 * tia.noise_gain(0.0), rel=0.03)  # 3%: sampling error of 2e4 draws
    with pytest.raises(InputError, match="rng"):
        tia.output([1e-5])


def test_integrator_with_and_without_leakage():
    c, t, r = 1e-12, 1e-8, 2e4
    assert ChargeIntegrator(c_int=c, t_int=t).output(2e-5)[0] == pytest.approx(2e-5 * t / c, rel=RTOL)
    leaky = ChargeIntegrator(c_int=c, t_int=t, r_leak=r, v_swing=10.0)
    assert leaky.output(2e-5)[0] == pytest.approx(2e-5 * r * (1 - math.exp(-t / (r * c))), rel=RTOL)
    v, sat = ChargeIntegrator(c_int=c, t_int=t, v_swing=0.1).output(2e-5)
    assert sat and v == 0.1
    assert ChargeIntegrator(c_int=c).output_from_charge(5e-14)[0] == pytest.approx(0.05, rel=RTOL)
    with pytest.raises(InputError, match="r_leak"):
        leaky.output_from_charge(1e-14)


def test_load_resistor_is_r_sense():
    load = LoadResistor(r_load=500.0)
    assert load.r_sense == 500.0 and load.output(1e-4)[0] == pytest.approx(0.05)


def test_latch_comparator_offsets():
    comp = LatchComparator(i_ref=1e-6, offset_sigma=1e-7, columns=4, seed=8)
    np.testing.assert_array_equal(comp.offsets, np.random.default_rng(8).normal(0.0, 1e-7, 4))
    i = 1e-6 + comp.offsets
    np.testing.assert_array_equal(comp.decide(i + 1e-12), True)
    np.testing.assert_array_equal(comp.decide(i - 1e-12), False)
    with pytest.raises(InputError, match="i_out"):
        comp.decide(np.zeros(3))


def test_sense_from_parameters_draws_offsets():
    tia = sense_from_parameters({"kind": "tia", "offset_sigma_v": 1e-3, "seed": 2}, columns=5)
    np.testing.assert_array_equal(tia.offset_v, np.random.default_rng(2).normal(0.0, 1e-3, 5))
    assert isinstance(sense_from_parameters({"kind": "load"}, 5), LoadResistor)
    with pytest.raises(InputError, match="gain"):
        TIA(gain=0.5)
