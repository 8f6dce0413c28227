"""Invariants of the periphery: input slicing round-trips, ADC codes are monotone and bounded."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cimphys.circuits.adc import ADC
from cimphys.circuits.dac import shift_add, slice_inputs


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 16), dac_bits=st.integers(1, 4), signed=st.booleans(), data=st.data())
def test_slice_then_shift_add_is_identity(bits, dac_bits, signed, data):
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    x = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=20)))
    digits, weights, signs = slice_inputs(x, bits, dac_bits, signed)
    assert digits.min() >= 0 and digits.max() < 2**dac_bits
    np.testing.assert_array_equal(shift_add(digits, weights, signs), x)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 10), kind=st.sampled_from(["ideal", "flash", "ramp", "sar"]),
       seed=st.integers(0, 1000), xs=st.lists(st.floats(-2.0, 3.0), min_size=2, max_size=50))
def test_codes_are_bounded_and_monotone(bits, kind, seed, xs):
    # A flash ADC with sorted thresholds, a monotone ramp and a SAR whose DAC is monotone
    # (mismatch far below 1 LSB) all give non-decreasing codes.
    adc = ADC(bits=bits, kind=kind, seed=seed, offset_sigma_lsb=0.3, cap_mismatch_sigma=1e-4,
              ramp_rc_s=1e-7, f_clk_hz=1e9).with_range(-0.5, 1.5)
    x = np.sort(np.array(xs))
    codes = adc.convert(x)
    assert codes.min() >= 0 and codes.max() <= 2**bits - 1
    assert np.all(np.diff(codes) >= 0)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 12), x=st.floats(0.0, 1.0))
def test_ideal_reconstruction_within_half_an_lsb(bits, x):
    adc = ADC(bits=bits).with_range(0.0, 1.0)
    err = abs(float(adc.codes_to_input(adc.convert(x))) - x)
    assert err <= 0.5 * float(adc.lsb[0]) * (1 + 1e-12)
