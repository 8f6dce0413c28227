"""DAC levels, settling, input slicing, shift-add and pulse-width encoding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cimphys.circuits.dac import DAC, pulse_width_charge, shift_add, slice_inputs
from cimphys.errors import InputError

# Levels are sums of a handful of float64 terms: exact to a few ulps.
RTOL_LEVEL = 1e-13
# Pulse-width charge vs the closed form t_unit * v_read * x @ G: sums of <= 2**bits products.
RTOL_CHARGE = 1e-12


def test_ideal_levels_and_settling():
    dac = DAC(bits=3, v_max=0.7)
    np.testing.assert_allclose(dac.convert(np.arange(8)), 0.1 * np.arange(8), rtol=RTOL_LEVEL, atol=1e-16)
    slow = DAC(bits=3, v_max=0.7, tau=2e-9, t_read=4e-9)
    np.testing.assert_allclose(slow.levels, dac.levels * (1.0 - math.exp(-2.0)), rtol=RTOL_LEVEL)


def test_mismatch_is_binary_weighted_and_seeded():
    sigma, seed = 0.05, 12
    dac = DAC(bits=4, v_max=1.5, mismatch_sigma=sigma, seed=seed)
    w = 2.0 ** np.arange(4)
    e = np.random.default_rng(seed).normal(0.0, 1.0, 4) * sigma / np.sqrt(w)
    naive = [sum(((d >> k) & 1) * w[k] * (1 + e[k]) for k in range(4)) * 0.1 for d in range(16)]
    np.testing.assert_allclose(dac.levels, naive, rtol=RTOL_LEVEL)
    np.testing.assert_array_equal(DAC(bits=4, v_max=1.5, mismatch_sigma=sigma, seed=seed).levels, dac.levels)
    inl = np.linspace(-0.3, 0.3, 16)
    with_inl = DAC(bits=4, v_max=1.5, inl_lsb=inl)
    np.testing.assert_allclose(with_inl.levels, 0.1 * (np.arange(16) + inl), rtol=RTOL_LEVEL)


@pytest.mark.parametrize("dac_bits,signed", [(1, False), (2, False), (3, True), (1, True)])
def test_slice_and_shift_add_round_trip(dac_bits, signed, rng):
    bits = 8
    lo, hi = (-128, 127) if signed else (0, 255)
    x = rng.integers(lo, hi + 1, (5, 7))
    x[0, :2] = [lo, hi]
    digits, weights, signs = slice_inputs(x, bits, dac_bits, signed)
    assert digits.min() >= 0 and digits.max() < 2**dac_bits
    assert digits.shape[0] == (2 if signed else 1) * math.ceil(bits / dac_bits)
    np.testing.assert_array_equal(shift_add(digits, weights, signs), x)


def test_pulse_width_charge_is_superposition_for_linear_cells(rng):
    g = rng.uniform(1e-6, 1e-4, (6, 4))
    x = rng.integers(0, 16, (3, 6))
    q = pulse_width_charge(lambda v: v @ g, x, 0.2, 1e-9, 4)
    np.testing.assert_allclose(q, 1e-9 * 0.2 * x @ g, rtol=RTOL_CHARGE)


def test_pulse_width_charge_is_exact_for_a_nonlinear_current():
    # i = sum_rows v^2 (a nonlinear, separable stand-in): each row contributes x * t * v^2.
    x = np.array([[3, 0, 5]])
    q = pulse_width_charge(lambda v: (v**2).sum(axis=1, keepdims=True), x, 0.5, 2e-9, 3)
    assert q[0, 0] == pytest.approx(2e-9 * 0.25 * 8)


def test_inl_table_from_card_parameters():
    dac = DAC.from_parameters({"bits": 2, "inl_lsb": (0.0, 0.1, -0.2, 0.0), "tau_s": 1e-9}, v_max=0.3, t_read=3e-9)
    np.testing.assert_allclose(dac.levels, 0.1 * np.array([0.0, 1.1, 1.8, 3.0]) * (1 - math.exp(-3.0)), rtol=RTOL_LEVEL)
    with pytest.raises(InputError, match="inl_lsb"):
        DAC.from_parameters({"bits": 2, "inl_lsb": (0.1, 0.2)}, v_max=0.3, t_read=1e-8)


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="x_int"):
        slice_inputs(np.array([256]), 8)
    with pytest.raises(InputError, match="x_int"):
        slice_inputs(np.array([-1]), 8)
    with pytest.raises(InputError, match="x_int"):
        slice_inputs(np.array([0.5]), 8)
    with pytest.raises(InputError, match="codes"):
        DAC(bits=2).convert([4])
    with pytest.raises(InputError, match="v_max"):
        DAC(v_max=np.nan)
    with pytest.raises(InputError, match="bits"):
        DAC(bits=0)


def test_each_word_line_driver_has_its_own_mismatch(rng):
    """With ``drivers = M`` every word line's DAC draws its own element errors (row r of the draw),
    converts its own row's digit, and a seed repeats them; without mismatch they are one row."""
    sigma, seed = 0.05, 3
    dac = DAC(bits=2, v_max=0.3, mismatch_sigma=sigma, seed=seed, drivers=5)
    assert dac.levels.shape == (5, 4) and not dac.identical
    w = 2.0 ** np.arange(2)
    e = np.random.default_rng(seed).normal(0.0, 1.0, (5, 2)) * sigma / np.sqrt(w)
    naive = np.array([[sum(((d >> k) & 1) * w[k] * (1 + e[r, k]) for k in range(2)) * 0.1 for d in range(4)]
                      for r in range(5)])
    np.testing.assert_allclose(dac.levels, naive, rtol=RTOL_LEVEL)
    codes = rng.integers(0, 4, (7, 5))
    np.testing.assert_allclose(dac.convert(codes), naive[np.arange(5), codes], rtol=RTOL_LEVEL)
    assert DAC(bits=2, v_max=0.3, drivers=5).identical
    with pytest.raises(InputError, match="word lines"):
        dac.convert(codes[:, :4])
    with pytest.raises(InputError, match="drivers"):
        DAC(bits=2, drivers=0)
