"""One set of compiled kernels for every dynamic model: dispatch on an integer model id.

Each law module provides scalar ``@jit`` functions of ``(v, x, P, k)`` (``k`` the parameter
column of the cell); the functions here branch on ``model_id`` so that the vectorised kernels
and the integrator in :mod:`cimphys.devices.dynamics` are compiled once, with one signature
(int64, float64 arrays), for all models.

Model ids: 0 linear ion drift, 1 TEAM, 2 VTEAM, 3 Yakopcic, 4 Stanford-PKU.
"""

from __future__ import annotations

import math

import numpy as np

from ..._numba import jit
from .kernel_math import exp_fast, int_power, power
from .drift import drift_iv, drift_rate
from .stanford_pku import pku_iv, pku_iv_vec, pku_rate
from .team import team_iv, team_rate, vteam_rate
from .yakopcic import yakopcic_iv, yakopcic_rate

__all__ = ["SPLIT_RATE_ROWS", "evaluate_iv", "evaluate_iv_into", "evaluate_rate", "split_eligible"]

# The digest of the laws this file's kernels inline (cimphys.devices.laws.sources_digest: Numba
# renews its cache of a file only when that file changes).
KERNEL_SOURCES = "d697dae7ffb16a26"


@jit
def model_iv(mid, v, x, P, k):
    """(current A, dI/dV S) of model ``mid`` at voltage v, state x, parameter column k."""
    if mid == 1 or mid == 2:
        return team_iv(v, x, P, k)
    if mid == 0:
        return drift_iv(v, x, P, k)
    if mid == 3:
        return yakopcic_iv(v, x, P, k)
    return pku_iv(v, x, P, k)


@jit
def model_rate(mid, v, x, P, k):
    """d(state)/dt of model ``mid`` (state units per second)."""
    if mid == 2:
        return vteam_rate(v, x, P, k)
    if mid == 1:
        return team_rate(v, x, P, k)
    if mid == 0:
        return drift_rate(v, x, P, k)
    if mid == 3:
        return yakopcic_rate(v, x, P, k)
    return pku_rate(v, x, P, k)


@jit(inline="always")
def model_thresholds(mid, P, k):
    """Voltage thresholds where the state law is not smooth: (count, low, high)."""
    if mid == 2:
        return 2, P[6, k], P[7, k]
    if mid == 3:
        return 2, -P[6, k], P[5, k]
    return 0, 0.0, 0.0


@jit(inline="always")
def model_quiet(mid, v, P, k):
    """True when the state cannot move at voltage v, whatever the state (rate == 0)."""
    if mid == 2:
        return P[6, k] <= v <= P[7, k]
    if mid == 1:
        i_max = v / P[2, k]  # largest |i| is at the lowest resistance, r_on
        return P[6, k] <= i_max <= P[7, k]
    if mid == 3:
        return -P[6, k] <= v <= P[5, k]
    return v == 0.0


# -- rates split into a voltage factor and a state factor (the fixed-step integrator) --------
# For VTEAM and Yakopcic, d(state)/dt = rate_constant(side) * F(v) * W(x, side): the voltage
# factor F (VTEAM (v/v_off - 1)^alpha_off, Yakopcic e^v - e^Vp) and the side of the threshold
# window are the same for every cell of a step when the cells share thresholds and exponents,
# so the integrator evaluates them once per step and each cell only its rate constant (which
# may vary per cell, as may every row the rate law does not read) and its window.
SPLIT_RATE_ROWS = {2: (4, 5), 3: (8, 7)}  # (side -1 row, side +1 row): VTEAM k_on, k_off; Yakopcic an, ap
# Rows the rate law reads besides the rate constants: these must be the same for every cell.
# VTEAM: bounds, thresholds, alphas, window kind, a_on, a_off, w_c, p (not r_on, r_off, iv);
# Yakopcic: bounds, vp, vn, xp, xn, alphap, alphan, eta (not a1, a2, b).
SPLIT_SHARED_ROWS = {2: (0, 1, 6, 7, 8, 9, 11, 12, 13, 14, 15), 3: (0, 1, 5, 6, 9, 10, 11, 12, 13)}


@jit(inline="always")
def split_drive(mid, v, P):
    """(side, voltage factor) at voltage v for parameter column 0; side 0 when quiet.

    The factor is the part of the rate law that depends on v only, as ``model_rate`` computes it.
    """
    if mid == 2:
        if v > P[7, 0]:
            return 1.0, power(v / P[7, 0] - 1.0, P[9, 0])
        if v < P[6, 0]:
            return -1.0, power(v / P[6, 0] - 1.0, P[8, 0])
        return 0.0, 0.0
    if mid == 3:
        if v > P[5, 0]:
            return 1.0, math.exp(v) - math.exp(P[5, 0])
        if v < -P[6, 0]:
            return -1.0, -(math.exp(-v) - math.exp(P[6, 0]))
        return 0.0, 0.0
    return 0.0, 0.0


@jit(inline="always")
def split_shape(mid, P):
    """The state-window parameters of column 0 as a tuple of 8 floats (scalars for the loop)."""
    if mid == 2:  # x_on, x_off, window kind, 2p, a_on, a_off, w_c, 1/(x_off - x_on)
        return (P[0, 0], P[1, 0], P[11, 0], 2.0 * P[15, 0], P[12, 0], P[13, 0], P[14, 0], 1.0 / (P[1, 0] - P[0, 0]))
    if mid == 3:  # 0, 1, xp, xn, alphap, alphan, eta
        return (P[0, 0], P[1, 0], P[9, 0], P[10, 0], P[11, 0], P[12, 0], P[13, 0], 0.0)
    return (P[0, 0], P[1, 0], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@jit(inline="always")
def split_rate(mid, kind, n2p, side, fac, x, q, kr):
    """d(state)/dt from the step's (side, factor), the window shape q and rate constant kr.

    ``n2p``: the Biolek exponent 2p as a compile-time constant, or -1 to read it from ``q``.

    Equals ``model_rate`` to rounding, in operations that vectorise over cells: the Biolek window
    (``kind`` 2) multiplies by ``1/(x_off - x_on)`` instead of dividing and raises to the
    integer ``2p`` by :func:`int_power`; the Kvatinsky (``kind`` 1) and Yakopcic windows use the
    polynomial :func:`exp_fast` (about 1 ulp from libm).  ``x`` must lie in its bounds.
    """
    if mid == 2:
        if kind == 0:
            w = 1.0
        elif kind == 1:
            if side > 0.0:
                w = exp_fast(-exp_fast((x - q[5]) / q[6]))
            else:
                w = exp_fast(-exp_fast(-(x - q[4]) / q[6]))
        else:
            u = (x - q[0]) * q[7] - (0.0 if side > 0.0 else 1.0)
            w = 1.0 - int_power(abs(u), int(q[3]) if n2p < 0 else n2p)
        return kr * fac * w
    eta = q[6]
    xp = q[2]
    xn = q[3]
    if eta * side > 0.0:
        f = exp_fast(-q[4] * (x - xp)) * ((xp - x) / (1.0 - xp) + 1.0) if x >= xp else 1.0
    else:
        f = exp_fast(q[5] * (x + xn - 1.0)) * x / (1.0 - xn) if x <= 1.0 - xn else 1.0
    return eta * (kr * fac) * f


def split_eligible(mid: int, P: np.ndarray, n_scale: int) -> bool:
    """True when every cell shares the voltage factor and window shape (see SPLIT_RATE_ROWS).

    One voltage scale for all cells; the rows of ``SPLIT_SHARED_ROWS`` the same in all
    columns; a Biolek window exponent ``2p`` that is an integer below 128 (see :func:`int_power`).
    """
    if mid not in SPLIT_SHARED_ROWS or n_scale != 1:
        return False
    for r in SPLIT_SHARED_ROWS[mid]:  # row by row: no copy of a per-cell table
        if P[r].min() != P[r].max():
            return False
    if mid == 2 and P[11, 0] == 2.0:
        n = 2.0 * P[15, 0]
        return bool(n == round(n) and 0 <= n < 128)
    return True


@jit(inline="always")
def _bad(v, x, P, k):
    """True if v is not finite or x is outside its bounds (beyond 1e-9 of the range)."""
    lo = P[0, k]
    hi = P[1, k]
    tol = 1e-9 * (hi - lo)
    return not (math.isfinite(v) and lo - tol <= x <= hi + tol)


@jit
def first_bad_state(x, P):
    """Index of the first state outside its bounds (or not finite), -1 if none."""
    nk = P.shape[1]
    for c in range(x.size):
        if _bad(0.0, x[c], P, 0 if nk == 1 else c % nk):
            return c
    return -1


@jit(inline="always")
def _iv_loop(mid, v, x, P, i, g):
    """One model's I-V over all cells, checking inputs; return the first bad index or -1."""
    nk = P.shape[1]
    nx = x.size
    for c in range(v.size):
        k = 0 if nk == 1 else c % nk
        xc = x[c] if nx == v.size else x[c % nx]
        vc = v[c]
        if _bad(vc, xc, P, k):
            return c
        if mid == 0:
            i[c], g[c] = drift_iv(vc, xc, P, k)
        elif mid == 3:
            i[c], g[c] = yakopcic_iv(vc, xc, P, k)
        elif mid == 4:
            i[c], g[c] = pku_iv(vc, xc, P, k)
        else:
            i[c], g[c] = team_iv(vc, xc, P, k)
    return -1


@jit(error_model="numpy")
def _eval_iv_pku_flat(v, x, P, i, g):
    """Stanford-PKU I-V with one parameter set and one state per cell: a loop without exits.

    Bad inputs are counted, not returned from inside the loop, so that LLVM can vectorise it
    (the law is plain arithmetic, see laws.kernel_math); return the count.
    """
    lo = P[0, 0]
    hi = P[1, 0]
    tol = 1e-9 * (hi - lo)
    # parameters as scalars: stores to i, g might alias P, so loads from P in the loop would
    # stop LLVM from vectorising it
    i0 = P[2, 0]
    g0 = P[3, 0]
    v0 = P[4, 0]
    g_min = P[14, 0]
    g_max = P[15, 0]
    nbad = 0
    for c in range(v.size):
        vc = v[c]
        xc = x[c]
        ok = math.isfinite(vc) and lo - tol <= xc <= hi + tol
        nbad += 0 if ok else 1
        i[c], g[c] = pku_iv_vec(vc, xc, i0, g0, v0, g_min, g_max)
    return nbad


@jit(error_model="numpy")
def _eval_iv_team_linear_flat(v, x, P, i, g):
    """TEAM/VTEAM linear read law, one parameter set, one state per cell: a loop without exits
    (``I = V G``, ``G = 1/R(x)``, the linear branch of ``team_iv``, same operations) that
    LLVM vectorises; return the number of bad cells."""
    lo = P[0, 0]
    hi = P[1, 0]
    tol = 1e-9 * (hi - lo)
    r_on = P[2, 0]  # scalars, not loads from P in the loop (see _eval_iv_pku_flat)
    r_off = P[3, 0]
    nbad = 0
    for c in range(v.size):
        vc = v[c]
        xc = x[c]
        ok = math.isfinite(vc) and lo - tol <= xc <= hi + tol
        nbad += 0 if ok else 1
        u = (xc - lo) / (hi - lo)
        gc = 1.0 / (r_on + (r_off - r_on) * u)
        i[c] = vc * gc
        g[c] = gc
    return nbad


@jit
def _eval_iv(mid, v, x, P, i, g):
    """Checked I-V for every cell; the model branch is hoisted out of the cell loop."""
    if mid == 0:
        return _iv_loop(0, v, x, P, i, g)
    if mid == 3:
        return _iv_loop(3, v, x, P, i, g)
    if mid == 4:
        return _iv_loop(4, v, x, P, i, g)
    return _iv_loop(1, v, x, P, i, g)


@jit
def _eval_rate(mid, v, x, P, r):
    """Checked d(state)/dt for every cell; return the first bad index or -1."""
    nk = P.shape[1]
    nx = x.size
    for c in range(v.size):
        k = 0 if nk == 1 else c % nk
        xc = x[c % nx]
        if _bad(v[c], xc, P, k):
            return c
        r[c] = model_rate(mid, v[c], xc, P, k)
    return -1


def _flat_kernel(mid: int, v, x, P):
    """The exit-free, vectorising I-V kernel for this call, or None.

    Stanford-PKU and the linear TEAM read law, one parameter set, one state per cell.  The
    other laws call libm (exp/log) in branches that a vectorised loop would evaluate for every
    cell, so they keep the scalar loop.  Chosen here rather than inside ``_eval_iv`` so that
    each kernel is compiled only when a call needs it.
    """
    if P.shape[1] != 1 or x.size != v.size:
        return None
    if mid == 4:
        return _eval_iv_pku_flat
    if mid in (1, 2) and P[10, 0] == 0.0:
        return _eval_iv_team_linear_flat
    return None


def evaluate_iv(mid: int, v: np.ndarray, x: np.ndarray, P: np.ndarray):
    """Current and dI/dV for flat float64 arrays ``v`` and ``x``; ``(i, g, first_bad)``.

    ``first_bad`` is -1, or the index of the first cell whose voltage is not finite or whose
    state is outside its bounds (the outputs are then incomplete).
    """
    i = np.empty_like(v)
    g = np.empty_like(v)
    return i, g, evaluate_iv_into(mid, v, x, P, i, g)


def evaluate_iv_into(mid: int, v, x, P, i, g) -> int:
    """As :func:`evaluate_iv`, into given buffers; ``x`` may be shorter (indexed ``c % x.size``)."""
    flat = _flat_kernel(int(mid), v, x, P)
    if flat is not None and flat(v, x, P, i, g) == 0:
        return -1
    return int(_eval_iv(int(mid), v, x, P, i, g))  # also finds the first bad cell


def evaluate_rate(mid: int, v: np.ndarray, x: np.ndarray, P: np.ndarray):
    """d(state)/dt for flat float64 arrays ``v`` and ``x``; ``(rate, first_bad)``."""
    r = np.empty_like(v)
    bad = _eval_rate(int(mid), v, x, P, r)
    return r, int(bad)
