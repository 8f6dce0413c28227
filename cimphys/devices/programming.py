"""Programming memory cells: pulse-train potentiation/depression curves and write-verify.

Two things live here.

1. **Write-verify** (:func:`write_verify`): every cell is programmed, read and re-programmed until
   its read conductance is within ``tolerance`` of its target or ``max_pulses`` is spent.  For
   PCM (the path the layer adapter uses) the per-pulse physics is the statistical model of
   :mod:`cimphys.devices.pcm`: the first pulse aims at the target from the reset state,
   each later pulse corrects by the last read error,

   ``G <- clip(G + (G_T - G_read)(1 + s_c2c N1) + k sigma_P(G_T) N2, 0, G_max)``,
   ``G_read = G (1 + sigma_nG(G, t_verify) N3)``,

   where ``sigma_P`` is the published programming spread, ``k = pulse_noise_scale``,
   ``s_c2c`` the cycle-to-cycle spread of a correction step and ``sigma_nG`` the published 1/f
   read noise accumulated ``t_verify`` after the pulse (iterative program-and-verify as in
   Joshi et al. 2020 and Papandreou et al. 2011).  The loop runs in one Numba kernel over all
   cells in parallel; its normal deviates come from a counter-based generator (splitmix64 +
   Box-Muller) keyed by ``(seed, cell, draw)``, so a seed gives the same result for every
   cell whatever the number of threads or the order of evaluation.

2. **Pulse-train curves** (:func:`pulse_train`, :func:`fit_nonlinearity`): conductance after each
   of a train of identical pulses applied to a dynamic model, and the nonlinearity and
   asymmetry figures of the literature.

References
----------
.. [1] N. Papandreou, H. Pozidis, A. Pantazi, A. Sebastian, M. Breitwisch, C. Lam,
   E. Eleftheriou, "Programming algorithms for multilevel phase-change memory", IEEE ISCAS 2011.
.. [2] V. Joshi et al., Nat. Commun. 11, 2473 (2020), doi:10.1038/s41467-020-16108-9.
.. [3] P.-Y. Chen, X. Peng, S. Yu, "NeuroSim: a circuit-level macro model for benchmarking
   neuro-inspired architectures in online learning", IEEE TCAD 37, 3067 (2018) (exponential
   pulse-response model and its nonlinearity).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from .._numba import jit, jit_parallel, prange
from ..cards import Card
from ..checks import as_array, as_scalar
from ..errors import InputError
from ..results import variable
from .pcm import PCMModel
from .variability import as_generator

__all__ = ["write_verify", "write_verify_pcm"]

DRAWS_PER_PULSE = 3  # normals per pulse: N1 (step spread), N2 (programming noise), N3 (read noise)


@jit
def _mix(x):
    """splitmix64 finaliser of ``x + golden`` (uint64 -> uint64)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@jit
def _normal(stream, draw):
    """Standard normal number ``draw`` of a cell's ``stream`` (Box-Muller on two uniforms)."""
    a = _mix(stream + np.uint64(2 * draw))
    b = _mix(stream + np.uint64(2 * draw + 1))
    u1 = (float(a >> np.uint64(11)) + 0.5) * 1.1102230246251565e-16
    u2 = float(b >> np.uint64(11)) * 1.1102230246251565e-16
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@jit
def _stream(key, cell):
    return _mix(key ^ _mix(np.uint64(cell)))


@jit_parallel
def _write_verify_pcm(target, sigma_p, params, key, max_pulses, g, g_read, pulses):
    """Iterative program-and-verify of every cell (see the module docstring).

    ``params`` = [g_max, tolerance, step_sigma, read_q, read_q_exponent, read_q_floor,
    read_q_max, sqrt(ln((t_verify + t_read) / (2 t_read)))].  Writes the final conductance
    ``g``, the last verify read ``g_read`` and the pulses spent (negative: not converged).
    """
    g_max, tol, step_sigma = params[0], params[1], params[2]
    q, q_exp, q_floor, q_max, log_t = params[3], params[4], params[5], params[6], params[7]
    for c in prange(target.size):
        s = _stream(key, c)
        t = target[c]
        gc = 0.0
        rd = 0.0
        pulses[c] = -max_pulses
        for p in range(max_pulses):
            d = 3 * p  # DRAWS_PER_PULSE
            step = t if p == 0 else (t - rd) * (1.0 + step_sigma * _normal(s, d))
            gc = min(max(gc + step + sigma_p[c] * _normal(s, d + 1), 0.0), g_max)
            qs = min(q / max((gc / g_max) ** q_exp, q_floor), q_max)
            rd = max(gc * (1.0 + qs * log_t * _normal(s, d + 2)), 0.0)
            if abs(rd - t) <= tol:
                pulses[c] = p + 1
                break
        g[c] = gc
        g_read[c] = rd


def _pcm_params(pcm: PCMModel, tolerance: float, step_sigma: float, t_verify: float) -> np.ndarray:
    log_t = math.sqrt(math.log((t_verify + pcm.t_read) / (2.0 * pcm.t_read)))
    return np.array([pcm.g_max, tolerance, step_sigma, pcm.read_q, pcm.read_q_exponent, pcm.read_q_floor,
                     pcm.read_q_max, log_t])


def _seed_key(seed) -> np.uint64:
    return np.uint64(as_generator(seed).integers(0, 2**63, dtype=np.uint64))


def write_verify_pcm(pcm: PCMModel, targets, tolerance: float, max_pulses: int = 20, seed=0, *,
                     t_verify: float = 1e-3, pulse_noise_scale: float = 1.0, step_sigma: float = 0.0) -> xr.Dataset:
    """Write-verify a PCM array with the statistical model (vectorised, parallel).

    Parameters
    ----------
    pcm : PCMModel
    targets : array_like, S
        Target conductances in ``[0, G_max]``, 1-D (``cell``) or 2-D (``row``, ``col``).
    tolerance : float, S
        Accept a cell when ``|G_read - G_T| <= tolerance`` (> 0).
    max_pulses : int
        Programming pulses allowed per cell (1 to 10000).
    seed : int or numpy.random.Generator
    t_verify : float, s
        Time from a pulse to its verify read (sets the accumulated read noise; >= t_read).
    pulse_noise_scale : float
        Factor on the published sigma_P for the spread of one pulse (0 to 10).
    step_sigma : float
        Relative cycle-to-cycle spread of a correction step (0 to 3).

    Returns
    -------
    xarray.Dataset
        ``g`` (programmed conductance, S), ``g_read`` (last verify read, S), ``error``
        (``g - g_target``, S), ``pulses`` (int), ``converged`` (bool), ``g_target`` (S);
        attrs ``n_failed``, ``tolerance``, ``max_pulses``.
    """
    if not isinstance(pcm, PCMModel):
        raise InputError(f"pcm: expected a PCMModel, got {type(pcm).__name__}")
    t = as_array("targets", targets, unit="S", low=0.0, high=pcm.g_max, ndim=(1, 2))
    tol = as_scalar("tolerance", tolerance, unit="S", low=0.0, low_open=True)
    n_max = int(as_scalar("max_pulses", max_pulses, low=1, high=10000))
    t_v = as_scalar("t_verify", t_verify, unit="s", low=pcm.t_read, high=1e6)
    scale = as_scalar("pulse_noise_scale", pulse_noise_scale, low=0.0, high=10.0)
    s_c2c = as_scalar("step_sigma", step_sigma, low=0.0, high=3.0)
    flat = t.reshape(-1)
    sigma_p = np.ascontiguousarray(scale * pcm.sigma_prog(flat))
    g, g_read = np.empty_like(flat), np.empty_like(flat)
    pulses = np.empty(flat.size, dtype=np.int64)
    _write_verify_pcm(flat, sigma_p, _pcm_params(pcm, tol, s_c2c, t_v), _seed_key(seed), n_max, g, g_read, pulses)
    return _result(t, g, g_read, pulses, tol, n_max, model="pcm_statistical")


def _result(targets, g, g_read, pulses, tol, n_max, model) -> xr.Dataset:
    dims = ("cell",) if targets.ndim == 1 else ("row", "col")
    shape = targets.shape
    converged = pulses > 0
    ds = xr.Dataset(
        {
            "g_target": variable(dims, targets, "S", "target conductance"),
            "g": variable(dims, g.reshape(shape), "S", "programmed conductance"),
            "g_read": variable(dims, g_read.reshape(shape), "S", "last verify read"),
            "error": variable(dims, (g - targets.reshape(-1)).reshape(shape), "S", "programmed minus target"),
            "pulses": variable(dims, np.abs(pulses).reshape(shape), "1", "programming pulses used"),
            "converged": variable(dims, converged.reshape(shape), "1", "read within tolerance"),
        },
        attrs={"model": model, "tolerance": tol, "max_pulses": n_max, "n_failed": int((~converged).sum())},
    )
    return ds


def write_verify(model_or_card, targets, tolerance: float, max_pulses: int = 20, seed=0, **options) -> xr.Dataset:
    """Program ``targets`` (S) by write-verify with a PCM model or card.

    ``model_or_card`` is a :class:`PCMModel` or a ``pcm_statistical`` card; ``options`` go to
    :func:`write_verify_pcm`.  Returns its Dataset (``g`` is the programmed conductance).
    """
    if isinstance(model_or_card, Card):
        model_or_card = PCMModel.from_card(model_or_card)
    if isinstance(model_or_card, PCMModel):
        return write_verify_pcm(model_or_card, targets, tolerance, max_pulses, seed, **options)
    raise InputError(f"model_or_card: expected a PCMModel or a pcm_statistical card, got {type(model_or_card).__name__}")
