"""Linear ion drift (Strukov et al. 2008): current and state rate with the Joglekar, Biolek and
Prodromakis windows, as Numba kernels of ``(v, x, P, k)``.

The law of :class:`~cimphys.devices.drift.LinearIonDrift` (its parameters, checks and references are there); the
kernels take the class's packed parameter table ``P`` (one column per cell) and are dispatched
on the model id by :mod:`cimphys.devices.laws.dispatch`.
"""

from __future__ import annotations

from ..._numba import jit
from .kernel_math import power


# Rows: 0 w_low = 0, 1 w_high = D, 2 r_on, 3 r_off, 4 mu_v, 5 window code, 6 p, 7 j


@jit(inline="always")
def drift_iv(v, x, P, k):
    u = x / P[1, k]
    g = 1.0 / (P[2, k] * u + P[3, k] * (1.0 - u))
    return v * g, g


@jit(inline="always")
def _drift_window(u, i, P, k):
    kind = P[5, k]
    if kind == 0.0:
        return 1.0
    p2 = 2.0 * P[6, k]
    if kind == 1.0:
        return 1.0 - power(abs(2.0 * u - 1.0), p2)
    if kind == 2.0:
        s = 1.0 if i <= 0.0 else 0.0
        return 1.0 - power(abs(u - s), p2)
    return P[7, k] * (1.0 - power((u - 0.5) ** 2 + 0.75, P[6, k]))


@jit(inline="always")
def drift_rate(v, x, P, k):
    d = P[1, k]
    i, _ = drift_iv(v, x, P, k)
    return P[4, k] * P[2, k] / d * i * _drift_window(x / d, i, P, k)
