"""One set of compiled kernels for every dynamic model: dispatch on an integer model id.

Each model module provides scalar ``@jit`` functions of ``(v, x, P, k)`` (``k`` the parameter
column of the cell); the functions here branch on ``model_id`` so that the vectorised kernels
and the integrator in :mod:`cimphys.devices.dynamics` are compiled once, with one signature
(int64, float64 arrays), for all models.

Model ids: 0 linear ion drift, 1 TEAM, 2 VTEAM, 3 Yakopcic, 4 Stanford-PKU.
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, jit_parallel, prange
from .drift import _drift_iv, _drift_rate
from .stanford_pku import _pku_iv, _pku_rate
from .team import _team_iv, _team_rate, _vteam_rate
from .yakopcic import _yakopcic_iv, _yakopcic_rate

__all__ = ["evaluate_iv", "evaluate_iv_into", "evaluate_rate"]


@jit
def _iv(mid, v, x, P, k):
    """(current A, dI/dV S) of model ``mid`` at voltage v, state x, parameter column k."""
    if mid == 1 or mid == 2:
        return _team_iv(v, x, P, k)
    if mid == 0:
        return _drift_iv(v, x, P, k)
    if mid == 3:
        return _yakopcic_iv(v, x, P, k)
    return _pku_iv(v, x, P, k)


@jit
def _rate(mid, v, x, P, k):
    """d(state)/dt of model ``mid`` (state units per second)."""
    if mid == 2:
        return _vteam_rate(v, x, P, k)
    if mid == 1:
        return _team_rate(v, x, P, k)
    if mid == 0:
        return _drift_rate(v, x, P, k)
    if mid == 3:
        return _yakopcic_rate(v, x, P, k)
    return _pku_rate(v, x, P, k)


@jit
def _thresholds(mid, P, k):
    """Voltage thresholds where the state law is not smooth: (count, low, high)."""
    if mid == 2:
        return 2, P[6, k], P[7, k]
    if mid == 3:
        return 2, -P[6, k], P[5, k]
    return 0, 0.0, 0.0


@jit
def _quiet(mid, v, P, k):
    """True when the state cannot move at voltage v, whatever the state (rate == 0)."""
    if mid == 2:
        return P[6, k] <= v <= P[7, k]
    if mid == 1:
        i_max = v / P[2, k]  # largest |i| is at the lowest resistance, r_on
        return P[6, k] <= i_max <= P[7, k]
    if mid == 3:
        return -P[6, k] <= v <= P[5, k]
    return v == 0.0


@jit_parallel
def _eval_iv(mid, v, x, P, i, g):
    nk = P.shape[1]
    nx = x.size
    for c in prange(v.size):
        i[c], g[c] = _iv(mid, v[c], x[c % nx], P, c % nk)


@jit_parallel
def _eval_rate(mid, v, x, P, r):
    nk = P.shape[1]
    nx = x.size
    for c in prange(v.size):
        r[c] = _rate(mid, v[c], x[c % nx], P, c % nk)


def evaluate_iv(mid: int, v: np.ndarray, x: np.ndarray, P: np.ndarray):
    """Current and dI/dV for flat float64 arrays ``v`` and ``x`` (checked by the caller)."""
    i = np.empty_like(v)
    g = np.empty_like(v)
    _eval_iv(int(mid), v, x, P, i, g)
    return i, g


def evaluate_iv_into(mid: int, v, x, P, i, g) -> None:
    """As :func:`evaluate_iv`, into given buffers; ``x`` may be shorter (indexed ``c % x.size``)."""
    _eval_iv(int(mid), v, x, P, i, g)


def evaluate_rate(mid: int, v: np.ndarray, x: np.ndarray, P: np.ndarray) -> np.ndarray:
    """d(state)/dt for flat float64 arrays ``v`` and ``x``."""
    r = np.empty_like(v)
    _eval_rate(int(mid), v, x, P, r)
    return r
