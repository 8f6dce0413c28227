"""Characterise an ADC as a lab would: IEEE Std 1241 sine-wave tests -> INL, DNL, ENOB, SNDR.

Two coherent sine tests (``J`` cycles in ``n`` samples, ``gcd(J, n) = 1``, so the phases fall on
a uniform grid of ``n`` points and no spectral leakage occurs):

1. **Histogram test** (IEEE 1241 section 4.1.6.3): a sine that overdrives the full scale.  With
   ``Hc[k-1]`` the number of samples whose code is below ``k`` out of ``S``, the transition level is
   ``T[k] = C - A cos(pi Hc[k-1] / S)``.  DNL and INL follow with the end-point line:
   ``Q = (T[last] - T[1]) / (2**bits - 2)``, ``DNL[k] = (T[k+1] - T[k]) / Q - 1``,
   ``INL[k] = (T[k] - T[1]) / Q - (k - 1)`` (LSB).
2. **Sine-fit test** (IEEE 1241 section 4.1.4.1, three-parameter fit at the known frequency): a sine
   just inside the full scale; ``NAD`` is the rms residual of the codes after the fit,
   ``ENOB = log2(FSR / (NAD sqrt(12)))`` with ``FSR = 2**bits`` LSB, and
   ``SNDR = 20 log10(A_fit / sqrt(2) / NAD)``.

References
----------
.. [1] IEEE Std 1241-2010, doi:10.1109/IEEESTD.2011.5692956, sections 4.1.4 and 4.1.6.
.. [2] J. Blair, "Histogram measurement of ADC nonlinearities using sine waves",
   IEEE Trans. Instrum. Meas. 43, 373 (1994), doi:10.1109/19.293454.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..checks import as_scalar
from ..errors import InputError
from ..results import variable
from .adc import ADC

__all__ = ["characterise", "coherent_cycles", "histogram_transitions", "sine_fit"]


def coherent_cycles(n_samples: int, target: float) -> int:
    """The odd integer ``J`` nearest ``target`` with ``gcd(J, n_samples) = 1``."""
    j = max(1, int(round(target)) | 1)
    while math.gcd(j, n_samples) != 1:
        j += 2
    return j


def _stimulus(n: int, centre: float, amplitude: float, rng) -> tuple[np.ndarray, int]:
    cycles = coherent_cycles(n, n / 7.1)  # many cycles: every phase grid point visited once
    phase0 = rng.uniform(0.0, 2.0 * np.pi / n)  # off the grid so no sample sits on a level
    t = np.arange(n, dtype=np.float64)
    return centre + amplitude * np.sin(2.0 * np.pi * cycles * t / n + phase0), cycles


def histogram_transitions(codes: np.ndarray, bits: int, centre: float, amplitude: float) -> np.ndarray:
    """Transition levels T[1..2**bits-1] (stimulus units) from the codes of a sine histogram test."""
    counts = np.bincount(codes.reshape(-1), minlength=2**bits)
    below = np.cumsum(counts)[:-1]  # Hc[k-1]: samples with code < k, k = 1..2**bits-1
    return centre - amplitude * np.cos(np.pi * below / codes.size)


def sine_fit(y: np.ndarray, cycles: int) -> tuple[float, float]:
    """Three-parameter least-squares sine fit at a known frequency: (amplitude, rms residual)."""
    n = y.size
    w = 2.0 * np.pi * cycles * np.arange(n) / n
    basis = np.column_stack([np.cos(w), np.sin(w), np.ones(n)])
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    residual = y - basis @ coef
    return float(math.hypot(coef[0], coef[1])), float(np.sqrt(np.mean(residual**2)))


def characterise(adc: ADC, n_samples: int = 1 << 18, seed=0, overdrive: float = 0.05,
                 amplitude: float = 0.99) -> xr.Dataset:
    """INL/DNL (histogram test), ENOB and SNDR (sine-fit test) of ``adc`` (its first column's range).

    Parameters
    ----------
    adc : ADC
        The converter; a noisy one is driven with noise drawn from ``seed``.
    n_samples : int
        Samples per test (>= 64 * 2**bits so that every code gets hits).
    seed : int or numpy.random.Generator
        Seeds the stimulus phase and the converter noise.
    overdrive : float
        Histogram-test amplitude beyond full scale, as a fraction of the half range.
    amplitude : float
        Sine-fit test amplitude as a fraction of the half range (below 1: no clipping).

    Returns
    -------
    xarray.Dataset
        ``transition_level`` and ``inl`` over ``transition`` (k = 1..2**bits-1), ``dnl`` over
        ``code`` (1..2**bits-2), and scalars ``enob``, ``sndr``, ``max_abs_inl``, ``max_abs_dnl``.
    """
    n = int(n_samples)
    if n < 64 * adc.levels:
        raise InputError(f"n_samples: expected at least {64 * adc.levels} for {adc.bits} bits, got {n}")
    overdrive = as_scalar("overdrive", overdrive, low=0.0, high=1.0, low_open=True)
    amplitude = as_scalar("amplitude", amplitude, low=0.0, high=1.0, low_open=True)
    rng = np.random.default_rng(seed)
    one = adc.with_range(adc.lo[0], adc.hi[0])
    half = adc.levels / 2.0  # LSB; the unclipped span is [-1/2, 2**bits - 1/2)
    centre = (adc.levels - 1) / 2.0

    def run(amp_lsb):
        u, cycles = _stimulus(n, centre, amp_lsb, rng)
        return one.convert(one.lo[0] + u * one.lsb[0], rng=rng), cycles

    codes, _ = run(half * (1.0 + overdrive))
    t = histogram_transitions(codes, adc.bits, centre, half * (1.0 + overdrive))
    q = (t[-1] - t[0]) / (adc.levels - 2)
    dnl = np.diff(t) / q - 1.0
    inl = (t - t[0]) / q - np.arange(t.size)
    codes, cycles = run(half * amplitude)
    a_fit, nad = sine_fit(codes.astype(np.float64), cycles)
    nad = max(nad, 1e-300)
    enob = math.log2(adc.levels / (nad * math.sqrt(12.0)))
    sndr = 20.0 * math.log10(a_fit / math.sqrt(2.0) / nad)
    return xr.Dataset(
        {
            "transition_level": variable("transition", t, "LSB", "measured code-transition level T[k]"),
            "inl": variable("transition", inl, "LSB", "integral nonlinearity (end-point)"),
            "dnl": variable("code", dnl, "LSB", "differential nonlinearity"),
            "enob": variable((), enob, "bit", "effective number of bits (sine fit)"),
            "sndr": variable((), sndr, "dB", "signal to noise and distortion ratio"),
            "max_abs_inl": variable((), np.max(np.abs(inl)), "LSB", "max |INL|"),
            "max_abs_dnl": variable((), np.max(np.abs(dnl)), "LSB", "max |DNL|"),
        },
        coords={"transition": np.arange(1, adc.levels), "code": np.arange(1, adc.levels - 1)},
        attrs={"bits": adc.bits, "kind": adc.kind, "n_samples": n, "method": "IEEE Std 1241 sine histogram + 3-parameter sine fit"},
    )
