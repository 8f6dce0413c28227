"""Time integration of memristive state equations under a voltage waveform, for many cells at once.

Interface
---------
Every dynamic model (:class:`~cimphys.devices.drift.LinearIonDrift`,
:class:`~cimphys.devices.team.TEAM`, :class:`~cimphys.devices.team.VTEAM`,
:class:`~cimphys.devices.yakopcic.Yakopcic`, :class:`~cimphys.devices.stanford_pku.StanfordPKU`)
is a :class:`~cimphys.devices.dynamic_model.DynamicModel` with

- ``current(v, state)``, ``conductance(v, state)`` (dI/dV), ``current_and_conductance(v, state)``
- ``rate(v, state)``: d(state)/dt in ``state_unit`` per second
- ``state_bounds`` ``(low, high)``, ``state_unit``, ``state_name``, ``state_long_name``
- ``thresholds`` (V), ``read_cell(state)`` (a crossbar cell at fixed state), ``from_card(card)``

``model_from_card(card)`` builds the right class from a device card, and
``integrate(model, waveform, state0, ...)`` here returns an ``xarray.Dataset`` with dims
``(time, cell)``: ``voltage`` (time), ``state``, ``current``, ``conductance`` (time, cell).
The same waveform drives every cell, optionally scaled per cell by ``v_scale``.

Method
------
Each cell is integrated independently (serially, or in blocks over Numba's threads with
``parallel=True``) by an embedded explicit
Runge-Kutta pair with error control: Dormand-Prince 5(4) (``method="rk45"``, default) or
Bogacki-Shampine 3(2) (``"rk23"``).  A step is accepted when the local error estimate is below
``atol_abs + rtol |x|`` with ``atol_abs = atol * (high - low)``.  The step never crosses a knot
of a piecewise-linear waveform, a report time, or the time where the cell voltage crosses one of
the model's threshold voltages (VTEAM ``v_on``/``v_off``, Yakopcic ``-V_n``/``V_p``): crossings
are located exactly on linear segments and by bisection on sinusoids, and the step is split
there.  Stretches where the model cannot move at any state (below threshold, or V = 0 for
drift models) are crossed in one step.  The state is kept in its bounds: stage states are
clipped, a rate that pushes a state at its bound outwards is set to zero (the bound holds), and
a step that overshoots a bound by more than ``atol_abs`` is rejected and shortened to land
near it, unless the time to reach the bound (by quadrature of ``dx / rate``) is shorter than the
step or than ``1e-9`` of the waveform span: then the state is set on the bound at the end of
a window of twice that time (an event located to within ``1e-9`` of the span).  A cell whose step size falls below ``1e-14`` of the waveform span, whose step count
exceeds ``max_steps``, or whose rate is not finite stops the run with ``ConvergenceError``.

Fixed steps (``method="euler"``, ``"heun"``, ``"rk4"``): every cell advances together on the
grid of the waveform's sample times (``waveform.t``, each interval cut into ``substeps``), as a
circuit simulator does with a fixed step; no error control, the state clipped into its bounds
at every stage, and a rate that is not finite stops the run naming the cell and the time.  For
pulse trains on many cells this is the fast path (forward Euler on 65,536 VTEAM cells: about
10x a NumPy loop of the same steps on one thread, benchmarks/bench_devices.py); its accuracy
is the user's choice of grid (orders 1, 2, 4, lower where a threshold or a knot of the waveform
falls inside a step).  See :mod:`cimphys.devices.fixed_step`.

References
----------
.. [1] J. R. Dormand, P. J. Prince, "A family of embedded Runge-Kutta formulae",
   J. Comput. Appl. Math. 6, 19 (1980). doi:10.1016/0771-050X(80)90013-3
.. [2] P. Bogacki, L. F. Shampine, "A 3(2) pair of Runge-Kutta formulas", Appl. Math. Lett. 2,
   321 (1989). doi:10.1016/0893-9659(89)90079-7
.. [3] E. Hairer, S. P. Norsett, G. Wanner, "Solving Ordinary Differential Equations I", 2nd ed.,
   Springer (1993), sec. II.4 (automatic step size control).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from .._numba import jit, jit_parallel, prange
from ..checks import as_array, as_scalar
from ..errors import ConvergenceError, InputError
from ..results import variable
from ._dispatch import _iv, _quiet, _rate, _thresholds
from .dynamic_model import DynamicModel
from .fixed_step import FIXED_METHODS, ORDER, run_fixed
from .waveforms import Waveform, pulse_train, pwl, sinusoid, triangle

__all__ = ["METHODS", "Waveform", "integrate", "model_from_card", "pulse_train", "pwl", "sinusoid", "triangle"]

# Digest of the model kernel sources this module's kernels inline (see _dispatch.py).
KERNEL_SOURCES = "5acadc9eafc5260b"

# Cells from which integrate() spreads over threads by default: a cell of a pulse train costs
# microseconds, so a few thousand cells outweigh a thread-pool launch (tens of microseconds)
# many times over, while small calls (write-verify loops, tests) stay serial.
PARALLEL_MIN_CELLS = 4096

# The fixed-step path costs about a nanosecond per cell and step and threads over blocks of
# fixed_step.BLOCK (4096) cells: from 4 blocks on, each of two threads has at least two.
FIXED_PARALLEL_MIN_CELLS = 16 * 1024

STATUS = {1: "step size fell below its minimum", 2: "too many steps", 3: "rate is not finite"}


def _tableau(a, b, b_low, c):
    s = len(b)
    tab = np.zeros((s + 3, s))
    for i, row in enumerate(a):
        tab[i, : len(row)] = row
    tab[s] = b
    tab[s + 1] = np.asarray(b) - np.asarray(b_low)
    tab[s + 2] = c
    return tab


# Dormand-Prince 5(4): the 5th-order solution is propagated; FSAL (last stage = next first).
_DP45 = _tableau(
    [[], [1 / 5], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9],
     [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
     [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
     [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0],
    [5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40],
    [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1],
)
# Bogacki-Shampine 3(2), FSAL.
_BS23 = _tableau(
    [[], [1 / 2], [0, 3 / 4], [2 / 9, 1 / 3, 4 / 9]],
    [2 / 9, 1 / 3, 4 / 9, 0],
    [7 / 24, 1 / 4, 1 / 3, 1 / 8],
    [0, 1 / 2, 3 / 4, 1],
)
METHODS = {"rk45": (_DP45, 4), "rk23": (_BS23, 2)}  # tableau, order of the error estimator


@jit(inline="always")
def _volt(wave, ta, va, sl, t):
    """Applied voltage at time t on the grid interval from ta (voltage va, slope sl V/s)."""
    if wave[0] == 0.0:
        return va + sl * (t - ta)
    return wave[4] + wave[1] * math.sin(wave[2] * t + wave[3])


@jit(inline="always")
def _crossing(wave, ta, va, sl, scale, th, t0, t1):
    """Time in (t0, t1) where scale*v(t) crosses th, or -1.0 if the ends do not bracket it."""
    f0 = scale * _volt(wave, ta, va, sl, t0) - th
    f1 = scale * _volt(wave, ta, va, sl, t1) - th
    if f0 == 0.0 or f1 == 0.0 or (f0 > 0.0) == (f1 > 0.0):
        return -1.0
    if wave[0] == 0.0:
        return t0 + (t1 - t0) * f0 / (f0 - f1)
    lo, hi = t0, t1
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        fm = scale * _volt(wave, ta, va, sl, mid) - th
        if (fm > 0.0) == (f0 > 0.0):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * abs(hi) + 1e-300:
            break
    return 0.5 * (lo + hi)


@jit(inline="always")
def _prate(mid, v, x, P, k, lo, hi):
    """Rate projected onto the bounds: a state at a bound is not pushed beyond it."""
    xc = min(max(x, lo), hi)
    r = _rate(mid, v, xc, P, k)
    if (xc >= hi and r > 0.0) or (xc <= lo and r < 0.0):
        return 0.0
    return r


@jit
def _arrival_time(mid, P, k, wave, ta, va, sl, scale, t, hs, x, r0, lo, hi):
    """Time for the state, moving with the sign of r0, to reach its bound; inf if it may not.

    ``T = integral dx / r(x)`` by composite Gauss-Legendre quadrature (8 panels of 4 points)
    at the voltages of both ends of the step, taking the slower.  The rate must keep its sign on
    the way and still push outwards at the bound (so that the bound then holds the state); a
    bound where the rate vanishes (a closing window) is never reached in finite time.
    """
    inf = math.inf
    if r0 == 0.0:
        return inf
    bound = hi if r0 > 0.0 else lo
    dist = bound - x
    nodes = (0.0694318442029737, 0.3300094782075719, 0.6699905217924281, 0.9305681557970263)
    weights = (0.1739274225687269, 0.3260725774312731, 0.3260725774312731, 0.1739274225687269)
    slowest = 0.0
    for e in range(2):
        v = scale * _volt(wave, ta, va, sl, t + e * hs)
        rb = _rate(mid, v, bound, P, k)
        if rb == 0.0 or (rb > 0.0) != (r0 > 0.0):
            return inf
        total = 0.0
        for panel in range(8):
            for q in range(4):
                r = _rate(mid, v, x + (panel + nodes[q]) * dist / 8.0, P, k)
                if r == 0.0 or (r > 0.0) != (r0 > 0.0):
                    return inf
                total += weights[q] / r
        slowest = max(slowest, total * dist / 8.0)
    return slowest


@jit(inline="always")
def _piece(mid, P, k, wave, ta, va, sl, scale, t0, t1, x, h, tab, opts, stage):
    """Integrate one smooth piece [t0, t1]; return (x, h, steps, status)."""
    lo = P[0, k]
    hi = P[1, k]
    rtol = opts[0]
    atol = opts[1] * (hi - lo)
    h_min = opts[2]
    expo = opts[3]
    s = tab.shape[1]
    steps = 0
    t = t0
    vm = scale * _volt(wave, ta, va, sl, 0.5 * (t0 + t1))
    if wave[0] == 0.0 and _quiet(mid, scale * _volt(wave, ta, va, sl, t0), P, k) \
            and _quiet(mid, vm, P, k) and _quiet(mid, scale * _volt(wave, ta, va, sl, t1), P, k):
        return x, h, 0, 0  # linear voltage, quiet at both ends and the middle: no motion
    have_first = False
    while t < t1:
        span = t1 - t
        last = h >= span * (1.0 - 1e-12)
        hs = span if last else h
        if not have_first:
            stage[0] = _prate(mid, scale * _volt(wave, ta, va, sl, t), x, P, k, lo, hi)
        for i in range(1, s):
            xs = x
            for j in range(i):
                xs += hs * tab[i, j] * stage[j]
            ti = t + tab[s + 2, i] * hs
            stage[i] = _prate(mid, scale * _volt(wave, ta, va, sl, ti), xs, P, k, lo, hi)
        xn = x
        err = 0.0
        for j in range(s):
            xn += hs * tab[s, j] * stage[j]
            err += hs * tab[s + 1, j] * stage[j]
        steps += 1
        if not (math.isfinite(xn) and math.isfinite(err)):
            return x, h, steps, 3
        sc = atol + rtol * max(abs(x), abs(xn))
        en = abs(err) / sc
        outside = xn > hi + atol or xn < lo - atol
        arrival = math.inf
        if outside or en > 1.0:
            arrival = _arrival_time(mid, P, k, wave, ta, va, sl, scale, t, hs, x, stage[0], lo, hi)
        if 2.0 * arrival <= max(hs, 1e5 * h_min):
            # event: the state reaches its bound within [t, t + 2T] and is held there; jump to
            # the end of that window (or of the step) with the state at the bound
            jump = max(hs, 2.0 * arrival)
            t = t1 if jump >= span * (1.0 - 1e-12) else t + jump
            x = hi if stage[0] > 0.0 else lo
            have_first = False
        elif outside:
            bound = hi if xn > hi else lo
            frac = (bound - x) / (xn - x)
            h = hs * min(0.9, max(0.05, frac))  # land just short of the bound
            have_first = True
        elif en <= 1.0:
            t = t1 if last else t + hs
            x = min(max(xn, lo), hi)
            grow = 5.0 if en == 0.0 else min(5.0, max(0.2, 0.9 * en ** (-expo)))
            h = max(hs * grow, h) if last else hs * grow
            stage[0] = stage[s - 1]  # FSAL: last stage is the next step's first
            have_first = opts[5] != 0.0 and x == xn
        else:
            h = hs * max(0.2, 0.9 * en ** (-expo))
            have_first = True
        if h < h_min and not (en <= 1.0 and xn <= hi + atol and xn >= lo - atol):
            return x, h, steps, 1  # a rejected step cannot shrink any further
        if steps > opts[4]:
            return x, h, steps, 2
    return x, h, steps, 0


@jit
def _integrate(mid, P, wave, tgrid, vgrid, rec, x0, vscale, tab, opts, xrec, status, nsteps, c0, c1):
    """Integrate cells c0 .. c1-1 over the grid; fill xrec[:, c], status[c], nsteps[c]."""
    nk = P.shape[1]
    ns = vscale.size
    s = tab.shape[1]
    stage = np.empty(s)
    for c in range(c0, c1):
        k = c % nk
        scale = vscale[c % ns]
        x = min(max(x0[c], P[0, k]), P[1, k])  # within 1e-9 of the range: onto the bound
        h = tgrid[-1] - tgrid[0]
        count = 0
        if rec[0] >= 0:
            xrec[rec[0], c] = x
        nth, th_a, th_b = _thresholds(mid, P, k)
        for g in range(tgrid.size - 1):
            ta = tgrid[g]
            tb = tgrid[g + 1]
            va = vgrid[g]
            vb = vgrid[g + 1]
            sl = (vb - va) / (tb - ta)  # grid times strictly increase
            if wave[0] == 0.0 and _quiet(mid, scale * va, P, k) and _quiet(mid, scale * vb, P, k):
                # linear voltage, quiet at both ends: quiet throughout (each model's quiet set
                # is an interval of voltage), so the state is constant; no crossings, no stages
                if rec[g + 1] >= 0:
                    xrec[rec[g + 1], c] = x
                continue
            # split [ta, tb] where the cell voltage crosses a threshold
            c1 = -1.0
            c2 = -1.0
            if nth > 0:
                c1 = _crossing(wave, ta, va, sl, scale, th_a, ta, tb)
                c2 = _crossing(wave, ta, va, sl, scale, th_b, ta, tb)
                if c1 > c2:
                    c1, c2 = c2, c1
            b1 = c1 if ta < c1 < tb else tb
            b2 = c2 if ta < c2 < tb else tb
            if b1 > b2:
                b1, b2 = b2, b1
            t0 = ta
            for piece in range(3):
                t1 = b1 if piece == 0 else (b2 if piece == 1 else tb)
                if t1 <= t0:
                    continue
                x, h, used, st = _piece(mid, P, k, wave, ta, va, sl, scale, t0, t1, x, h, tab, opts, stage)
                count += used
                if st == 0 and count > opts[4]:
                    st = 2
                if st != 0:
                    status[c] = st
                    break
                t0 = t1
            if status[c] != 0:
                break
            if rec[g + 1] >= 0:
                xrec[rec[g + 1], c] = x
        nsteps[c] = count


@jit_parallel
def _integrate_parallel(mid, P, wave, tgrid, vgrid, rec, x0, vscale, tab, opts, xrec, status, nsteps, c0, c1):
    """As :func:`_integrate`, the cells split in blocks over Numba's threads."""
    blocks = 64
    n = c1 - c0
    for b in prange(blocks):
        _integrate(mid, P, wave, tgrid, vgrid, rec, x0, vscale, tab, opts, xrec, status, nsteps,
                   c0 + b * n // blocks, c0 + (b + 1) * n // blocks)


@jit
def _chord(mid, v, x, P, vscale, i, g):
    """Current and chord conductance I/V (dI/dV at V = 0) at recorded times x[time, cell]."""
    nt, nc = x.shape
    nk = P.shape[1]
    ns = vscale.size
    for c in range(nc):
        for t in range(nt):
            vc = v[t] * vscale[c % ns]
            cur, dg = _iv(mid, vc, x[t, c], P, c % nk)
            i[t, c] = cur
            g[t, c] = dg if vc == 0.0 else cur / vc


def model_from_card(card) -> DynamicModel:
    """The dynamic model a device card describes (``[model] name`` chooses the class)."""
    from .drift import LinearIonDrift
    from .stanford_pku import StanfordPKU
    from .team import TEAM, VTEAM
    from .yakopcic import Yakopcic

    classes = {cls.spec.name: cls for cls in (LinearIonDrift, TEAM, VTEAM, Yakopcic, StanfordPKU)}
    if card.model not in classes:
        raise InputError(f"card {card.name!r}: model {card.model!r} has no state dynamics; "
                         f"expected one of {sorted(classes)}")
    return classes[card.model].from_card(card)


def _record_rows(n_out: int, record) -> np.ndarray:
    """Indices of report times to keep for ``record`` = "all", "final" or every k-th (int)."""
    if isinstance(record, str):
        if record == "all":
            return np.arange(n_out)
        if record == "final":
            return np.array([n_out - 1])
        raise InputError(f"record: expected 'all', 'final' or a positive int, got {record!r}")
    if isinstance(record, (bool, float)) or not isinstance(record, (int, np.integer)) or record < 1:
        raise InputError(f"record: expected 'all', 'final' or a positive int, got {record!r}")
    rows = np.arange(0, n_out, int(record))
    return rows if rows[-1] == n_out - 1 else np.append(rows, n_out - 1)


def _grid(waveform: Waveform, t_keep: np.ndarray):
    """Integration grid: knots of a PWL waveform plus kept report times; voltages at the grid."""
    if waveform.kind == "pwl":
        kt = waveform.knots_t
        inside = kt[(kt > waveform.t[0]) & (kt < t_keep[-1])]
        grid = np.union1d(t_keep, inside)
    else:
        grid = np.union1d(t_keep, [waveform.t[0]])
    grid = np.union1d(grid, [waveform.t[0]])
    return np.ascontiguousarray(grid), np.ascontiguousarray(waveform(grid))


def integrate(model: DynamicModel, waveform: Waveform, state0, *, record="all", method="rk45",
              rtol=1e-6, atol=1e-9, max_steps=1_000_000, v_scale=None,
              quantities=("state", "current", "conductance"), parallel=None, substeps=1,
              labelled=True) -> xr.Dataset:
    """Integrate the state of every cell of ``model`` under ``waveform``.

    Parameters
    ----------
    model : DynamicModel
        The device model (per-cell parameters allowed: ``K`` sets for ``n`` cells, ``n % K == 0``).
    waveform : Waveform
        Applied voltage (V) from ``waveform.t[0]`` to ``waveform.t[-1]``.
    state0 : float or array_like
        Initial state of each cell (``model.state_unit``); its size is the number of cells.
    record : "all", "final" or int
        Report times kept: all, the last only, or every k-th (and the last).  Memory of the
        result is ``len(kept) x cells`` per variable; the integration itself stores nothing else.
    method : {"rk45", "rk23", "euler", "heun", "rk4"}
        Embedded Runge-Kutta pair with error control (``"rk45"``, ``"rk23"``), or an explicit
        fixed-step method on the grid of the waveform's sample times (``waveform.t``; choose
        them with ``waveform.with_times``), see :mod:`cimphys.devices.fixed_step`.
    rtol, atol : float
        Local error tolerance: ``atol * (high - low) + rtol * |state|`` per step (adaptive
        methods only).
    max_steps : int
        Attempted steps allowed per cell before :class:`ConvergenceError` (adaptive only).
    v_scale : float or array_like, optional
        Per-cell factor on the applied voltage (e.g. per-cell pulse amplitudes).
    quantities : tuple of str
        Which of ``"state"``, ``"current"``, ``"conductance"`` to return.
    parallel : bool or None
        Spread the cells over Numba's threads (compiles a second kernel on first use).  None
        (default): when there are at least ``PARALLEL_MIN_CELLS`` cells
        (``FIXED_PARALLEL_MIN_CELLS`` for the fixed-step methods) and more than one thread.
        Results are the same either way (each cell is integrated alone).
    substeps : int
        Fixed-step methods: equal steps per interval of ``waveform.t`` (default 1).
    labelled : bool
        False: return only the recorded states, a plain ``(time, cell)`` array (adaptive
        methods), for callers that integrate in a loop (building the Dataset costs ~ms).

    Returns
    -------
    xarray.Dataset
        dims ``(time, cell)``; ``voltage`` (time) is the applied waveform.

    Raises
    ------
    ConvergenceError
        If any cell cannot meet the tolerance (names the cell and the reason).

    Examples
    --------
    >>> from cimphys.cards import load_device
    >>> model = model_from_card(load_device("kvatinsky2015_vteam_pickett"))
    >>> ds = integrate(model, pulse_train(0.35, 1e-6, 5), [0.0, 1e-9], record="final")
    >>> ds.state.dims, bool((ds.state.values > [0.0, 1e-9]).all())
    (('time', 'cell'), True)
    """
    if not isinstance(model, DynamicModel):
        raise InputError(f"model: expected a DynamicModel, got {type(model).__name__}")
    if not isinstance(waveform, Waveform):
        raise InputError(f"waveform: expected a Waveform, got {type(waveform).__name__}")
    if method not in METHODS and method not in FIXED_METHODS:
        raise InputError(f"method: expected one of {sorted(METHODS) + sorted(FIXED_METHODS)}, got {method!r}")
    bad = set(quantities) - {"state", "current", "conductance"}
    if bad or not quantities:
        raise InputError(f"quantities: expected some of state, current, conductance, got {quantities!r}")
    rtol = as_scalar("rtol", rtol, low=1e-13, high=1.0)
    atol = as_scalar("atol", atol, low=1e-15, high=1.0)
    max_steps = int(as_scalar("max_steps", max_steps, low=1, high=1e12))
    try:
        x0 = np.ascontiguousarray(state0, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"state0: expected numbers in {model.state_unit}, got {state0!r:.80}") from exc
    if x0.size == 0:
        raise InputError(f"state0: expected the initial state of at least one cell ({model.state_unit}), got {state0!r:.80}")
    model._check_state(x0)  # finite and within bounds, without temporaries
    vs = np.ones(1) if v_scale is None else as_array("v_scale", v_scale, ndim=(0, 1)).reshape(-1)
    if vs.size not in (1, x0.size):
        raise InputError(f"v_scale: expected 1 or {x0.size} values, got {vs.size}")
    rows = _record_rows(waveform.t.size, record)
    t_keep = waveform.t[rows]
    if parallel is None:
        import numba

        fewest = FIXED_PARALLEL_MIN_CELLS if method in FIXED_METHODS else PARALLEL_MIN_CELLS
        parallel = x0.size >= fewest and numba.get_num_threads() > 1
    if method not in FIXED_METHODS and not (isinstance(substeps, (int, np.integer)) and not isinstance(substeps, bool)
                                            and substeps == 1):
        raise InputError(f"substeps: only the fixed-step methods {sorted(FIXED_METHODS)} take it, got "
                         f"{substeps!r} with method {method!r}")
    if method in FIXED_METHODS:
        if not labelled:
            raise InputError(f"labelled: only the adaptive methods {sorted(METHODS)} return plain arrays")
        return _integrate_fixed(model, waveform, x0, vs, v_scale is not None, rows, method, substeps,
                                bool(parallel), quantities)
    # A sinusoid keeps every report time as a step boundary even when not recorded, so that a
    # first trial step can never stride over whole periods; a PWL waveform has its knots.
    keep_all = isinstance(record, str) and record == "all" or waveform.kind == "sine"
    grid, vgrid = _grid(waveform, waveform.t if keep_all else t_keep)
    rec = np.full(grid.size, -1, dtype=np.int64)
    rec[np.searchsorted(grid, t_keep)] = np.arange(t_keep.size)
    tab, order = METHODS[method]
    span = float(grid[-1] - grid[0])
    opts = np.array([rtol, atol, 1e-14 * span, 1.0 / (order + 1), float(max_steps), 1.0])
    xrec = np.empty((t_keep.size, x0.size))
    status = np.zeros(x0.size, dtype=np.int8)
    nsteps = np.zeros(x0.size, dtype=np.int32)
    kernel = _integrate_parallel if parallel else _integrate
    kernel(int(model.model_id), model._P, waveform.encoded(), grid, vgrid, rec, x0, vs, tab, opts,
           xrec, status, nsteps, 0, x0.size)
    if status.any():
        c = int(np.argmax(status != 0))
        raise ConvergenceError(
            f"integrate: cell {c} ({type(model).__name__}, {method}, rtol={rtol:g}) failed: "
            f"{STATUS[int(status[c])]}; {int((status != 0).sum())} cell(s) failed",
            iterations=int(nsteps[c]), residual=float("nan"),
        )
    if not labelled:
        return xrec
    steps_total, steps_max = int(nsteps.sum(dtype=np.int64)), int(nsteps.max())
    del status, nsteps
    return _dataset(model, waveform, t_keep, xrec, vs, v_scale is not None, quantities,
                    {"method": method, "rtol": rtol, "atol": atol, "steps_total": steps_total,
                     "steps_max_per_cell": steps_max})


def _integrate_fixed(model, waveform, x0, vs, has_scale, rows, method, substeps, parallel, quantities):
    """The fixed-step branch of :func:`integrate` (checks its own arguments)."""
    if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or not 1 <= substeps <= 1_000_000:
        raise InputError(f"substeps: expected an integer in [1, 1e6], got {substeps!r}")
    t = np.asarray(waveform.t, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0.0):
        raise InputError(f"waveform.t: expected at least 2 finite, strictly increasing times (s), got {t[:5]!r}")
    xrec, cell, step, grid = run_fixed(model, waveform, x0, vs, rows, method, int(substeps), parallel)
    if cell >= 0:
        raise ConvergenceError(
            f"integrate: cell {cell} ({type(model).__name__}, {method}) failed: rate is not finite "
            f"in the step from t = {grid[step]:.6g} s",
            iterations=step, residual=float("nan"),
        )
    h = np.diff(grid)
    return _dataset(model, waveform, waveform.t[rows], xrec, vs, has_scale, quantities,
                    {"method": method, "order": ORDER[method], "steps": int(h.size), "substeps": int(substeps),
                     "dt_min": float(h.min()), "dt_max": float(h.max()),
                     "steps_total": int(h.size) * x0.size, "steps_max_per_cell": int(h.size)})


def _dataset(model, waveform, t_keep, xrec, vs, has_scale, quantities, attrs) -> xr.Dataset:
    v = np.ascontiguousarray(waveform(t_keep))
    data = {"voltage": variable(("time",), v, "V", "applied voltage")}
    if "current" in quantities or "conductance" in quantities:
        i = np.empty_like(xrec)
        g = np.empty_like(xrec)
        _chord(int(model.model_id), v, xrec, model._P, vs, i, g)
        if "current" in quantities:
            data["current"] = variable(("time", "cell"), i, "A", "device current")
        if "conductance" in quantities:
            data["conductance"] = variable(("time", "cell"), g, "S", "chord conductance I/V (dI/dV at 0 V)")
    if "state" in quantities:
        data["state"] = variable(("time", "cell"), xrec, model.state_unit, model.state_long_name,
                                 symbol=model.state_name)
    if has_scale:
        data["v_scale"] = variable(("cell",), vs if vs.size > 1 else np.full(xrec.shape[1], vs[0]), "1",
                                   "per-cell factor on the applied voltage")
    coords = {"time": variable(("time",), t_keep, "s", "time")}  # cells are positional
    return xr.Dataset(data, coords=coords, attrs={"model": type(model).__name__, **attrs})

