"""Stanford-PKU RRAM (Jiang et al. 2016): tunnelling current and gap rate as Numba kernels of
``(v, x, P, k)``, and the forward-Euler steps of the release's dynamic mode.

The law of :class:`~cimphys.devices.stanford_pku.StanfordPKU` (its parameters, checks and references are there); the
kernels take the class's packed parameter table ``P`` (one column per cell) and are dispatched
on the model id by :mod:`cimphys.devices.laws.dispatch`.
"""

from __future__ import annotations

import math

from ..._numba import jit
from .kernel_math import exp_fast, sinh_cosh

# The digest of the laws this file's kernels inline (cimphys.devices.laws.sources_digest: Numba
# renews its cache of a file only when that file changes).
KERNEL_SOURCES = "d697dae7ffb16a26"


# Rows: 0 w_min (= 0), 1 w_max (= t_ox): the bounds of the integrated gap; 2 i0, 3 g0, 4 v0,
# 5 vel0, 6 ea, 7 a0, 8 t_ox, 9 gamma0, 10 beta, 11 g1, 12 t0, 13 r_th, 14 g_min, 15 g_max,
# 16 f_min, 17 gamma_reset, 18 delta_gap0, 19 t_crit, 20 t_smth, 21 f_min_width


@jit(inline="always")
def _pku_gap(x, P, k):
    """The gap the physics sees: the integrated gap clipped to [g_min, g_max]."""
    return min(max(x, P[14, k]), P[15, k])


@jit(inline="always")
def pku_iv(v, x, P, k):
    e = P[2, k] * math.exp(-_pku_gap(x, P, k) / P[3, k])
    v0 = P[4, k]
    z = v / v0
    if abs(z) < 0.5:
        # sinh and cosh from one expm1, without cancellation at small |z|:
        # sinh z = m (m + 2) / (2 (m + 1)), cosh z = 1 + m^2 / (2 (m + 1)), m = e^z - 1
        m = math.expm1(z)
        half = 0.5 / (m + 1.0)
        return e * m * (m + 2.0) * half, e * (1.0 + m * m * half) / v0
    # beyond, from exp(|z|): m + 1 above would lose digits as e^z -> 0 (1e-13 at z = -8)
    a = math.exp(abs(z))
    return e * math.copysign(0.5 * (a - 1.0 / a), z), e * 0.5 * (a + 1.0 / a) / v0


@jit(inline="always")
def pku_iv_vec(v, x, i0, g0, v0, g_min, g_max):
    """As :func:`pku_iv` in plain arithmetic (see laws.kernel_math) of scalar parameters, for
    loops that vectorise (no load from the parameter table inside the loop).

    Used only by the flat I-V kernel: the polynomial exp costs compile time wherever it is
    inlined, so the scalar paths (and the integrator) keep libm.
    """
    e = i0 * exp_fast(-min(max(x, g_min), g_max) / g0)
    s, c = sinh_cosh(v / v0)
    return e * s, e * c / v0


@jit(inline="always")
def pku_rate(v, x, P, k):
    i, _ = pku_iv(v, x, P, k)
    temp = P[12, k] + abs(v * i) * P[13, k]
    kt_q = 8.617333262e-5 * temp
    r = _pku_gap(x, P, k) / P[11, k]
    gamma = (P[17, k] if v < 0.0 else P[9, k]) - P[10, k] * r * r * r
    field = gamma * abs(v) / P[8, k]
    if field < P[16, k] * (1.0 - 0.5 * P[21, k]):
        return 0.0  # below the minimum field: gamma = 0 in the release, sinh(0) = 0
    rate = -P[5, k] * math.exp(-P[6, k] / kt_q) * math.sinh(gamma * P[7, k] / P[8, k] * v / kt_q)
    if field < P[16, k] * (1.0 + 0.5 * P[21, k]):  # the smoothed step (width 0: the release's)
        s = (field / P[16, k] - 1.0) / P[21, k] + 0.5
        rate *= s * s * (3.0 - 2.0 * s)
    return rate


@jit(error_model="numpy")
def release_steps(v, normals, w, P, dt, out):
    """Forward-Euler steps of the release's dynamic mode for every cell (column 0 of ``P``).

    ``v (S,)`` the voltage at the start of each step, ``normals (S, C)`` standard normal draws,
    ``w (C,)`` integrated gaps (updated in place), ``out (S, C)`` the gaps after each step.  The
    random gap velocity is ``N(0, 1) delta_gap0 / (1 + exp((T_crit - T) / T_smth))``, one draw
    per step and cell, as the release draws ``$rdist_normal`` once per time point.
    """
    for s in range(v.size):
        vs = v[s]
        for c in range(w.size):
            x = w[c]
            i, _ = pku_iv(vs, x, P, 0)
            temp = P[12, 0] + abs(vs * i) * P[13, 0]
            noise = normals[s, c] * P[18, 0] / (1.0 + math.exp((P[19, 0] - temp) / P[20, 0]))
            x += dt * (pku_rate(vs, x, P, 0) + noise)
            w[c] = min(max(x, P[0, 0]), P[1, 0])
            out[s, c] = w[c]
