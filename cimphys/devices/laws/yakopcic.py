"""Yakopcic et al. (2011): current and state rate as Numba kernels of ``(v, x, P, k)``.

The law of :class:`~cimphys.devices.yakopcic.Yakopcic` (its parameters, checks and references are there); the
kernels take the class's packed parameter table ``P`` (one column per cell) and are dispatched
on the model id by :mod:`cimphys.devices.laws.dispatch`.
"""

from __future__ import annotations

import math

from ..._numba import jit


# Rows: 0 x_low = 0, 1 x_high = 1, 2 a1, 3 a2, 4 b, 5 vp, 6 vn, 7 ap, 8 an, 9 xp, 10 xn,
# 11 alphap, 12 alphan, 13 eta


@jit(inline="always")
def yakopcic_iv(v, x, P, k):
    a = P[2, k] if v >= 0.0 else P[3, k]
    b = P[4, k]
    return a * x * math.sinh(b * v), a * x * b * math.cosh(b * v)


@jit(inline="always")
def yakopcic_rate(v, x, P, k):
    if v > P[5, k]:
        g = P[7, k] * (math.exp(v) - math.exp(P[5, k]))
    elif v < -P[6, k]:
        g = -P[8, k] * (math.exp(-v) - math.exp(P[6, k]))
    else:
        return 0.0
    eta = P[13, k]
    f = 1.0
    if eta * v > 0.0:
        xp = P[9, k]
        if x >= xp:
            f = math.exp(-P[11, k] * (x - xp)) * ((xp - x) / (1.0 - xp) + 1.0)
    else:
        xn = P[10, k]
        if x <= 1.0 - xn:
            f = math.exp(P[12, k] * (x + xn - 1.0)) * x / (1.0 - xn)
    return eta * g * f
