"""Read noise of a memory cell: thermal, shot, 1/f (spectral synthesis) and random telegraph noise.

* Thermal (Johnson-Nyquist) current noise of a conductance ``G``: one-sided PSD ``4 k T G``,
  RMS ``sqrt(4 k T G df)`` over a bandwidth ``df`` [1]_.
* Shot noise of a current ``I``: one-sided PSD ``2 q |I|``, RMS ``sqrt(2 q |I| df)`` [1]_.
* 1/f^alpha noise by spectral synthesis: the FFT of white Gaussian noise is shaped by
  ``sqrt(S(f) / S_white)`` and transformed back [2]_, so the one-sided PSD is
  ``S(f) = S_1 (1 Hz / f)**alpha`` (``S_1`` the PSD at 1 Hz, unit**2/Hz).
* Random telegraph noise (RTN): a two-state continuous-time Markov process, switching
  low -> high at rate ``1/tau_low`` and high -> low at rate ``1/tau_high``; dwell times are
  exponential with means ``tau_low`` and ``tau_high`` [3]_.  The trace is built from drawn
  dwell times (exact, no time-step error) and sampled on the grid ``k dt``.

References
----------
.. [1] C. D. Motchenbacher, J. A. Connelly, *Low-Noise Electronic System Design*, Wiley (1993), ch. 1.
.. [2] J. Timmer, M. Koenig, "On generating power law noise", Astron. Astrophys. 300, 707 (1995).
.. [3] M. J. Kirton, M. J. Uren, "Noise in solid-state microstructures: a new perspective on
   individual defects, interface states and low-frequency (1/f) noise", Adv. Phys. 38, 367 (1989),
   doi:10.1080/00018738900101122.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from .._numba import jit_parallel, prange
from ..checks import as_array, as_scalar
from ..errors import InputError
from ..results import variable
from .variability import as_generator

__all__ = [
    "BOLTZMANN",
    "ELEMENTARY_CHARGE",
    "dwell_times",
    "flicker_noise",
    "random_telegraph",
    "read_noise",
    "shot_noise_std",
    "thermal_noise_std",
]

BOLTZMANN = 1.380649e-23  # J/K, exact (SI 2019)
ELEMENTARY_CHARGE = 1.602176634e-19  # C, exact (SI 2019)
MAX_SAMPLES = 1 << 26  # one trace of 64 Mi samples is 512 MB; refuse more up front


def thermal_noise_std(g, bandwidth, temperature=300.0) -> np.ndarray:
    """RMS thermal noise current ``sqrt(4 k T G df)`` in A of conductances ``g`` (S).

    Examples
    --------
    >>> f"{float(thermal_noise_std(10e-6, 1e6, 300.0)):.3e}"   # 10 uS over 1 MHz at 300 K
    '4.070e-10'
    """
    g = as_array("g", g, unit="S", low=0.0)
    df = as_scalar("bandwidth", bandwidth, unit="Hz", low=0.0, low_open=True)
    temp = as_scalar("temperature", temperature, unit="K", low=0.0, low_open=True, high=2000.0)
    return np.sqrt(4.0 * BOLTZMANN * temp * g * df)


def shot_noise_std(i, bandwidth) -> np.ndarray:
    """RMS shot noise current ``sqrt(2 q |I| df)`` in A of mean currents ``i`` (A)."""
    i = as_array("i", i, unit="A")
    df = as_scalar("bandwidth", bandwidth, unit="Hz", low=0.0, low_open=True)
    return np.sqrt(2.0 * ELEMENTARY_CHARGE * np.abs(i) * df)


def read_noise(g, v_read, bandwidth, rng, temperature=300.0, n_reads: int = 1) -> xr.Dataset:
    """Noisy read currents of cells of conductance ``g`` (S) at ``v_read`` (V).

    Thermal and shot noise are independent and Gaussian, so their variances add:
    ``sigma**2 = 4 k T G df + 2 q |G V| df``.  Returns ``i`` (dims ``read`` + g's dims,
    named ``cell`` for 1-D g) and ``sigma`` (A).
    """
    g = as_array("g", g, unit="S", low=0.0, ndim=(0, 1))
    v = as_scalar("v_read", v_read, unit="V")
    n = int(as_scalar("n_reads", n_reads, low=1, high=1e7))
    mean = g * v
    sigma = np.sqrt(thermal_noise_std(g, bandwidth, temperature) ** 2 + shot_noise_std(mean, bandwidth) ** 2)
    reads = mean + sigma * as_generator(rng).standard_normal((n,) + g.shape)
    cell = ("cell",) if g.ndim else ()
    return xr.Dataset(
        {
            "i": variable(("read",) + cell, reads, "A", "read current"),
            "i_mean": variable(cell, mean, "A", "noise-free read current"),
            "sigma": variable(cell, sigma, "A", "RMS read noise (thermal + shot)"),
        },
        attrs={"v_read": v, "bandwidth": float(bandwidth), "temperature": float(temperature)},
    )


def flicker_noise(n_samples: int, dt: float, psd_1hz: float, rng, alpha: float = 1.0, n_traces: int = 1,
                  unit: str = "A") -> xr.Dataset:
    """1/f**alpha noise traces by spectral synthesis.

    Parameters
    ----------
    n_samples : int
        Samples per trace (>= 16).
    dt : float, s
        Sampling interval.
    psd_1hz : float, unit**2/Hz
        One-sided PSD at 1 Hz (for a Hooge current noise, ``K_H I**2`` with ``K_H`` in 1).
    rng : int or numpy.random.Generator
    alpha : float
        Spectral exponent, in [0, 2]; 1 for flicker noise.
    n_traces : int
        Independent traces.
    unit : str
        Unit of the noise (``"A"`` for current, ``"V"``, ``"S"``).

    Returns
    -------
    xarray.Dataset
        ``noise`` on dims ``(trace, time)`` with zero mean (the DC bin is removed).
    """
    n = int(as_scalar("n_samples", n_samples, low=16, high=MAX_SAMPLES))
    dt = as_scalar("dt", dt, unit="s", low=0.0, low_open=True)
    s1 = as_scalar("psd_1hz", psd_1hz, unit=f"{unit}^2/Hz", low=0.0)
    alpha = as_scalar("alpha", alpha, low=0.0, high=2.0)
    m = int(as_scalar("n_traces", n_traces, low=1, high=1e6))
    white = as_generator(rng).standard_normal((m, n))
    spectrum = np.fft.rfft(white, axis=-1)
    f = np.fft.rfftfreq(n, dt)
    shape = np.zeros_like(f)
    # unit-variance white noise sampled at dt has one-sided PSD 2 dt
    shape[1:] = np.sqrt(s1 * f[1:] ** (-alpha) / (2.0 * dt))
    noise = np.fft.irfft(spectrum * shape, n=n, axis=-1)
    return xr.Dataset(
        {"noise": variable(("trace", "time"), noise, unit, f"1/f^{alpha:g} noise")},
        coords={"time": variable("time", np.arange(n) * dt, "s", "time")},
        attrs={"psd_1hz": s1, "alpha": alpha},
    )


@jit_parallel
def _telegraph_fill(dwell_low, dwell_high, start_high, dt, out):
    """Fill ``out[trace, k]`` with the state (0 low, 1 high) at time ``k dt``.

    Trace ``r`` starts in state ``start_high[r]`` and alternates dwells, taking the ``j``-th
    low dwell from ``dwell_low[r, j]`` and the ``j``-th high one from ``dwell_high[r, j]``.
    Returns the number of traces whose dwells ran out before the end (0 when complete).
    """
    m, n = out.shape
    short = np.zeros(m, dtype=np.int64)
    for r in prange(m):
        state = start_high[r]
        t_end = 0.0
        j_low = 0
        j_high = 0
        k = 0
        while k < n:
            if state == 1:
                if j_high >= dwell_high.shape[1]:
                    short[r] = 1
                    break
                t_end += dwell_high[r, j_high]
                j_high += 1
            else:
                if j_low >= dwell_low.shape[1]:
                    short[r] = 1
                    break
                t_end += dwell_low[r, j_low]
                j_low += 1
            while k < n and k * dt < t_end:
                out[r, k] = state
                k += 1
            state = 1 - state
    return short.sum()


def random_telegraph(n_samples: int, dt: float, tau_low: float, tau_high: float, amplitude: float, rng,
                     n_traces: int = 1, unit: str = "A") -> xr.Dataset:
    """Random telegraph noise: a two-state Markov process sampled every ``dt``.

    Parameters
    ----------
    n_samples : int
        Samples per trace.
    dt : float, s
        Sampling interval.
    tau_low, tau_high : float, s
        Mean dwell times in the low and high states (rates ``1/tau``).
    amplitude : float
        Step between the states, in ``unit`` (the low state is 0).
    rng : int or numpy.random.Generator
    n_traces : int
        Independent traces; each starts in the stationary distribution
        (high with probability ``tau_high / (tau_low + tau_high)``).

    Returns
    -------
    xarray.Dataset
        ``state`` (int8, 0/1) and ``noise`` (``amplitude * state``) on dims ``(trace, time)``.
    """
    n = int(as_scalar("n_samples", n_samples, low=1, high=MAX_SAMPLES))
    dt = as_scalar("dt", dt, unit="s", low=0.0, low_open=True)
    t_low = as_scalar("tau_low", tau_low, unit="s", low=0.0, low_open=True)
    t_high = as_scalar("tau_high", tau_high, unit="s", low=0.0, low_open=True)
    amp = as_scalar("amplitude", amplitude, unit=unit)
    m = int(as_scalar("n_traces", n_traces, low=1, high=1e6))
    rng = as_generator(rng)
    start = (rng.random(m) < t_high / (t_low + t_high)).astype(np.int64)
    duration = n * dt
    mean_pairs = duration / (t_low + t_high)
    n_dwell = int(mean_pairs + 6.0 * math.sqrt(mean_pairs) + 8)  # enough in all but ~1e-9 of traces
    out = np.zeros((m, n), dtype=np.int8)
    while True:
        dwell_low = rng.exponential(t_low, (m, n_dwell))
        dwell_high = rng.exponential(t_high, (m, n_dwell))
        if _telegraph_fill(dwell_low, dwell_high, start, dt, out) == 0:
            break
        n_dwell *= 2  # rare: redraw every trace with more dwells (still fixed by the seed)
    return xr.Dataset(
        {
            "state": variable(("trace", "time"), out, "1", "RTN state (0 low, 1 high)"),
            "noise": variable(("trace", "time"), amp * out, unit, "random telegraph noise"),
        },
        coords={"time": variable("time", np.arange(n) * dt, "s", "time")},
        attrs={"tau_low": t_low, "tau_high": t_high},
    )


def dwell_times(states, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Complete dwell times (s) in the low and high states of sampled 0/1 traces.

    ``states`` is ``(time,)`` or ``(trace, time)``; the first and last (censored) runs of each
    trace are dropped.  Returns ``(low_dwells, high_dwells)``.
    """
    s = np.asarray(states)
    if s.ndim not in (1, 2) or not np.isin(s, (0, 1)).all():
        raise InputError(f"states: expected a 1-D or 2-D array of 0/1, got shape {s.shape}")
    dt = as_scalar("dt", dt, unit="s", low=0.0, low_open=True)
    low, high = [], []
    for trace in np.atleast_2d(s).astype(np.int8):
        edges = np.flatnonzero(np.diff(trace)) + 1
        lengths = np.diff(edges)
        first = trace[edges[:-1]] if edges.size > 1 else np.empty(0, np.int8)
        low.append(lengths[first == 0])
        high.append(lengths[first == 1])
    return np.concatenate(low) * dt, np.concatenate(high) * dt
