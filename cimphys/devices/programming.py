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
   Joshi et al. 2020 and Papandreou et al. 2011).  Each pulse is one pass of a Numba kernel
   over the cells still outside the tolerance, which it compacts as they converge (serial: a
   pass costs ~1 ms per 1e5 cells, less than waking a thread pool on a busy machine), with normals drawn from the seeded Generator for
   exactly those cells, so the number of draws (and the work) shrinks as cells converge.

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

from .._numba import jit
from ..cards import Card
from ..checks import as_array, as_scalar
from ..errors import InputError
from ..results import variable
from .dynamic_model import DynamicModel, model_class
from .ispp import ispp_options, pulse_amplitudes
from .pcm import PCMModel
from .variability import as_generator

__all__ = [
    "chord_conductance",
    "fit_nonlinearity",
    "nonlinear_update",
    "potentiation_depression",
    "pulse_response",
    "write_verify",
    "write_verify_dynamic",
    "write_verify_pcm",
]



@jit
def _write_verify_round(p, m, idx, target, sigma_p, g, g_read, z, params, g_out, read_out, pulses):
    """One program-and-verify pulse (number ``p``) on the ``m`` active cells; returns how many stay.

    The first ``m`` entries of ``idx`` (cell numbers), ``target``, ``sigma_p``, ``g`` and
    ``g_read`` describe the active cells in cell order.  A cell whose read lands within the
    tolerance is written to ``g_out``/``read_out``/``pulses`` at its cell number; the others are
    compacted, in order, to the front of the active arrays (so the next pulse streams through
    contiguous memory).  ``params`` = [g_max, tolerance, step_sigma, read_q, read_q_exponent,
    read_q_floor, read_q_max, sqrt(ln((t_verify + t_read) / (2 t_read)))]; ``z[0]``, ``z[1]``
    and (only when step_sigma > 0) ``z[2]`` are the programming, read and step normals.
    """
    g_max, tol, step_sigma = params[0], params[1], params[2]
    q, q_exp, q_floor, q_max, log_t = params[3], params[4], params[5], params[6], params[7]
    k = 0
    for j in range(m):
        t = target[j]
        step = t
        if p > 0:
            step = t - g_read[j]
            if step_sigma > 0.0:
                step *= 1.0 + step_sigma * z[2, j]
        gc = min(max(g[j] + step + sigma_p[j] * z[0, j], 0.0), g_max)
        scaled = math.exp(q_exp * math.log(gc / g_max)) if gc > 0.0 else 0.0
        qs = min(q / max(scaled, q_floor), q_max)
        rd = max(gc * (1.0 + qs * log_t * z[1, j]), 0.0)
        if abs(rd - t) <= tol:
            c = idx[j]
            g_out[c] = gc
            read_out[c] = rd
            pulses[c] = p + 1
        else:
            idx[k] = idx[j]
            target[k] = t
            sigma_p[k] = sigma_p[j]
            g[k] = gc
            g_read[k] = rd
            k += 1
    return k


def _pcm_params(pcm: PCMModel, tolerance: float, step_sigma: float, t_verify: float) -> np.ndarray:
    log_t = math.sqrt(math.log((t_verify + pcm.t_read) / (2.0 * pcm.t_read)))
    return np.array([pcm.g_max, tolerance, step_sigma, pcm.read_q, pcm.read_q_exponent, pcm.read_q_floor,
                     pcm.read_q_max, log_t])


def _run_write_verify(target, sigma_p, params, rng, n_max):
    """Pulse loop (Python, over pulses only); each pulse is one kernel pass over the active cells."""
    n = target.size
    g_out = np.zeros(n)
    read_out = np.zeros(n)
    pulses = np.full(n, -n_max, dtype=np.int64)
    idx = np.arange(n, dtype=np.int64)
    t, sp, g, rd = target.copy(), sigma_p.copy(), np.zeros(n), np.zeros(n)
    rows = 3 if params[2] > 0.0 else 2  # no step normals needed without cycle-to-cycle spread
    m = n
    for p in range(n_max):
        z = rng.standard_normal((rows, m))
        m = _write_verify_round(p, m, idx, t, sp, g, rd, z, params, g_out, read_out, pulses)
        if m == 0:
            break
    g_out[idx[:m]] = g[:m]  # cells that never converged keep their last state
    read_out[idx[:m]] = rd[:m]
    return g_out, read_out, pulses


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
    params = _pcm_params(pcm, tol, s_c2c, t_v)
    g, g_read, pulses = _run_write_verify(flat, sigma_p, params, as_generator(seed), n_max)
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


# ---------------------------------------------------------------------------- pulse trains
def _pulse_waveform(width: float, count: int):
    """Unit-amplitude train with known timing: edges width/20, period 2 (width + edges)."""
    from .waveforms import pulse_train as _train

    edge = width / 20.0
    period = 2.0 * (width + 2.0 * edge)
    return _train(1.0, width, count, period=period, rise=edge, fall=edge, delay=edge), edge + period * np.arange(count + 1)


def chord_conductance(model, v_read: float, x) -> np.ndarray:
    """Chord conductance ``I(v_read, x) / v_read`` (S) of a dynamic model at states ``x``: the
    conductance a read at ``v_read`` (V) sees."""
    return model.current(v_read, x) / v_read


def _check_dynamic(model):
    if not isinstance(model, DynamicModel):
        raise InputError(f"model: expected a DynamicModel (VTEAM, TEAM, ...), got {type(model).__name__}")
    return model


def pulse_response(model, amplitude, width: float, n_pulses: int, state0, *, v_read: float = 0.1,
                   rtol: float = 1e-6) -> xr.Dataset:
    """State and read conductance after each of ``n_pulses`` identical pulses.

    Parameters
    ----------
    model : DynamicModel
    amplitude : float or array_like, V
        Pulse height, one per cell (broadcast against ``state0``).
    width : float, s
        Time at full amplitude; edges are ``width/20``, the period ``2.2 width``.
    n_pulses : int
    state0 : float or array_like
        Initial state of each cell (``model.state_unit``).
    v_read : float, V
        Read voltage of the chord conductance ``I(v_read)/v_read`` (non-zero).

    Returns
    -------
    xarray.Dataset
        ``state`` and ``g`` (S) on dims ``(pulse, cell)``, pulse 0 being the initial state.
    """
    from .dynamics import integrate

    model = _check_dynamic(model)
    n = int(as_scalar("n_pulses", n_pulses, low=1, high=1e6))
    width = as_scalar("width", width, unit="s", low=0.0, low_open=True)
    v_read = as_scalar("v_read", v_read, unit="V")
    if v_read == 0.0:
        raise InputError("v_read: expected a non-zero read voltage, got 0.0")
    x0 = as_array("state0", state0, unit=model.state_unit, ndim=(0, 1)).reshape(-1)
    amp = as_array("amplitude", amplitude, unit="V", ndim=(0, 1)).reshape(-1)
    if amp.size not in (1, x0.size):
        raise InputError(f"amplitude: expected 1 or {x0.size} values, got {amp.size}")
    wave, ends = _pulse_waveform(width, n)
    ds = integrate(model, wave, x0, record="all", v_scale=amp, rtol=rtol, quantities=("state",))
    rows = np.searchsorted(ds.time.values, ends)
    rows[0] = 0
    x = np.ascontiguousarray(ds.state.values[rows])
    return xr.Dataset(
        {
            "state": variable(("pulse", "cell"), x, model.state_unit, model.state_long_name),
            "g": variable(("pulse", "cell"), chord_conductance(model, v_read, x), "S", f"chord conductance at {v_read:g} V"),
            "amplitude": variable("cell", np.broadcast_to(amp, (x0.size,)), "V", "pulse amplitude"),
        },
        coords={"pulse": np.arange(n + 1)},
        attrs={"width": width, "v_read": v_read, "model": type(model).__name__},
    )


def nonlinear_update(fraction, nu) -> np.ndarray:
    """Normalised pulse response ``(1 - exp(-nu f)) / (1 - exp(-nu))`` at pulse fraction ``f``.

    ``nu = P/A`` of the NeuroSim model ``G(p) = G_0 + B (1 - exp(-p/A))`` over ``P`` pulses [3]_:
    0 is linear, > 0 saturating (large steps first), < 0 accelerating.
    """
    f = np.asarray(fraction, dtype=float)
    if abs(nu) < 1e-9:
        return f
    return np.expm1(-nu * f) / np.expm1(-nu)


def fit_nonlinearity(g) -> dict:
    """Fit ``nu = P/A`` of the NeuroSim exponential model to a pulse-response curve ``g`` (S).

    ``g[0]`` is before the first pulse and ``g[-1]`` after the last (``P = len(g) - 1``); the
    curve is normalised to ``(g - g[0]) / (g[-1] - g[0])`` so potentiation and depression
    are fitted alike.  Returns ``nu``, ``a_pulses`` (``A = P/nu``, inf when linear) and
    ``residual_rms`` (normalised units).
    """
    from .calibration import fit

    g = as_array("g", g, unit="S", low=0.0, ndim=1)
    if g.size < 3 or g[-1] == g[0]:
        raise InputError(f"g: expected >= 3 values with g[-1] != g[0], got {g.size} values")
    y = (g - g[0]) / (g[-1] - g[0])
    f = np.arange(g.size) / (g.size - 1)
    res = fit(lambda p, x: nonlinear_update(x, p["nu"]), f, y, ["nu"], [0.1], (-NU_BOUND, NU_BOUND), log=())
    nu = res.values["nu"]
    return {"nu": nu, "a_pulses": (g.size - 1) / nu if nu != 0 else math.inf, "residual_rms": res.residual_rms,
            "nu_ci": res.ci["nu"]}


NU_BOUND = 60.0  # beyond |nu| = 60 the whole change happens in the first or last 2 % of the train


def potentiation_depression(model, v_potentiate: float, v_depress: float, width: float, n_pulses: int, *,
                            v_read: float = 0.1) -> xr.Dataset:
    """Potentiation from the low-conductance bound and depression from the high one.

    Returns ``g_potentiation`` and ``g_depression`` (S, dim ``pulse``) and attrs ``nu_p``,
    ``nu_d`` (fitted nonlinearity, 0 = linear), ``a_p``, ``a_d`` (pulses), ``anl`` (asymmetric
    nonlinearity ``(G_P(P/2) - G_D(P/2)) / (G_max - G_min)``, 0 for a linear symmetric device,
    as used by J. Woo and S. Yu, IEEE Nanotechnol. Mag. 12, 36 (2018)) and ``on_off``.
    """
    model = _check_dynamic(model)
    lo, hi = (np.atleast_1d(b)[0] for b in model.state_bounds)
    g_lo, g_hi = chord_conductance(model, v_read, np.array([lo, hi]))
    x_min_g, x_max_g = (lo, hi) if g_lo < g_hi else (hi, lo)
    amps = as_array("v_potentiate/v_depress", [v_potentiate, v_depress], unit="V")
    ds = pulse_response(model, amps, width, n_pulses, np.array([x_min_g, x_max_g]), v_read=v_read)
    gp, gd = ds.g.values[:, 0], ds.g.values[:, 1]
    if not (gp[-1] > gp[0] and gd[-1] < gd[0]):
        raise InputError(f"v_potentiate/v_depress: {v_potentiate!r} V must raise and {v_depress!r} V lower the "
                         f"conductance (got {gp[0]:.3g} -> {gp[-1]:.3g} S and {gd[0]:.3g} -> {gd[-1]:.3g} S)")
    fp, fd = fit_nonlinearity(gp), fit_nonlinearity(gd)
    g_min, g_max = min(gp[0], gd[-1]), max(gp[-1], gd[0])
    half = n_pulses // 2
    anl = (gp[half] - gd[half]) / (g_max - g_min)
    return xr.Dataset(
        {
            "g_potentiation": variable("pulse", gp, "S", "conductance during potentiation"),
            "g_depression": variable("pulse", gd, "S", "conductance during depression"),
        },
        coords={"pulse": ds.pulse.values},
        attrs={"nu_p": fp["nu"], "nu_d": fd["nu"], "a_p": fp["a_pulses"], "a_d": fd["a_pulses"], "anl": float(anl),
               "on_off": float(g_max / g_min), "fit_residual_p": fp["residual_rms"], "fit_residual_d": fd["residual_rms"],
               "width": width, "v_potentiate": float(v_potentiate), "v_depress": float(v_depress)},
    )


# ---------------------------------------------------------------------------- write-verify, dynamic models
def write_verify_dynamic(model, targets, tolerance: float, max_pulses: int = 50, seed=0, *, v_set: float,
                         v_reset: float, width: float, v_read: float = 0.1, read_sigma: float = 0.0,
                         step_sigma: float = 0.0, state0=None, v_step=0.0, v_max=None) -> xr.Dataset:
    """Write-verify with a dynamic model: read, then one SET or RESET pulse per unconverged cell.

    Each round reads every cell (chord conductance at ``v_read`` times ``1 + read_sigma N``);
    a cell whose read is below ``target - tolerance`` gets a ``v_set`` pulse, above
    ``target + tolerance`` a ``v_reset`` pulse, of ``width`` seconds, integrated by
    :func:`cimphys.devices.dynamics.integrate` for all cells at once (converged cells see 0 V).
    The state change of a pulse is scaled by a lognormal factor ``exp(step_sigma N)``
    (cycle-to-cycle variation).  Cells start at ``state0`` (default: the low-conductance bound).
    Returns the Dataset of :func:`write_verify_pcm` plus ``state`` and ``energy`` (J: the sum over
    a cell's pulses of ``V I width``, see :func:`_pulse_energy`).

    **Incremental-step pulse programming** (ISPP, ``v_step > 0``): ``v_set`` and ``v_reset`` are
    the *start* amplitudes.  A cell's ``k``-th consecutive pulse of one polarity has amplitude
    ``sign (|v_start| + k v_step)``, capped at ``v_max`` in magnitude; when a verify read asks
    for the other polarity (overshoot) the count restarts, so the amplitude restarts from the
    start value of the new polarity.  This is the incremental-step pulse with verify algorithm
    used for multilevel RRAM (E. Perez et al., "Optimization of multi-level operation in RRAM
    arrays for in-memory computing", Electronics 10, 1084 (2021), doi:10.3390/electronics10091084),
    the bipolar form of the flash ISPP of K.-D. Suh et al., IEEE J. Solid-State Circuits 30, 1149
    (1995), doi:10.1109/4.475701.  The ramp lets pulses that are small enough near the band's
    steep end still cross the slow end of the window in few pulses; restarting on overshoot keeps
    the final correction as fine as the start pulse.  Amplitudes are per cell (the ``v_scale``
    of :func:`~cimphys.devices.dynamics.integrate`), so all cells stay in one integration.

    Parameters
    ----------
    v_step : float or (float, float), V
        Amplitude increment after each pulse that left the cell on the same side of the band
        (one value, or SET and RESET values; >= 0).  0 (default): fixed pulses, as before.
    v_max : float or (float, float), V
        Largest amplitude magnitude (SET, RESET), >= the start magnitude; required with
        ``v_step > 0``.
    """
    model = _check_dynamic(model)
    t = as_array("targets", targets, unit="S", low=0.0, ndim=(1, 2))
    tol = as_scalar("tolerance", tolerance, unit="S", low=0.0, low_open=True)
    n_max = int(as_scalar("max_pulses", max_pulses, low=1, high=10000))
    v_read = as_scalar("v_read", v_read, unit="V")
    r_sig = as_scalar("read_sigma", read_sigma, low=0.0, high=1.0)
    s_sig = as_scalar("step_sigma", step_sigma, low=0.0, high=3.0)
    amps = as_array("v_set/v_reset", [v_set, v_reset], unit="V")
    width_s = as_scalar("width", width, unit="s", low=0.0, low_open=True)
    wave, _ = _pulse_waveform(width_s, 1)
    flat = t.reshape(-1)
    lo, hi, x = _start_state(model, flat, v_read, state0)
    steps, caps = ispp_options(amps, v_step, v_max)
    rng = as_generator(seed)
    pulses = np.zeros(flat.size, dtype=np.int64)
    energy = np.zeros(flat.size)
    done = np.zeros(flat.size, dtype=bool)
    g_read = np.empty_like(flat)
    run = np.zeros(flat.size)  # ISPP: consecutive pulses of the current polarity before this one
    last_up = np.zeros(flat.size, dtype=bool)
    for _ in range(n_max + 1):  # loop over pulses; every operation is vectorised over cells
        g_read = chord_conductance(model, v_read, x) * (1.0 + r_sig * rng.standard_normal(flat.size))
        done |= np.abs(g_read - flat) <= tol
        active = ~done & (pulses < n_max)
        if not active.any():
            break
        scale, run, last_up = pulse_amplitudes(active, g_read < flat, amps, steps, caps, run, last_up)
        x, e = _apply_pulse(model, wave, width_s, scale, x, (lo, hi), s_sig, rng)
        energy += e
        pulses += active
    signed = np.where(done, np.maximum(pulses, 1), -pulses)
    ds = _result(t, chord_conductance(model, v_read, x), g_read, signed, tol, n_max, model=type(model).__name__)
    ds["state"] = variable(ds.g.dims, x.reshape(t.shape), model.state_unit, model.state_long_name)
    ds["energy"] = variable(ds.g.dims, energy.reshape(t.shape), "J", "energy of the programming pulses")
    if steps is not None:
        ds.attrs.update(v_step=list(steps), v_max=list(caps))
    return ds


def _apply_pulse(model, wave, width: float, scale: np.ndarray, x: np.ndarray, bounds, step_sigma: float, rng):
    """One programming pulse of ``width`` (s) and per-cell amplitude ``scale`` (V; 0 for a cell
    left alone) from states ``x``: the states after it, their change scaled by the lognormal
    cycle-to-cycle factor ``exp(step_sigma N)`` and clipped to ``bounds = (lo, hi)``, and each
    cell's pulse energy (J, :func:`_pulse_energy`)."""
    from .dynamics import integrate

    x_new = integrate(model, wave, x, record="final", v_scale=scale, quantities=("state",)).state.values[-1]
    factor = np.exp(step_sigma * rng.standard_normal(x.size)) if step_sigma else 1.0
    x_after = np.clip(x + (x_new - x) * factor, *bounds)
    return x_after, _pulse_energy(model, scale, x, x_after, width)


def _start_state(model, flat: np.ndarray, v_read: float, state0):
    """State bounds ``(lo, hi)`` per cell and the start state (``state0``, default the
    low-conductance bound) of write-verify to targets ``flat`` (S), checked inside the window."""
    lo, hi = (np.broadcast_to(b, flat.shape).astype(float) for b in model.state_bounds)
    g_lo, g_hi = chord_conductance(model, v_read, lo), chord_conductance(model, v_read, hi)
    x = (np.where(g_lo < g_hi, lo, hi) if state0 is None else
         np.broadcast_to(as_array("state0", state0, unit=model.state_unit), flat.shape)).astype(float).copy()
    if np.any(flat < np.minimum(g_lo, g_hi)) or np.any(flat > np.maximum(g_lo, g_hi)):
        raise InputError(f"targets: expected values inside the device window [{np.min(np.minimum(g_lo, g_hi)):.4g}, "
                         f"{np.max(np.maximum(g_lo, g_hi)):.4g}] S")
    return lo, hi, x


def _pulse_energy(model, v, x_before, x_after, width: float) -> np.ndarray:
    """Energy (J) a pulse of amplitude ``v`` (V, per cell) delivers to each cell: ``v I width`` with
    ``I`` the mean of the currents at the states before and after the pulse (trapezoid in the
    state; exact while the current changes linearly over the pulse, and the pulses of
    write-verify change the conductance by at most the tolerance).  The edges (``width/20``
    each) are not counted: for an ohmic cell they add ``2/3 * 1/20`` of the flat top, 3 %."""
    i = 0.5 * (model.current(v, x_before) + model.current(v, x_after))
    return np.abs(v * i) * width


def _dynamic_class(card: Card):
    try:
        return model_class(card)
    except InputError:
        raise InputError(f"model_or_card: card {card.name!r} (model {card.model!r}) is neither PCM nor a dynamic "
                         "model") from None


def write_verify(model_or_card, targets, tolerance: float, max_pulses: int = 20, seed=0, **options) -> xr.Dataset:
    """Program ``targets`` (S) by write-verify; the Dataset's ``g`` is the programmed conductance.

    ``model_or_card`` is a :class:`PCMModel` or ``pcm_statistical`` card (options of
    :func:`write_verify_pcm`), or a dynamic model or its card (options of
    :func:`write_verify_dynamic`; ``v_set``, ``v_reset`` and ``width`` are required).

    Examples
    --------
    >>> from cimphys.cards import load_device
    >>> ds = write_verify(load_device("nandakumar2019_pcm"), [5e-6, 20e-6], 0.5e-6, max_pulses=20, seed=1)
    >>> ds.g.attrs["units"], ds.g.dims, int(ds.attrs["n_failed"])
    ('S', ('cell',), 0)
    """
    if isinstance(model_or_card, Card):
        model_or_card = (PCMModel.from_card(model_or_card) if model_or_card.model == "pcm_statistical"
                         else _dynamic_class(model_or_card).from_card(model_or_card))
    if isinstance(model_or_card, PCMModel):
        return write_verify_pcm(model_or_card, targets, tolerance, max_pulses, seed, **options)
    if isinstance(model_or_card, DynamicModel):
        return write_verify_dynamic(model_or_card, targets, tolerance, max_pulses, seed, **options)
    raise InputError(f"model_or_card: expected a PCMModel, a DynamicModel or a card, got {type(model_or_card).__name__}")
