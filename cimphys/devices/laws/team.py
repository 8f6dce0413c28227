"""TEAM and VTEAM (Kvatinsky et al. 2013, 2015): current and state rate as Numba kernels of
``(v, x, P, k)``.

The law of :class:`~cimphys.devices.team.TEAM`, :class:`~cimphys.devices.team.VTEAM` (its parameters, checks and references are there); the
kernels take the class's packed parameter table ``P`` (one column per cell) and are dispatched
on the model id by :mod:`cimphys.devices.laws.dispatch`.
"""

from __future__ import annotations

import math

from ..._numba import jit
from .kernel_math import power


# Rows of the packed table (0 and 1 are the state bounds, shared by every model).
# 0 x_on, 1 x_off, 2 r_on, 3 r_off, 4 k_on, 5 k_off, 6 thr_on, 7 thr_off, 8 alpha_on,
# 9 alpha_off, 10 iv (0 linear, 1 exponential), 11 window (0 none, 1 kvatinsky, 2 biolek),
# 12 a_on, 13 a_off, 14 w_c, 15 p


@jit(inline="always")
def team_iv(v, x, P, k):
    """Current and dI/dV of the TEAM/VTEAM read path at voltage v, state x."""
    x_on = P[0, k]
    u = (x - x_on) / (P[1, k] - x_on)
    if P[10, k] == 0.0:
        r = P[2, k] + (P[3, k] - P[2, k]) * u
    else:
        r = P[2, k] * math.exp(math.log(P[3, k] / P[2, k]) * u)
    g = 1.0 / r
    return v * g, g


@jit(inline="always")
def _team_window(drive, x, P, k):
    kind = P[11, k]
    if kind == 0.0:
        return 1.0
    if kind == 1.0:
        if drive > 0.0:
            return math.exp(-math.exp((x - P[13, k]) / P[14, k]))
        return math.exp(-math.exp(-(x - P[12, k]) / P[14, k]))
    u = (x - P[0, k]) / (P[1, k] - P[0, k])
    if drive <= 0.0:
        u = u - 1.0
    return 1.0 - power(abs(u), 2.0 * P[15, k])


@jit(inline="always")
def _team_law(drive, x, P, k):
    """dx/dt for a drive (voltage for VTEAM, current for TEAM) against thresholds rows 6, 7."""
    if drive > P[7, k]:
        return P[5, k] * power(drive / P[7, k] - 1.0, P[9, k]) * _team_window(drive, x, P, k)
    if drive < P[6, k]:
        return P[4, k] * power(drive / P[6, k] - 1.0, P[8, k]) * _team_window(drive, x, P, k)
    return 0.0


@jit(inline="always")
def vteam_rate(v, x, P, k):
    return _team_law(v, x, P, k)


@jit(inline="always")
def team_rate(v, x, P, k):
    i, _ = team_iv(v, x, P, k)
    return _team_law(i, x, P, k)
