"""The fused tile read kernel against its NumPy twin (bit for bit), its float32 operands within
their stated rounding bound, its conversions against the ADC's own, and its thread-independence."""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import pytest

from cimphys.circuits.adc import ADC
from cimphys.circuits.dac import shift_add
from cimphys.circuits.sense import ChargeIntegrator, LoadResistor, TIA
from cimphys.circuits.tile_read import BINARY_NOISE, SEPARATE_NOISE, sense_terms, tile_reads, tile_reads_numpy

U32 = 2.0**-24  # unit roundoff of float32


def _operands(rng, nt, nb, m, nc, dtype, drives=1, levels=False):
    shape = (drives, nb, m)
    v = rng.choice([0.0, 0.05, 0.2, -0.1], shape) if levels else (rng.random(shape) < 0.5) * 0.2
    a = rng.uniform(-1e-4, 1e-4, (nt, m, nc)).astype(dtype)  # some outputs clip at a 0.3 V swing
    return v, a


@pytest.mark.parametrize("sense", [
    TIA(r_f=3.9e3, gain=1e4, v_swing=0.3),
    ChargeIntegrator(c_int=1e-12, t_int=1e-8, v_swing=0.3),
    LoadResistor(r_load=2e4, v_swing=0.3),
])
@pytest.mark.parametrize("noise_kind", [None, BINARY_NOISE, SEPARATE_NOISE])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_read_is_its_numpy_twin_bit_for_bit(sense, noise_kind, dtype, rng):
    """Same float64 operations in the same order: identical currents, outputs and clipping,
    with per-channel offsets, cell noise (normals made in the kernel from each tile's key, binary
    or multi-level drives), amplifier noise and outputs beyond the swing, one drive for every
    tile, one per pair of tiles or one per tile, float64 or float32 operands."""
    nt, nb, m, nc = 4, 40, 16, 5
    sense = dataclasses.replace(sense, offset_v=rng.normal(0.0, 2e-3, nt * nc))
    for drives in (1, 2, nt):
        v, a = _operands(rng, nt, nb, m, nc, dtype, drives, levels=noise_kind == SEPARATE_NOISE)
        noise = None if noise_kind is None else (
            noise_kind, rng.uniform(0.0, 1e-12, (nt, m, nc)).astype(dtype),
            rng.uniform(0.0, 1e-12, (nt, m, nc)).astype(dtype) if noise_kind == SEPARATE_NOISE else None,
            rng.uniform(0.0, 1e-13, (nt, nc)))
        keys = rng.integers(0, 2**64, nt, dtype=np.uint64) if noise_kind else None
        sn = rng.normal(0.0, 1e-3, (nb, nt * nc)) if noise_kind else None
        g_src = rng.uniform(0.0, 1e-3, nt * nc)
        got = tile_reads(v, a, noise, keys, sense_terms(sense, g_src, nt * nc), sn)
        want = tile_reads_numpy(v, a, noise, keys, sense, g_src, sn)
        assert got[2].any() and not got[2].all()  # some outputs clip, some do not
        for x, y in zip(got, want):
            np.testing.assert_array_equal(x, y)


def test_given_currents_take_the_noise_and_sense_alike(rng):
    """Currents solved elsewhere (nonlinear cells) go through the same noise and sensing."""
    nt, nb, m, nc = 2, 30, 8, 4
    v, a = _operands(rng, nt, nb, m, nc, np.float64, levels=True)
    noise = (SEPARATE_NOISE, rng.uniform(0, 1e-12, (nt, m, nc)), rng.uniform(0, 1e-12, (nt, m, nc)),
             rng.uniform(0, 1e-13, (nt, nc)))
    keys = rng.integers(0, 2**64, nt, dtype=np.uint64)
    sense, g_src = TIA(r_f=3.9e3, gain=1e4, v_swing=0.3), rng.uniform(0.0, 1e-3, nt * nc)
    i = rng.normal(0.0, 5e-5, (nt, nb, nc))
    got = tile_reads(v, np.zeros((nt, 1, nc)), noise, keys, sense_terms(sense, g_src, nt * nc), currents=i)
    want = tile_reads_numpy(v, a, noise, keys, sense, g_src, currents=i)
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)


def test_float32_operands_within_their_rounding_bound(rng):
    """|i32 - i64| <= (u + M 2**-53) sum |v| |a| (operands rounded to float32, float64 sums;
    Higham eq. 3.5), and far below an ADC LSB: for a full 128-row column of g_max cells, < 1e-7
    of its current."""
    nt, nb, m, c = 4, 50, 128, 127
    v = (rng.random((1, nb, m)) < 0.5) * 0.2  # binary drives, as bit-serial DACs give
    a = rng.uniform(-1e-5, 1e-5, (nt, m, c))
    sense = sense_terms(LoadResistor(r_load=1.0, v_swing=1.0), np.zeros(nt * c), nt * c)
    i64 = tile_reads(v, a, None, None, sense)[0]
    i32 = tile_reads(v, a.astype(np.float32), None, None, sense)[0]
    bound = (U32 + m * 2.0**-53) * np.einsum("bm,tmc->btc", np.abs(v[0]), np.abs(a))
    assert np.all(np.abs(i32 - i64) <= bound)
    full = m * 1e-5 * 0.2
    assert np.max(np.abs(i32 - i64)) < 1e-7 * full
    per = tile_reads(np.repeat(v, nt, axis=0), a, None, None, sense)[0]  # one drive per tile
    np.testing.assert_array_equal(per, i64)
    np.testing.assert_allclose(i64, np.einsum("bm,tmc->btc", v[0], a), rtol=1e-12, atol=1e-22)


@pytest.mark.parametrize("kind, mismatch", [("ideal", 0.0), ("sar", 0.0), ("sar", 0.05)])
def test_fused_conversion_and_shift_add_equal_the_adc_and_shift_add(kind, mismatch, rng):
    """``adc=``: each output's code by the converter's own arithmetic (an ideal converter, a SAR
    of exact binary weights by its closed form, a SAR with capacitor mismatch bit by bit, per
    column converters and ranges), weighted and added per token, equals ``ADC.convert`` of the
    sense outputs shift-added; so does the count of clipped outputs."""
    nt, tokens, phases, m, nc = 3, 7, 4, 16, 6
    v, a = _operands(rng, nt, tokens * phases, m, nc, np.float32)
    noise = (BINARY_NOISE, rng.uniform(0, 1e-12, (nt, m, nc)).astype(np.float32), None,
             rng.uniform(0, 1e-13, (nt, nc)))
    keys = rng.integers(0, 2**64, nt, dtype=np.uint64)
    sense, g_src = TIA(r_f=3.9e3, gain=1e4, v_swing=0.2), rng.uniform(0.0, 1e-3, nt * nc)
    adc = ADC(bits=6, kind=kind, cap_mismatch_sigma=mismatch, gain_error=0.01, offset_lsb=0.3,
              converter_seeds=tuple(range(nt)), column_converter=np.repeat(np.arange(nt), nc))
    adc = adc.with_range(rng.uniform(-0.2, -0.1, nt * nc), rng.uniform(0.1, 0.2, nt * nc))
    assert adc.kernel_terms(nt * nc) is not None
    weights, signs = np.array([1, 2, 4, 8]), np.array([1, 1, -1, -1])
    terms = sense_terms(sense, g_src, nt * nc)
    _, v_sense, sat = tile_reads(v, a, noise, keys, terms)
    want = shift_add(adc.convert(v_sense.reshape(-1, nt * nc)).reshape(phases, tokens, nt, nc), weights, signs)
    got, clipped = tile_reads(v, a, noise, keys, terms, adc=(adc.kernel_terms(nt * nc), signs * weights, tokens))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(clipped, sat.reshape(phases, tokens, -1).sum(axis=(0, 2)))
    assert clipped.any()


def test_noisy_or_flash_converters_are_left_to_convert():
    assert ADC(bits=6, kind="sar", comparator_noise_lsb=0.3).kernel_terms(4) is None
    assert ADC(bits=6, kind="flash", offset_sigma_lsb=0.1).kernel_terms(4) is None
    assert ADC(bits=6, noise_lsb=0.5).kernel_terms(4) is None


def test_the_same_numbers_for_any_number_of_threads(rng):
    """Each tile's sums have one order whatever thread runs them: 1 and 2 threads agree exactly."""
    nt, nb, m, nc = 5, 60, 32, 17
    v, a = _operands(rng, nt, nb, m, nc, np.float32)
    noise = (BINARY_NOISE, rng.uniform(0, 1e-12, (nt, m, nc)).astype(np.float32), None, np.zeros((nt, nc)))
    keys = rng.integers(0, 2**64, nt, dtype=np.uint64)
    sense = sense_terms(TIA(r_f=3.9e3, gain=1e4, v_swing=0.3), np.zeros(nt * nc), nt * nc)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = tile_reads(v, a, noise, keys, sense)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = tile_reads(v, a, noise, keys, sense)
    finally:
        numba.set_num_threads(before)
    for x, y in zip(one, two):
        np.testing.assert_array_equal(x, y)


def test_non_finite_currents_are_refused(rng):
    from cimphys.errors import InputError

    v, a = _operands(rng, 2, 4, 8, 3, np.float64)
    a[1, :, 2] = np.nan
    with pytest.raises(InputError, match="not finite"):
        tile_reads(v, a, None, None, sense_terms(TIA(r_f=3.9e3, gain=1e4, v_swing=0.3), np.zeros(6), 6))


def test_noise_keys_are_the_generators_full_range_integers():
    """A stack draws each tile's key of a call by ``random_raw``: the words of
    ``integers(0, 2**64, dtype=uint64)``, so the noise streams are those drawn before it."""
    g, h = np.random.default_rng(5), np.random.default_rng(5)
    assert [g.bit_generator.random_raw() for _ in range(200)] == \
        [int(h.integers(0, 2**64, dtype=np.uint64)) for _ in range(200)]


def test_operands_of_disagreeing_shapes_are_refused_by_name(rng):
    """The kernel indexes its operands unchecked: tile_reads refuses, by name, drives that do not
    divide the tiles or have other word lines, noise, keys, amplifier terms and converter terms
    of other sizes, and a phase count that does not fit the reads."""
    from cimphys.errors import InputError

    nt, nb, m, nc = 4, 6, 8, 3
    v, a = _operands(rng, nt, nb, m, nc, np.float32)
    sense = sense_terms(TIA(r_f=3.9e3, gain=1e4, v_swing=0.3), np.zeros(nt * nc), nt * nc)
    noise = (BINARY_NOISE, np.zeros((nt, m, nc), np.float32), None, np.zeros((nt, nc)))
    keys = np.zeros(nt, np.uint64)
    adc = ADC(bits=6, kind="sar").with_range(-0.2, 0.2)
    bad = {
        "v:": dict(v=np.repeat(v, 3, axis=0)),
        "a:": dict(v=v[:, :, :-1]),
        "noise shot": dict(noise=(BINARY_NOISE, np.zeros((nt, m + 1, nc), np.float32), None, np.zeros((nt, nc)))),
        "keys": dict(keys=keys[:-1]),
        "sense offset": dict(sense=sense._replace(offset=sense.offset[:-1])),
        "adc:": dict(adc=(adc.kernel_terms(nt * nc), np.array([1, 2, 4]), 4)),
        "adc lo": dict(adc=(adc.kernel_terms(nt * nc - 1), np.array([1, 2]), 3)),
    }
    for name, change in bad.items():
        args = {"v": v, "noise": noise, "keys": keys, "sense": sense, **change}
        with pytest.raises(InputError, match=name):
            tile_reads(args["v"], a, args["noise"], args["keys"], args["sense"], adc=args.get("adc"))
