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
The Runge-Kutta pairs and the step-size control: :mod:`cimphys.devices.adaptive_step`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..checks import as_array, as_scalar
from ..errors import ConvergenceError, InputError
from ..results import variable
from .adaptive_step import METHODS, STATUS, chord_table, integrate_cells, integrate_cells_parallel
from .dynamic_model import DynamicModel, model_class
from .fixed_step import FIXED_METHODS, ORDER, run_fixed
from .waveforms import Waveform, pulse_train, pwl, sinusoid, triangle

__all__ = ["METHODS", "Waveform", "integrate", "model_from_card", "pulse_train", "pwl", "sinusoid", "triangle"]


# Cells from which integrate() spreads over threads by default: a cell of a pulse train costs
# microseconds, so a few thousand cells outweigh a thread-pool launch (tens of microseconds)
# many times over, while small calls (write-verify loops, tests) stay serial.
PARALLEL_MIN_CELLS = 4096

# The fixed-step path costs about a nanosecond per cell and step and threads over blocks of
# fixed_step.BLOCK (4096) cells: from 4 blocks on, each of two threads has at least two.
FIXED_PARALLEL_MIN_CELLS = 16 * 1024

def model_from_card(card) -> DynamicModel:
    """The dynamic model a device card describes (``[model] name`` chooses the class,
    :func:`~cimphys.devices.dynamic_model.model_class`)."""
    return model_class(card).from_card(card)


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
    x0, vs, rtol, atol, max_steps = _checked_inputs(model, waveform, state0, method, quantities, rtol, atol,
                                                    max_steps, v_scale)
    rows = _record_rows(waveform.t.size, record)
    t_keep = waveform.t[rows]
    parallel = _parallel(parallel, method, x0.size)
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
    xrec, nsteps = _integrate_adaptive(model, waveform, x0, vs, waveform.t if keep_all else t_keep, t_keep, method,
                                       (rtol, atol, max_steps), parallel)
    if not labelled:
        return xrec
    return _dataset(model, waveform, t_keep, xrec, vs, v_scale is not None, quantities,
                    {"method": method, "rtol": rtol, "atol": atol, "steps_total": int(nsteps.sum(dtype=np.int64)),
                     "steps_max_per_cell": int(nsteps.max())})


def _checked_inputs(model, waveform, state0, method, quantities, rtol, atol, max_steps, v_scale):
    """The arguments of :func:`integrate` checked: ``(x0, v_scale, rtol, atol, max_steps)``."""
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
    return x0, vs, rtol, atol, max_steps


def _parallel(parallel, method: str, cells: int) -> bool:
    """Whether to spread the cells over Numba's threads (``parallel=None``: from enough cells on)."""
    if parallel is not None:
        return parallel
    import numba

    fewest = FIXED_PARALLEL_MIN_CELLS if method in FIXED_METHODS else PARALLEL_MIN_CELLS
    return cells >= fewest and numba.get_num_threads() > 1


def _integrate_adaptive(model, waveform, x0, vs, t_bounds, t_keep, method, tolerances, parallel):
    """The embedded Runge-Kutta kernel over every cell, with step boundaries at ``t_bounds`` (s):
    the states at ``t_keep`` ``(time, cell)`` and the steps per cell; raises
    :class:`ConvergenceError` naming the first cell that failed."""
    rtol, atol, max_steps = tolerances
    grid, vgrid = _grid(waveform, t_bounds)
    rec = np.full(grid.size, -1, dtype=np.int64)
    rec[np.searchsorted(grid, t_keep)] = np.arange(t_keep.size)
    tab, order = METHODS[method]
    span = float(grid[-1] - grid[0])
    opts = np.array([rtol, atol, 1e-14 * span, 1.0 / (order + 1), float(max_steps), 1.0])
    xrec = np.empty((t_keep.size, x0.size))
    status = np.zeros(x0.size, dtype=np.int8)
    nsteps = np.zeros(x0.size, dtype=np.int32)
    kernel = integrate_cells_parallel if parallel else integrate_cells
    kernel(int(model.model_id), model._P, waveform.encoded(), grid, vgrid, rec, x0, vs, tab, opts,
           xrec, status, nsteps, 0, x0.size)
    if status.any():
        c = int(np.argmax(status != 0))
        raise ConvergenceError(
            f"integrate: cell {c} ({type(model).__name__}, {method}, rtol={rtol:g}) failed: "
            f"{STATUS[int(status[c])]}; {int((status != 0).sum())} cell(s) failed",
            iterations=int(nsteps[c]), residual=float("nan"),
        )
    return xrec, nsteps


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
        chord_table(int(model.model_id), v, xrec, model._P, vs, i, g)
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

