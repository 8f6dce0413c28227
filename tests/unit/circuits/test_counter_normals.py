"""Counter-based normals of the tile read: SplitMix64 against its reference outputs, the
kernel against its NumPy twin bit for bit, and the draws against the standard normal."""

from __future__ import annotations

import math

import numpy as np

from cimphys.circuits.counter_normals import R, ZIGGURAT, counter_normals, counter_normals_kernel, splitmix64

U = np.uint64


def test_splitmix64_reference_outputs():
    """The words are SplitMix64's: its first five outputs for seed 1234567 (the reference
    sequence of splitmix64.c, as Rosetta Code lists it) are mix(seed + i gamma), i = 1..5."""
    want = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
            16408922859458223821]
    got = [int(splitmix64(U((1234567 + i * 0x9E3779B97F4A7C15) % 2**64))) for i in range(1, 6)]
    assert got == want


def _draws(key, batch, channels):
    return counter_normals_kernel(U(key), batch, channels, *ZIGGURAT)


def test_kernel_is_its_numpy_twin_bit_for_bit():
    """Same words, same ziggurat steps: identical normals, including the ~1 % that take the
    wedge or the tail (beyond R) path, for a key whose high word is set."""
    key = 0xF00DFACE12345678
    z = _draws(key, 300, 200)
    assert (np.abs(z) > R).sum() > 0  # the tail path ran
    np.testing.assert_array_equal(z, counter_normals(key, 300, 200))


def test_draws_are_standard_normal():
    """4e5 draws of one key.  Kolmogorov-Smirnov distance to the normal CDF below the 0.1 %
    critical value 1.949 / sqrt(n); mean and variance within 4 standard errors (1/sqrt(n) and
    sqrt(2/n)); the tail beyond R (the ziggurat's separate branch) holds its share 2 Q(R) =
    2.6e-4 of the draws within 4.5 Poisson standard deviations."""
    z = _draws(20261207, 2000, 200).ravel()
    n = z.size
    x = np.sort(z)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    d = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert d < 1.949 / math.sqrt(n)
    assert abs(z.mean()) < 4.0 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 4.0 * math.sqrt(2.0 / n)
    expected = n * math.erfc(R / math.sqrt(2.0))
    assert abs((np.abs(z) > R).sum() - expected) < 4.5 * math.sqrt(expected)


def test_streams_do_not_correlate():
    """Neighbouring channels, neighbouring reads and two keys: correlation coefficients within
    4 standard errors (1/sqrt(n)) of zero; the same key repeats its draws exactly."""
    a, b = _draws(7, 1000, 128), _draws(8, 1000, 128)
    for u, v in ((a[:, :-1], a[:, 1:]), (a[:-1], a[1:]), (a, b)):
        r = np.corrcoef(u.ravel(), v.ravel())[0, 1]
        assert abs(r) < 4.0 / math.sqrt(u.size)
    np.testing.assert_array_equal(a, _draws(7, 1000, 128))
