"""ADC transfer functions against scalar naive twins, and the IEEE 1241 characterisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cimphys.circuits.adc import ADC, quantise_uniform
from cimphys.circuits.characterise import characterise, coherent_cycles
from cimphys.errors import InputError

# Kernels and twins do the same float64 arithmetic in the same order: codes agree exactly.
# ENOB of an ideal quantiser from a coherent sine fit: the brief's bound.
ENOB_TOL = 0.05


def hist_tol(bits: int, n: int) -> float:
    """Histogram-test tolerance (LSB): the n-point phase grid resolves a transition level to
    about pi * A / n with A = 2**(bits-1) LSB; DNL differences two levels; x10 margin for the
    end-point gain normalisation and for levels that fall between grid points."""
    return 10.0 * math.pi * 2 ** (bits - 1) / n


# 6-bit, 2**18-sample histogram tests (hist_tol = 3.8e-3 LSB).
DNL_TOL = hist_tol(6, 1 << 18)


# ----------------------------------------------------------------- naive twins (scalar loops)
def naive_codes(adc: ADC, x, noise=None, cmp_noise=None):
    x2 = np.atleast_2d(np.asarray(x, dtype=float).T).T if np.ndim(x) < 2 else np.asarray(x, float)
    lo = np.broadcast_to(adc.lo, (x2.shape[1],))
    lsb = np.broadcast_to(adc.lsb, (x2.shape[1],))
    out = np.zeros(x2.shape, dtype=np.int64)
    which = np.zeros(x2.shape[1], dtype=int) if adc.column_converter is None else adc.column_converter
    for r in range(x2.shape[0]):
        for c in range(x2.shape[1]):
            static = None if adc._static is None else adc._static[which[c]]
            u = (x2[r, c] - lo[c]) * (1.0 / lsb[c]) * (1.0 + adc.gain_error) + adc.offset_lsb
            if noise is not None:
                u += noise[r, c]
            if adc.kind == "ideal":
                out[r, c] = min(max(math.floor(u + 0.5), 0), adc.levels - 1)
            elif adc.kind == "sar":
                level, code = 0.0, 0
                for j, k in enumerate(range(adc.bits - 1, -1, -1)):
                    trial = level + static[k]
                    d = u + 0.5 - trial + (cmp_noise[r, c, j] if cmp_noise is not None else 0.0)
                    if d >= 0.0:
                        code, level = code + (1 << k), trial
                out[r, c] = code
            else:
                out[r, c] = sum(1 for t in static if t <= u)
    return out.reshape(np.shape(x))


@pytest.mark.parametrize(
    "kw",
    [
        dict(bits=4),
        dict(bits=5, gain_error=0.03, offset_lsb=-0.7),
        dict(bits=5, kind="flash", offset_sigma_lsb=0.4, seed=3),
        dict(bits=6, kind="sar", cap_mismatch_sigma=0.05, seed=5),
        dict(bits=5, kind="ramp", ramp_rc_s=4e-8, f_clk_hz=1e9),
    ],
)
def test_kernels_match_naive_twin(kw, rng):
    adc = ADC(**kw).with_range([-0.1, 0.0, 0.2], [0.9, 2.0, 0.25])
    x = rng.uniform(-0.5, 2.5, (200, 3))
    x[0] = adc.lo  # edges: exactly lo, exactly hi, exactly on an ideal transition
    x[1] = adc.hi
    x[2] = adc.lo + 2.5 * adc.lsb
    np.testing.assert_array_equal(adc.convert(x), naive_codes(adc, x))


@pytest.mark.parametrize("kw", [dict(kind="flash", offset_sigma_lsb=0.4), dict(kind="sar", cap_mismatch_sigma=0.05)])
def test_each_converter_has_its_own_mismatch(kw, rng):
    """Column ADCs draw their mismatch one by one: converters differ, a seed repeats them, and
    columns multiplexed onto one converter share its transfer (the naive twin per column)."""
    seeds = ((4, 0), (4, 1), (4, 2))
    adc = ADC(bits=5, converter_seeds=seeds, column_converter=[0, 0, 1, 2], **kw).with_range(0.0, 1.0)
    t = adc.transition_levels
    assert t.shape == (3, 31)
    assert not np.array_equal(t[0], t[1]) and not np.array_equal(t[1], t[2])
    again = ADC(bits=5, converter_seeds=seeds, **kw)
    np.testing.assert_array_equal(again.transition_levels, t)
    alone = ADC(bits=5, converter_seeds=(seeds[1],), **kw)
    np.testing.assert_array_equal(alone.transition_levels, t[1])
    x = rng.uniform(-0.1, 1.1, (300, 4))
    np.testing.assert_array_equal(adc.convert(x), naive_codes(adc, x))
    with pytest.raises(InputError, match="column_converter"):
        ADC(bits=5, converter_seeds=seeds, column_converter=[0, 3], **kw)


def test_noisy_kernels_match_twin_and_are_seeded(rng):
    adc = ADC(bits=6, kind="sar", comparator_noise_lsb=0.4, noise_lsb=0.3, cap_mismatch_sigma=0.02)
    x = rng.uniform(0.0, 1.0, (50, 2))
    gen = np.random.default_rng(7)
    noise = gen.normal(0.0, 0.3, x.shape)
    cmp = gen.normal(0.0, 0.4, (*x.shape, 6))
    np.testing.assert_array_equal(adc.convert(x, rng=7), naive_codes(adc, x, noise, cmp))
    np.testing.assert_array_equal(adc.convert(x, rng=7), adc.convert(x, rng=7))
    with pytest.raises(InputError, match="rng"):
        adc.convert(x)
    ideal = ADC(bits=6, noise_lsb=0.3)
    noise = np.random.default_rng(8).normal(0.0, 0.3, x.shape)
    np.testing.assert_array_equal(ideal.convert(x, rng=8), naive_codes(ideal, x, noise))


def test_uniform_is_the_floor_clip_expression(rng):
    x = rng.normal(0.5, 0.4, 10_000)
    expected = np.clip(np.floor((x - 0.0) / (1.0 / 255) + 0.5), 0, 255)
    np.testing.assert_array_equal(quantise_uniform(x, 0.0, 1.0 / 255, 8), expected)


def test_ideal_ramp_and_sar_equal_the_ideal_quantiser(rng):
    x = rng.uniform(-0.2, 1.2, 5000)
    ideal = ADC(bits=7).convert(x)
    np.testing.assert_array_equal(ADC(bits=7, kind="ramp").convert(x), ideal)
    np.testing.assert_array_equal(ADC(bits=7, kind="sar").convert(x), ideal)
    np.testing.assert_array_equal(ADC(bits=7, kind="flash").convert(x), ideal)


@pytest.mark.parametrize("bits", [6, 8, 10])
def test_ideal_enob_is_n(bits):
    ds = characterise(ADC(bits=bits), n_samples=1 << 17, seed=1)
    assert abs(float(ds.enob) - bits) <= ENOB_TOL
    assert abs(float(ds.sndr) - (6.02 * bits + 1.76)) <= 6.02 * ENOB_TOL + 0.1  # 0.1 dB: 0.99 FS amplitude
    tol = hist_tol(bits, 1 << 17)
    assert float(ds.max_abs_dnl) < tol and float(ds.max_abs_inl) < tol
    assert ds.dnl.attrs["units"] == "LSB" and ds.enob.attrs["units"] == "bit"


def test_thermal_noise_lowers_enob_as_predicted():
    # NAD^2 = (1/12 + sigma^2) LSB^2  ->  ENOB = N - log2(1 + 12 sigma^2) / 2 = N - 1 at sigma = 1/2.
    ds = characterise(ADC(bits=8, noise_lsb=0.5), n_samples=1 << 17, seed=2)
    assert abs(float(ds.enob) - 7.0) <= ENOB_TOL


@pytest.mark.parametrize("kw", [dict(kind="flash", offset_sigma_lsb=0.25, seed=11),
                                dict(kind="sar", cap_mismatch_sigma=0.03, seed=4)])
def test_measured_dnl_matches_the_mismatch_put_in(kw):
    adc = ADC(bits=6, **kw)
    ds = characterise(adc, n_samples=1 << 18, seed=3)
    t = adc.transition_levels
    q = (t[-1] - t[0]) / (adc.levels - 2)
    np.testing.assert_allclose(ds.dnl.values, np.diff(t) / q - 1.0, atol=DNL_TOL)
    np.testing.assert_allclose(ds.inl.values, (t - t[0]) / q - np.arange(t.size), atol=DNL_TOL)
    assert float(ds.max_abs_dnl) > 5 * DNL_TOL  # the mismatch is visible, not lost in the test


def test_flash_thresholds_are_the_offsets_put_in():
    adc = ADC(bits=5, kind="flash", offset_sigma_lsb=0.2, seed=9)
    offsets = np.random.default_rng(9).normal(0.0, 0.2, 31)
    np.testing.assert_allclose(adc.transition_levels, np.sort(np.arange(1, 32) - 0.5 + offsets))


def test_ramp_rc_compresses_the_top_codes():
    adc = ADC(bits=8, kind="ramp", ramp_rc_s=1e-6, f_clk_hz=1e9)
    t = adc.transition_levels
    assert np.all(np.diff(t) > 0) and np.all(np.diff(t, 2) < 0)
    assert adc.conversion_time == pytest.approx(256e-9)


def test_calibration_minmax_and_percentile(rng):
    x = rng.normal([0.0, 5.0], [1.0, 0.1], (4000, 2))
    cal = ADC(bits=8).calibrate(x)
    codes = cal.convert(x)
    assert codes.min(axis=0).tolist() == [0, 0] and codes.max(axis=0).tolist() == [255, 255]
    np.testing.assert_allclose(cal.lo, x.min(axis=0))
    glob = ADC(bits=8).calibrate(x, per_column=False)
    assert glob.lo.size == 1 and glob.hi[0] == x.max()
    pct = ADC(bits=8).calibrate(x, method="percentile", percentile=99.0)
    np.testing.assert_allclose(pct.hi, np.percentile(x, 99.0, axis=0))
    np.testing.assert_allclose(cal.codes_to_input(codes), x, atol=cal.lsb.max() / 2 + 1e-12)


def test_gain_and_offset_errors_shift_codes():
    x = np.linspace(0.0, 0.5, 11)
    base = ADC(bits=8).convert(x)
    np.testing.assert_array_equal(ADC(bits=8, offset_lsb=3.0).convert(x), np.minimum(base + 3, 255))
    np.testing.assert_array_equal(ADC(bits=8, gain_error=0.5).convert(x), np.floor(x * 255 * 1.5 + 0.5))


def test_energy_per_conversion():
    assert ADC(bits=8, fom_walden_j=1e-15).energy_per_conversion() == pytest.approx(256e-15)
    e = ADC(bits=8, fom_schreier_db=170.0, sample_rate_hz=1e9).energy_per_conversion()
    assert e == pytest.approx(0.5 * 10 ** ((6.02 * 8 + 1.76 - 170.0) / 10.0))
    assert ADC(bits=8, power_w=2e-3, sample_rate_hz=1e9).energy_per_conversion() == pytest.approx(2e-12)


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="bits"):
        ADC(bits=0)
    with pytest.raises(InputError, match="kind"):
        ADC(bits=4, kind="pipeline")
    with pytest.raises(InputError, match="hi"):
        ADC(bits=4).with_range(1.0, 1.0)
    for kind in ("ideal", "flash", "sar"):
        with pytest.raises(InputError, match="finite"):
            ADC(bits=4, kind=kind).convert([0.1, np.nan])
        with pytest.raises(InputError, match="finite"):
            ADC(bits=4, kind=kind).convert([[np.inf]])
    with pytest.raises(InputError, match="x"):
        ADC(bits=4).convert(np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="columns"):
        ADC(bits=4).with_range([0, 0], [1, 1]).convert(np.zeros((3, 3)))
    with pytest.raises(InputError, match="n_samples"):
        characterise(ADC(bits=8), n_samples=1000)


def test_coherent_cycles_are_coprime():
    assert math.gcd(coherent_cycles(1 << 16, 1000), 1 << 16) == 1


def test_cli_adc_prints_and_writes(tmp_path, capsys):
    from cimphys import results
    from cimphys.cli import main

    out = tmp_path / "adc"
    assert main(["adc", "isaac_128x128", "--samples", "32768", "--set", "kind=flash", "--set",
                 "offset_sigma_lsb=0.2", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ENOB" in text and "SNDR" in text and "INL" in text and "DNL" in text
    ds = results.open(out / "adc_characterisation.nc")
    assert ds.attrs["kind"] == "flash" and 6.5 < float(ds.enob) < 8.05
    assert (out / "adc_inl_dnl.png").stat().st_size > 1000
    assert main(["adc", "isaac_128x128", "--set", "bogus=1"]) == 1
