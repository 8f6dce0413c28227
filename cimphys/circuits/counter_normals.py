"""Standard normals addressed by a counter: SplitMix64 words turned into normals by a ziggurat.

A tile read needs one standard normal per read and channel for the cells' current noise.
Drawn from a stateful generator they must be made in order and stored, one array per read;
here the normal of read ``b`` and channel ``c`` is a pure function of ``(key, b, c)``, so the read
kernel computes it where it uses it, in any thread, and no normal array exists.

**Words.**  Word ``n`` of the stream of ``(b, c)`` is output number ``i = b 2**32 + c 2**8 + n + 1``
of SplitMix64 seeded with the tile's 64-bit ``key``: ``mix(key + i gamma)`` with the golden-ratio
increment ``gamma`` and Stafford's "Mix13" finaliser (Steele, Lea and Flood, "Fast splittable
pseudorandom number generators", OOPSLA 2014; the generator passes BigCrush).  The counter is
multiplied by an odd constant, so distinct ``(b, c, n)`` give distinct states and, ``mix`` being a
bijection, distinct words; checked against the reference outputs of SplitMix64.  Limits: reads
``b < 2**32``, channels ``c < 2**24``, and ``n < 256`` words per stream (a stream that needs more
has probability below 1e-150).

**Normals.**  The ziggurat of Marsaglia and Tsang ("The ziggurat method for generating random
variables", J. Stat. Softw. 5(8), 2000) with 256 layers over ``f(x) = exp(-x**2/2)``: one word
gives a layer (8 bits), a sign (1 bit) and a 52-bit position; about 99 % of draws are accepted
at once, the rest take further words of the same stream (the wedge test, or Marsaglia's 1964
method for the tail beyond ``R``).  The method is exact up to the 52-bit positions; the draws
are tested against the normal CDF (Kolmogorov-Smirnov), for their moments, tail share and
correlations in ``tests/unit/circuits/test_counter_normals.py``.

:func:`normal_at` is the Numba device function the read kernel calls; :func:`counter_normals`
is its NumPy twin (the words and the accepted fast path vectorised, the rare rest by the same
scalar steps), equal to it bit for bit (tested).
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit

__all__ = ["ZIGGURAT", "counter_normals", "counter_normals_kernel", "normal_at", "splitmix64"]

_M64 = 0xFFFFFFFFFFFFFFFF
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment: 2**64 / golden ratio, odd
_MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)  # Stafford's Mix13 multipliers

#: Right edge of the ziggurat's base layer for 256 layers (Marsaglia and Tsang 2000).
R = 3.6541528853610088


def _tables(layers: int = 256):
    """``(ki, wi, fi)``: acceptance thresholds (uint64, 52-bit positions), position scales and
    ``f`` at the layer edges, from ``R`` and the common layer area ``V`` (base strip plus tail)."""
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    v = R * f(R) + math.sqrt(math.pi / 2.0) * math.erfc(R / math.sqrt(2.0))
    x = np.zeros(layers + 1)
    x[0], x[1] = v / f(R), R  # x[0]: width of the base strip that has the tail's area
    for i in range(1, layers - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(v / x[i] + f(x[i])))
    scale = 2.0**52
    ki = np.array([int(scale * x[i + 1] / x[i]) for i in range(layers)], dtype=np.uint64)
    return ki, x[:layers] / scale, np.array([f(e) for e in x])  # fi[layers] = f(0) = 1


#: ``(ki, wi, fi)`` of the 256-layer ziggurat.
ZIGGURAT = _tables()


@jit(inline="always")
def splitmix64(state):
    """SplitMix64's output function (Stafford's Mix13) of a 64-bit ``state`` (uint64)."""
    z = (state ^ (state >> np.uint64(30))) * np.uint64(_MIX[0])
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX[1])
    return z ^ (z >> np.uint64(31))


@jit(inline="always")
def _word(b, c, n, key):
    """Word ``n`` of the stream of read ``b``, channel ``c`` (uint64 each) under ``key``."""
    i = (b << np.uint64(32)) | (c << np.uint64(8)) | np.uint64(n)
    return splitmix64(key + (i + np.uint64(1)) * np.uint64(_GAMMA))


@jit(inline="always")
def _uniform(w):
    """``[0, 1)`` from the top 53 bits of a word."""
    return np.float64(w >> np.uint64(11)) * 2.0**-53


@jit
def _normal_slow(r, b, c, key, ki, wi, fi):
    """The normal of a stream whose first word ``r`` was not accepted at once: the wedge or tail
    test, then further words until one is accepted."""
    n = 1
    while True:
        i = np.int64(r & np.uint64(0xFF))
        neg = (r >> np.uint64(8)) & np.uint64(1)
        pos = (r >> np.uint64(9)) & np.uint64(0xFFFFFFFFFFFFF)
        x = np.float64(pos) * wi[i]
        if pos < ki[i]:
            return -x if neg else x
        if i == 0:  # the tail beyond R (Marsaglia 1964)
            while True:
                t = -math.log(1.0 - _uniform(_word(b, c, n, key))) / R
                y = -math.log(1.0 - _uniform(_word(b, c, n + 1, key)))
                n += 2
                if y + y > t * t:
                    return -(R + t) if neg else R + t
        u = _uniform(_word(b, c, n, key))
        n += 1
        if fi[i] + u * (fi[i + 1] - fi[i]) < math.exp(-0.5 * x * x):
            return -x if neg else x
        r = _word(b, c, n, key)
        n += 1


@jit(inline="always")
def normal_at(b, c, key, ki, wi, fi):
    """The standard normal of read ``b`` and channel ``c`` under the 64-bit ``key`` (uint64), from
    the ziggurat tables ``ZIGGURAT``."""
    b, c = np.uint64(b), np.uint64(c)
    r = _word(b, c, 0, key)
    i = r & np.uint64(0xFF)
    pos = (r >> np.uint64(9)) & np.uint64(0xFFFFFFFFFFFFF)
    if pos < ki[i]:
        x = np.float64(pos) * wi[i]
        return -x if (r >> np.uint64(8)) & np.uint64(1) else x
    return _normal_slow(r, b, c, key, ki, wi, fi)


@jit
def counter_normals_kernel(key, batch, channels, ki, wi, fi):
    """``(batch, channels)`` normals of ``key`` (uint64) by :func:`normal_at`."""
    out = np.empty((batch, channels))
    for b in range(batch):
        for c in range(channels):
            out[b, c] = normal_at(b, c, key, ki, wi, fi)
    return out


def _words_numpy(b, c, n: int, key: int) -> np.ndarray:
    """Vectorised :func:`_word` on uint64 arrays ``b``, ``c`` (NumPy's uint64 products wrap)."""
    i = (b << np.uint64(32)) | (c << np.uint64(8)) | np.uint64(n)
    z = np.uint64(key) + (i + np.uint64(1)) * np.uint64(_GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX[0])
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX[1])
    return z ^ (z >> np.uint64(31))


def counter_normals(key, batch: int, channels: int) -> np.ndarray:
    """NumPy twin of the read kernel's normals: ``(batch, channels)`` for the 64-bit ``key``.

    The first word of every stream and the draws it accepts are computed as arrays; the few
    streams that need the wedge or tail test (about 1 %) run the same scalar steps as the
    kernel (:func:`_slow_numpy`)."""
    ki, wi, fi = ZIGGURAT
    b, c = np.meshgrid(np.arange(batch, dtype=np.uint64), np.arange(channels, dtype=np.uint64), indexing="ij")
    r = _words_numpy(b, c, 0, int(key))
    i = (r & np.uint64(0xFF)).astype(np.intp)
    pos = (r >> np.uint64(9)) & np.uint64(0xFFFFFFFFFFFFF)
    x = pos.astype(np.float64) * wi[i]
    out = np.where((r >> np.uint64(8)) & np.uint64(1), -x, x)
    for bi, ci in zip(*np.nonzero(pos >= ki[i])):
        out[bi, ci] = _slow_numpy(int(r[bi, ci]), int(bi), int(ci), int(key))
    return out


def _slow_numpy(r: int, b: int, c: int, key: int) -> float:
    """Twin of :func:`_normal_slow` for one stream, in Python integers and floats."""
    ki, wi, fi = ZIGGURAT

    def word(n):
        z = (key + (((b << 32) | (c << 8) | n) + 1) * _GAMMA) & _M64
        z = ((z ^ (z >> 30)) * _MIX[0]) & _M64
        z = ((z ^ (z >> 27)) * _MIX[1]) & _M64
        return z ^ (z >> 31)

    def uniform(w):
        return float(w >> 11) * 2.0**-53

    n = 1
    while True:
        i, neg, pos = r & 0xFF, (r >> 8) & 1, (r >> 9) & 0xFFFFFFFFFFFFF
        x = float(pos) * wi[i]
        if pos < int(ki[i]):
            return -x if neg else x
        if i == 0:
            while True:
                t = -math.log(1.0 - uniform(word(n))) / R
                y = -math.log(1.0 - uniform(word(n + 1)))
                n += 2
                if y + y > t * t:
                    return -(R + t) if neg else R + t
        u = uniform(word(n))
        n += 1
        if fi[i] + u * (fi[i + 1] - fi[i]) < math.exp(-0.5 * x * x):
            return -x if neg else x
        r = word(n)
        n += 1
