"""Monte Carlo over device variability and noise: samples, means, spreads and their intervals.

``monte_carlo(fn, n, seed)`` calls ``fn(rng)`` for ``n`` independent random streams (sample
``i`` gets ``SeedSequence(seed, spawn_key=(i,))``, exactly as point ``i`` of a sweep does, so the
samples are the same on any number of workers) and summarises every metric it returns:

===========================  =========================================================
``<m>``                      the samples, with a ``sample`` dim
``<m>_mean``                 sample mean
``<m>_mean_low/high``        Student-t interval of the mean, ``mean -/+ t s / sqrt(n)``
``<m>_std``                  sample standard deviation (``ddof = 1``)
``<m>_std_low/high``         interval of the std: percentile bootstrap (default, no
                             assumption on the distribution) or the chi-square interval
                             ``s sqrt((n-1) / chi2_{1-a/2,n-1})`` ... (exact for normal data)
``<m>_quantile``             quantiles (``quantile`` dim; linear interpolation)
``<m>_quantile_low/high``    distribution-free order-statistic interval: ranks from the
                             Binomial(n, p) quantiles, so coverage is at least ``confidence``
                             up to the discreteness of the ranks
===========================  =========================================================

The intervals are at level ``confidence`` (two-sided).  Each metric keeps its own dims (for
instance ``col``): the statistics are taken over ``sample`` only.

References
----------
B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall (1993),
ch. 13 (percentile intervals).  H. A. David and H. N. Nagaraja, *Order Statistics*, 3rd ed.,
Wiley (2003), sec. 7.1 (distribution-free confidence intervals for quantiles).

Examples
--------
>>> from cimphys.montecarlo import monte_carlo
>>> ds = monte_carlo(lambda rng: {"g": rng.normal(1e-5, 1e-6)}, n=200, seed=1, scheduler="serial")
>>> bool(ds.g_mean_low < 1e-5 < ds.g_mean_high)
True
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .checks import as_scalar
from .errors import InputError
from .sweep import qualname, sweep

__all__ = ["monte_carlo", "summarize"]

_STD_METHODS = ("bootstrap", "chi2")
_BOOT_KEY = 0xB0075  # second entropy word of the bootstrap stream, apart from the sample streams


def monte_carlo(fn, n: int, seed: int = 0, *, confidence: float = 0.95, quantiles=(0.05, 0.5, 0.95),
                std_interval: str = "bootstrap", n_boot: int = 2000, scheduler=None, workers=None,
                store=None, progress=None, overwrite: bool = False) -> xr.Dataset:
    """Run ``fn(rng)`` ``n`` times and return the samples with their statistics.

    Parameters
    ----------
    fn : callable
        ``fn(rng) -> Dataset | dict`` of metrics (numbers or arrays, units from a Dataset).
    n : int
        Number of samples (>= 2).
    seed : int
        Root seed; sample ``i`` uses ``SeedSequence(seed, spawn_key=(i,))``.
    confidence : float
        Two-sided level of every interval, in (0, 1).
    quantiles : sequence of float
        Probabilities in (0, 1) of the reported quantiles.
    std_interval : {"bootstrap", "chi2"}
        Interval of the standard deviation (see module doc).
    n_boot : int
        Bootstrap replicates.
    scheduler, workers, store, progress, overwrite
        As for :func:`cimphys.sweep.sweep` (samples are the points of a sweep over ``sample``).

    Returns
    -------
    xarray.Dataset
        Samples along ``sample`` and the statistics listed in the module doc.
    """
    n = _check_int("n", n, 2)
    samples = sweep(_Sample(fn), seed=seed, scheduler=scheduler, workers=workers, store=store,
                    progress=progress, overwrite=overwrite, sample=np.arange(n))
    rng = np.random.default_rng([int(seed), _BOOT_KEY])
    return summarize(samples, confidence=confidence, quantiles=quantiles, std_interval=std_interval,
                     n_boot=n_boot, rng=rng)


class _Sample:
    """``fn(rng)`` seen by the sweep as a function of ``(sample, rng)``."""

    def __init__(self, fn):
        if not callable(fn):
            raise InputError(f"fn: expected a callable, got {fn!r:.80}")
        self.fn = fn
        self.__qualname__ = f"monte_carlo[{qualname(fn)}]"
        self.__module__ = "cimphys.montecarlo"

    def __call__(self, sample, rng):
        return self.fn(rng)


def summarize(samples: xr.Dataset, *, confidence: float = 0.95, quantiles=(0.05, 0.5, 0.95),
              std_interval: str = "bootstrap", n_boot: int = 2000, rng=None) -> xr.Dataset:
    """Add means, standard deviations, quantiles and their intervals over the ``sample`` dim.

    ``samples`` holds one or more variables with a ``sample`` dim (at least 2 samples).
    ``rng`` (a Generator or seed) drives the bootstrap.  See the module doc for the variables.
    """
    if "sample" not in samples.dims or samples.sizes["sample"] < 2:
        raise InputError("samples: expected a Dataset with a 'sample' dim of length >= 2")
    level = as_scalar("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    probs = np.atleast_1d(np.asarray(quantiles, dtype=float))
    if probs.ndim != 1 or not np.all((probs > 0) & (probs < 1)):
        raise InputError(f"quantiles: expected probabilities in (0, 1), got {quantiles!r}")
    if std_interval not in _STD_METHODS:
        raise InputError(f"std_interval: expected one of {_STD_METHODS}, got {std_interval!r}")
    n_boot = _check_int("n_boot", n_boot, 100)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    out = samples.copy()
    out = out.assign_coords(quantile=("quantile", probs, {"units": "1", "long_name": "probability"}))
    for name in [v for v in samples.data_vars if "sample" in samples[v].dims]:
        var = samples[name].transpose("sample", ...)
        dims, x = var.dims[1:], np.asarray(var.values, dtype=float)
        units, long = var.attrs.get("units", "unknown"), var.attrs.get("long_name", name)
        for key, (value, what, unit) in _statistics(x, level, probs, std_interval, n_boot, rng).items():
            qdims = ("quantile",) + dims if key.startswith("quantile") else dims
            out[f"{name}_{key}"] = xr.Variable(qdims, value, {"units": unit or units,
                                                             "long_name": f"{what} of {long}"})
    out.attrs.update({"confidence": level, "n_samples": int(samples.sizes["sample"]),
                      "std_interval": std_interval})
    return out


def _statistics(x, level, probs, std_interval, n_boot, rng) -> dict:
    from scipy import stats  # here, not at import: sample workers unpickle this module

    n = x.shape[0]
    alpha = 1.0 - level
    mean = x.mean(axis=0)
    std = x.std(axis=0, ddof=1)
    half = stats.t.ppf(1 - alpha / 2, n - 1) * std / np.sqrt(n)
    if std_interval == "chi2":
        low = std * np.sqrt((n - 1) / stats.chi2.ppf(1 - alpha / 2, n - 1))
        high = std * np.sqrt((n - 1) / stats.chi2.ppf(alpha / 2, n - 1))
    else:
        low, high = _bootstrap_std(x - mean, alpha, n_boot, rng)
    qs, q_low, q_high = _quantiles(x, probs, alpha)
    pct = f"{100 * level:g} %"
    return {
        "mean": (mean, "mean", None),
        "mean_low": (mean - half, f"{pct} t-interval low", None),
        "mean_high": (mean + half, f"{pct} t-interval high", None),
        "std": (std, "standard deviation", None),
        "std_low": (low, f"{pct} {std_interval} interval low, std", None),
        "std_high": (high, f"{pct} {std_interval} interval high, std", None),
        "quantile": (qs, "quantile", None),
        "quantile_low": (q_low, f"{pct} order-statistic interval low, quantile", None),
        "quantile_high": (q_high, f"{pct} order-statistic interval high, quantile", None),
    }


def _bootstrap_std(centred: np.ndarray, alpha: float, n_boot: int, rng) -> tuple:
    """Percentile bootstrap of the std from resampling counts: one matrix product, no loop."""
    n = centred.shape[0]
    flat = centred.reshape(n, -1)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)  # (n_boot, n)
    m1 = counts @ flat / n
    m2 = counts @ (flat * flat) / n
    boot = np.sqrt(np.maximum(m2 - m1 * m1, 0.0) * n / (n - 1))
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return low.reshape(centred.shape[1:]), high.reshape(centred.shape[1:])


def _quantiles(x: np.ndarray, probs: np.ndarray, alpha: float) -> tuple:
    from scipy import stats

    n = x.shape[0]
    ordered = np.sort(x, axis=0)
    qs = np.quantile(x, probs, axis=0)
    lo_rank = np.clip(stats.binom.ppf(alpha / 2, n, probs), 1, n).astype(int)  # 1-based ranks
    hi_rank = np.clip(stats.binom.ppf(1 - alpha / 2, n, probs) + 1, 1, n).astype(int)
    return qs, ordered[lo_rank - 1], ordered[hi_rank - 1]


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)
