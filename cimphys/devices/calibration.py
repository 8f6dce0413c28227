"""Fitting device models to measured data: bounded least squares with confidence intervals.

:func:`fit` minimises ``sum(((y_model - y) / scale)**2)`` with
:func:`scipy.optimize.least_squares` (trust-region reflective, bounded).  Parameters that span
decades (currents, rate constants) are fitted as ``theta = ln(p)``, so that the optimiser
takes steps of comparable size in every parameter and never leaves the positive axis.
Confidence intervals come from the Jacobian at the optimum: ``cov(theta) = (J^T J)^-1 s**2``
with ``s**2 = sum(r**2) / (m - n)`` [1]_, and ``theta +- t_{0.975, m-n} sqrt(diag cov)``; a
log-space interval maps to ``exp(theta +- ...)`` (asymmetric in ``p``).

:func:`calibrate` does this for the parameters of a device :class:`~cimphys.cards.Card` and
returns a new card whose ``[provenance]`` says what was fitted, how, and the residual.

References
----------
.. [1] G. A. F. Seber, C. J. Wild, *Nonlinear Regression*, Wiley (1989), sec. 2.1 (asymptotic
   covariance of the least-squares estimator).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..cards import Card
from ..checks import as_array
from ..errors import ConvergenceError, InputError

__all__ = ["FitResult", "calibrate", "fit"]

CONFIDENCE = 0.95
LOG_SPAN_DECADES = 2.0  # a positive parameter whose bounds span more than this is fitted in log space


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters with their uncertainty.

    Attributes
    ----------
    names : tuple of str
    values : dict name -> float
        Best-fit values (in the parameters' own units).
    ci : dict name -> (low, high)
        95 % confidence intervals.
    stderr : dict name -> float
        Standard errors (delta method for log-space parameters).
    log_space : tuple of str
        Parameters fitted as ``ln(p)``.
    residual_rms : float
        RMS of the (scaled) residuals at the optimum, in the units of ``y / scale``.
    nfev : int
        Model evaluations.
    message : str
        The optimiser's termination message.
    covariance : ndarray
        ``s^2 (J^T J)^-1`` in the fitted (log or linear) space.  A parameter the data do not
        determine (``J`` singular to working precision along it) has an infinite variance and
        NaN covariances (undefined), and an interval of ``(0, inf)`` (log space) or
        ``(-inf, inf)``.
    """

    names: tuple[str, ...]
    values: Mapping[str, float]
    ci: Mapping[str, tuple[float, float]]
    stderr: Mapping[str, float]
    log_space: tuple[str, ...]
    residual_rms: float
    nfev: int
    message: str
    covariance: np.ndarray = dataclasses.field(repr=False, compare=False, default=None)


def _to_theta(p, is_log):
    return np.where(is_log, np.log(np.where(is_log, p, 1.0)), p)


def _from_theta(theta, is_log):
    return np.where(is_log, np.exp(np.where(is_log, theta, 0.0)), theta)


def _check_problem(names, p0, bounds, log):
    p0 = as_array("p0", p0, ndim=1)
    if p0.size != len(names) or len(set(names)) != len(names):
        raise InputError(f"p0: expected {len(names)} values for distinct names {list(names)}, got {p0.size}")
    try:
        low = np.broadcast_to(np.asarray(bounds[0], dtype=float), p0.shape).copy()
        high = np.broadcast_to(np.asarray(bounds[1], dtype=float), p0.shape).copy()
    except (TypeError, ValueError, IndexError):
        raise InputError(f"bounds: expected (low, high) with scalars or {p0.size} values each, got {bounds!r}") from None
    if np.isnan(low).any() or np.isnan(high).any():
        raise InputError(f"bounds: expected numbers (inf allowed), got {bounds!r}")
    bad = (p0 < low) | (p0 > high) | (low >= high)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"p0: {names[i]} = {p0[i]!r} not inside bounds [{low[i]!r}, {high[i]!r}]")
    if log is None:
        with np.errstate(divide="ignore"):
            log = [n for n, lo, hi in zip(names, low, high) if lo > 0 and np.log10(hi / lo) > LOG_SPAN_DECADES]
    unknown = set(log) - set(names)
    if unknown:
        raise InputError(f"log: {sorted(unknown)} are not fitted parameters {list(names)}")
    is_log = np.array([n in log for n in names])
    if np.any(is_log & (low <= 0)):
        i = int(np.argmax(is_log & (low <= 0)))
        raise InputError(f"bounds: log-space parameter {names[i]} needs a positive lower bound, got {low[i]!r}")
    return p0, low, high, is_log


def fit(forward: Callable[[Mapping[str, float], np.ndarray], np.ndarray], x, y, names: Sequence[str], p0,
        bounds, *, log: Sequence[str] | None = None, scale=None, x_scale="jac", max_nfev: int = 2000) -> FitResult:
    """Fit ``forward(params, x) ≈ y`` by bounded least squares.

    Parameters
    ----------
    forward : callable
        ``forward(params, x) -> y_model`` with ``params`` a dict of the fitted names; must
        return finite values of ``y``'s shape for every ``params`` inside the bounds.
    x, y : array_like
        Data (``y`` finite; ``x`` is passed through).
    names : sequence of str
        Parameters to fit.
    p0 : array_like
        Starting values (inside the bounds).
    bounds : (low, high)
        Scalars or one value per parameter.
    log : sequence of str, optional
        Parameters fitted in log space; default: positive ones whose bounds span more than
        two decades.
    scale : float or array_like, optional
        Residual scale (the data's standard deviation, or ``|y|`` for relative residuals);
        default the RMS of ``y``, so that residuals are of order one in any unit.

    Raises
    ------
    ConvergenceError
        When the optimiser stops without meeting its tolerances.
    """
    names = tuple(names)
    y = as_array("y", y)
    if scale is None:  # residuals of order 1 whatever the unit of y (S, A): the tolerances are relative
        rms = float(np.sqrt(np.mean(y**2)))
        scale = np.full_like(y, rms if rms > 0 else 1.0)
    else:
        scale = as_array("scale", scale, low=0.0, low_open=True) * np.ones_like(y)
    p0, low, high, is_log = _check_problem(names, p0, bounds, log)

    def residual(theta):
        p = _from_theta(theta, is_log)
        model = np.asarray(forward(dict(zip(names, map(float, p))), x), dtype=float)
        if model.shape != y.shape or not np.all(np.isfinite(model)):
            raise InputError(f"forward: returned shape {model.shape} / non-finite values for {dict(zip(names, p))}")
        return ((model - y) / scale).reshape(-1)

    from scipy import optimize

    sol = optimize.least_squares(residual, _to_theta(p0, is_log), bounds=(_to_theta(low, is_log), _to_theta(high, is_log)),
                                 x_scale=x_scale, max_nfev=max_nfev, method="trf")
    if sol.status <= 0:
        raise ConvergenceError(f"least_squares did not converge: {sol.message}", iterations=int(sol.nfev),
                               residual=float(np.sqrt(np.mean(sol.fun**2))))
    return _summarise(names, sol, is_log, y.size)


def _covariance(jac: np.ndarray, s2: float) -> np.ndarray:
    """Parameter covariance ``s^2 (J^T J)^-1`` from the singular values of ``J`` itself.

    Inverting ``J^T J`` squares ``J``'s condition number: a direction the data barely determine
    (k against a of ``k sinh(aV)`` on an ohmic line: cond(J) ~ 1e8) falls under a pseudo-inverse's
    cutoff and gets *zero* variance, so an undetermined parameter would be reported as known
    to eight digits.  Here a direction is dropped only when ``J`` is singular to working precision
    (NumPy's ``matrix_rank`` tolerance), and a parameter with any weight on such a direction
    gets an infinite variance: the data do not determine it.
    """
    _, sv, vt = np.linalg.svd(jac, full_matrices=False)
    tol = (sv.max(initial=0.0) * max(jac.shape) * np.finfo(float).eps) if sv.size else 0.0
    kept = sv > tol
    cov = (vt[kept].T / sv[kept] ** 2) @ vt[kept] * s2
    undetermined = (np.abs(vt[~kept]) > np.sqrt(np.finfo(float).eps)).any(axis=0)
    cov[undetermined, :] = cov[:, undetermined] = np.nan
    cov[undetermined, undetermined] = np.inf
    return cov


def _summarise(names, sol, is_log, m) -> FitResult:
    from scipy import stats

    n = len(names)
    dof = max(m - n, 1)
    s2 = float(np.sum(sol.fun**2)) / dof
    cov = _covariance(np.asarray(sol.jac, dtype=float), s2)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof))
    p = _from_theta(sol.x, is_log)
    # A parameter the data do not determine (k and a of k sinh(aV) fitted where aV << 1, say) has a
    # log-space interval wider than a float: its bound is +inf (or 0), the honest answer, not an overflow.
    with np.errstate(over="ignore"):
        lo = _from_theta(sol.x - t * se, is_log)
        hi = _from_theta(sol.x + t * se, is_log)
    stderr = np.where(is_log, p * se, se)
    return FitResult(
        names=names,
        values=MappingProxyType(dict(zip(names, map(float, p)))),
        ci=MappingProxyType({k: (float(a), float(b)) for k, a, b in zip(names, lo, hi)}),
        stderr=MappingProxyType(dict(zip(names, map(float, stderr)))),
        log_space=tuple(k for k, flag in zip(names, is_log) if flag),
        residual_rms=float(math.sqrt(np.mean(sol.fun**2))),
        nfev=int(sol.nfev),
        message=str(sol.message),
        covariance=cov,
    )


def calibrate(card: Card, forward: Callable[[Card, np.ndarray], np.ndarray], x, y, fit_names: Sequence[str], *,
              bounds: Mapping[str, tuple[float, float]] | None = None, log: Sequence[str] | None = None, scale=None,
              data: str = "measured data") -> tuple[Card, FitResult]:
    """Fit some parameters of a device card to data; return the refitted card and the fit.

    ``forward(card, x) -> y_model`` evaluates the model of a card (for example
    ``lambda c, v: SinhCell.from_card(c).current(v)``).  Bounds default to the ranges the
    card's model declares; the starting point is the card's current values.  The returned
    card has the fitted values and a ``[provenance]`` naming what was fitted, to what data,
    by which method, with the residual and the 95 % confidence intervals.
    """
    if not isinstance(card, Card):
        raise InputError(f"card: expected a cimphys.cards.Card, got {type(card).__name__}")
    names = tuple(fit_names)
    spec = card.spec
    declared = {p.name: p for p in spec.parameters}
    missing = [n for n in names if n not in declared or declared[n].kind != "float"]
    if missing or not names:
        raise InputError(f"fit_names: {missing or names} are not float parameters of model {card.model!r}")
    bounds = dict(bounds or {})
    low = [bounds.get(n, (declared[n].low, declared[n].high))[0] for n in names]
    high = [bounds.get(n, (declared[n].low, declared[n].high))[1] for n in names]
    p0 = [card.parameters[n] for n in names]

    def forward_params(params, xx):
        return forward(card.with_parameters(**params), xx)

    result = fit(forward_params, x, y, names, p0, (low, high), log=log, scale=scale)
    fitted = card.with_parameters(**result.values)
    return _with_provenance(fitted, result, data), result


def _with_provenance(card: Card, result: FitResult, data: str) -> Card:
    ci = "; ".join(f"{k} = {v:.6g} [{result.ci[k][0]:.6g}, {result.ci[k][1]:.6g}]" for k, v in result.values.items())
    prov = dict(card.provenance)
    prov.update(
        source=f"{prov['source']} (refitted by cimphys.devices.calibration)",
        fitted=f"{', '.join(result.names)} to {data}",
        method=("scipy.optimize.least_squares (trf), bounded"
                + (f", log space for {', '.join(result.log_space)}" if result.log_space else "")
                + f"; {int(CONFIDENCE * 100)} % CI from (J^T J)^-1 s^2"),
        residual=float(result.residual_rms),
        notes=f"fitted values and {int(CONFIDENCE * 100)} % CI: {ci}",
    )
    return dataclasses.replace(card, provenance=MappingProxyType(prov), path=None)
