"""Newton-Raphson on the full crossbar network with nonlinear cells.

Unknowns are every word-line and bit-line node voltage.  The wires, drivers and sense
resistors are linear; only the cells are not.  Each Newton iteration linearises every cell
at the current node voltages into the stamp of :mod:`cimphys.circuits.nodal`::

    I_cell ~= a * v_wl - b * v_bl + c,   a = dI/dv_wl,  b = -dI/dv_bl,
                                         c = I(v) - a * v_wl + b * v_bl

and the fast linear solver (:func:`cimphys.circuits.nodal.solve_linear`) returns the Newton
update of the whole network exactly.  Two-terminal cells (any
:class:`cimphys.devices.TwoTerminalCell`, current a function of ``v_wl - v_bl``) have
``a = b = dI/dV``; three-terminal composites (the 1T1R cell, whose gate and bulk are
referenced to ground) provide ``stamp(v_wl, v_bl) -> (I, a, b)`` with ``a != b``.

Convergence is declared on both measures SPICE uses:

* **residual (A)**: the largest KCL imbalance at any node.  The linear solve satisfies KCL
  with the linearised cell currents (to its own tolerance), so the imbalance at the new point
  is the difference between each cell's true current and its linearised prediction; it must
  fall below ``ATOL_KCL + RTOL_KCL * max|I_cell|``;
* **update (V)**: the largest node-voltage change below ``VNTOL + RTOL_V * max|v|``, or
  below ``VNTOL + RTOL_V_FLOOR * max|v|`` once KCL has held on two iterations running (the
  update cannot fall below the round-off of the linear solve, which for floating lines held
  only by nearly-off cells is ~1e-9 of the drive).

A point that passes both is accepted only after an independent check that does not trust the
linear solver: the KCL imbalance of every free node of the *full* network (wires, drivers,
sense resistors and the cells' true currents, summed node by node, :func:`network_kcl_excess`)
must be below ``ATOL_KCL + RTOL_KCL * max|I_cell|``
plus the imbalance that node-voltage errors at the linear solver's declared accuracy
(``VNTOL + RTOL_SOLVE * max|v|``) cause through the node's branch conductances (the row sum
of the absolute Jacobian).  With 1 ohm wires beside 10 kohm cells that allowance dominates: a
float64 voltage is good to ~1e-16 V, i.e. ~1e-16 A through 1 ohm, far above 1e-11 of a
nanoampere cell current, so a bare relative KCL test could never pass.  A point that fails the
check is not returned: Newton goes on iterating (and the aids follow if it runs out).

If plain Newton (with the step limited to ``v_step_max`` volts per node, SPICE's voltage
limiting) fails, the aids are tried in turn, each from scratch: **gmin stepping** (a shunt
conductance across every cell, stepped down by decades to zero) and **source stepping** (the
word-line sources ramped from 0 to ``v_in``, the step adapted to success; bit-line bias
voltages set on the ``Network`` are not ramped).  Input vectors of a batch are solved one after
the other, each as a full network solve.  If all fail,
:class:`cimphys.errors.ConvergenceError` is raised with the iterations spent and the last
residual; an unconverged answer is never returned.

References
----------
.. [1] L. W. Nagel, "SPICE2: a computer program to simulate semiconductor circuits", UCB/ERL
   M520 (1975), ch. 5 (Newton-Raphson, voltage limiting, convergence tests).
.. [2] A. Chen, IEEE Trans. Electron Devices 60, 1318 (2013), doi:10.1109/TED.2013.2246791
   (crossbar with nonlinear devices solved on the full network).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..checks import as_array, as_scalar
from ..errors import ConvergenceError, InputError
from .nodal import RTOL_SOLVE, solve_linear

__all__ = ["NewtonOptions", "NonlinearSolution", "network_kcl_excess", "solve_nonlinear"]

# Why these values: Newton converges quadratically, so once the residual is small it drops to
# the float64 floor in one more step.  1e-11 of the largest cell current sits a few decades
# above that floor (cell currents are sums of terms ~1e-16 relative) and far below the 1e-7
# agreement asked against ngspice.
RTOL_KCL = 1e-11
ATOL_KCL = 1e-18  # A: ngspice's abstol in the validation runs; only matters when I ~ 0
RTOL_V = 1e-10  # relative node-voltage update
VNTOL = 1e-12  # V: absolute node-voltage update (ngspice vntol in the validation runs)
# Update accepted after two consecutive KCL passes: still 1000x tighter than SPICE's default
# reltol 1e-3, and above the round-off of a linear solve with condition number ~1e9.
RTOL_V_FLOOR = 1e-6
MAX_ITER = 60  # per Newton run; a converging run on these networks takes 3-10
V_STEP_MAX = 0.5  # V: SPICE-style limit on the largest node-voltage change per iteration
GMIN_DECADES = 12  # gmin stepping: from g_start down 12 decades, then 0
SOURCE_MIN_STEP = 1e-4  # source stepping gives up when the ramp step falls below this


_STRATEGIES = ("newton", "gmin", "source")


@dataclass(frozen=True)
class NewtonOptions:
    """Tolerances and strategies of :func:`solve_nonlinear` (defaults: the module constants).

    ``strategies`` lists what to try, in order, each from scratch: ``"newton"`` (plain Newton
    with voltage limiting), ``"gmin"`` (gmin stepping), ``"source"`` (source stepping).
    """

    rtol_kcl: float = RTOL_KCL
    atol_kcl: float = ATOL_KCL
    rtol_v: float = RTOL_V
    vntol: float = VNTOL
    max_iter: int = MAX_ITER
    v_step_max: float = V_STEP_MAX
    strategies: tuple[str, ...] = ("newton", "gmin", "source")

    def __post_init__(self):
        for name in ("rtol_kcl", "atol_kcl", "rtol_v", "vntol", "v_step_max"):
            as_scalar(name, getattr(self, name), low=0.0, low_open=name == "v_step_max")
        as_scalar("max_iter", self.max_iter, low=1, high=10_000)
        unknown = set(self.strategies) - set(_STRATEGIES)
        if unknown or not self.strategies:
            raise InputError(f"strategies: expected some of {_STRATEGIES} in the order to try, got {self.strategies}")


@dataclass(frozen=True)
class NonlinearSolution:
    """Operating point of a crossbar with nonlinear cells.

    Attributes
    ----------
    v_wl, v_bl : ndarray, V
        Node voltages, ``(M, N)`` or ``(batch, M, N)``.
    i_out : ndarray, A
        Current into each sense node, ``(N,)`` or ``(batch, N)``.
    i_cell : ndarray, A
        Current through each cell (WL to BL), like ``v_wl``.
    iterations : ndarray of int
        Newton iterations spent (all aids included), one per input vector.
    residual : ndarray, A
        Final largest KCL imbalance, one per input vector.
    method : tuple of str
        Which strategy converged for each input vector ("newton", "gmin" or "source").
    """

    v_wl: np.ndarray
    v_bl: np.ndarray
    i_out: np.ndarray
    i_cell: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    method: tuple[str, ...] = field(default=())
    converged: bool = True

    def to_xarray(self):
        """Dataset with dims ``row``, ``col`` (and ``batch``), units on every variable."""
        import xarray as xr

        from ..results import variable

        batch = self.v_wl.ndim == 3
        nodes = ("batch", "row", "col") if batch else ("row", "col")
        per = ("batch",) if batch else ()
        data = {
            "v_wl": variable(nodes, self.v_wl, "V", "word-line node voltage"),
            "v_bl": variable(nodes, self.v_bl, "V", "bit-line node voltage"),
            "i_cell": variable(nodes, self.i_cell, "A", "cell current, word line to bit line"),
            "i_out": variable((*per, "col"), self.i_out, "A", "current into the sense node"),
            "iterations": variable(per, self.iterations if batch else self.iterations[0], "1", "Newton iterations"),
            "residual": variable(per, self.residual if batch else self.residual[0], "A", "final KCL residual"),
        }
        return xr.Dataset(data, attrs={"solver": "newton-raphson", "method": ",".join(self.method)})


class _Stamper:
    """Evaluates a cell model's current and stamp on flat node-voltage arrays."""

    def __init__(self, cell, shape: tuple[int, int]):
        self.n_cols = shape[1]
        self.three = bool(getattr(cell, "three_terminal", False))
        if self.three:
            cell.check_array(shape)
        elif not hasattr(cell, "_evaluate"):
            raise InputError(f"cell: expected a TwoTerminalCell or a 1T1R cell, got {type(cell).__name__}")
        elif cell.shape and tuple(cell.shape) != tuple(shape):
            raise InputError(f"cell: per-cell parameter shape {cell.shape} does not match the array {shape}")
        self.cell = cell

    def __call__(self, vw: np.ndarray, vb: np.ndarray, gmin: float):
        out = np.empty((3, vw.size))
        if self.three:
            self.cell._stamp_flat(vw.reshape(-1), vb.reshape(-1), self.n_cols, out)
        else:
            self.cell._evaluate((vw - vb).reshape(-1), out[0], out[1])
            out[2] = out[1]
        i, a, b = (x.reshape(vw.shape) for x in out)
        if gmin:
            i += gmin * (vw - vb)
            a += gmin
            b += gmin
        return i, a, b


class _Failed(Exception):
    def __init__(self, iterations: int, residual: float):
        self.iterations = iterations
        self.residual = residual


def _newton(network, stamp, v_in, x0, gmin, opts: NewtonOptions):
    """One Newton run from ``x0``; returns (v_wl, v_bl, i_out, i_cell, iterations, residual)."""
    vw, vb = x0
    i, a, b = stamp(vw, vb, gmin)
    residual = np.inf
    kcl_prev = False
    for it in range(1, opts.max_iter + 1):
        c = i - a * vw + b * vb
        try:
            vw_n, vb_n, i_out = solve_linear(network, a, b, c, v_in)
        except (InputError, ConvergenceError):  # singular linearisation (e.g. cells all off)
            raise _Failed(it, residual) from None
        if not (np.isfinite(vw_n).all() and np.isfinite(vb_n).all()):
            raise _Failed(it, residual)
        i_n, a_n, b_n = stamp(vw_n, vb_n, gmin)
        if not np.isfinite(i_n).all():
            raise _Failed(it, residual)
        i_lin = i + a * (vw_n - vw) - b * (vb_n - vb)
        residual = float(np.max(np.abs(i_n - i_lin)))
        dv = max(float(np.max(np.abs(vw_n - vw))), float(np.max(np.abs(vb_n - vb))))
        scale_v = max(float(np.max(np.abs(vw_n))), float(np.max(np.abs(vb_n))))
        kcl_ok = residual <= opts.atol_kcl + opts.rtol_kcl * float(np.max(np.abs(i_n)))
        # Second tier: KCL met twice running and the update stuck at the linear solve's round-
        # off floor (floating lines held only by nearly-off cells: condition numbers ~1e8).
        floor_ok = kcl_ok and kcl_prev and dv <= opts.vntol + RTOL_V_FLOOR * scale_v
        if ((kcl_ok and dv <= opts.vntol + opts.rtol_v * scale_v) or floor_ok) and \
                network_kcl_excess(network, v_in, vw_n, vb_n, i_n, a_n, b_n, opts) <= 0.0:
            return vw_n, vb_n, i_out, i_n - gmin * (vw_n - vb_n), it, residual
        kcl_prev = kcl_ok
        if dv > opts.v_step_max:  # voltage limiting: a damped step, relinearised where it lands
            lam = opts.v_step_max / dv
            vw = vw + lam * (vw_n - vw)
            vb = vb + lam * (vb_n - vb)
            i, a, b = stamp(vw, vb, gmin)
        else:
            vw, vb, i, a, b = vw_n, vb_n, i_n, a_n, b_n
    raise _Failed(opts.max_iter, residual)


def _chain_imbalance(ch, v, u, i_cell, a_sum):
    """Current leaving every node of a family of chains (wires, ends, cells) and the row sums
    of its absolute Jacobian, both summed over merged nodes: ``(imbalance, row_sum, fixed)``
    per group, flattened.  ``v (L, n)`` node voltages, ``u (L,)`` the end sources."""
    seg = ch.r_seg > 0  # a zero segment merges its nodes: its current is internal to the group
    g = np.where(seg, 1.0 / np.where(seg, ch.r_seg, 1.0), 0.0)
    i_seg = g * (v[:, :-1] - v[:, 1:])
    out, rows = i_cell.copy(), a_sum.copy()
    out[:, :-1] += i_seg
    out[:, 1:] -= i_seg
    rows[:, :-1] += g
    rows[:, 1:] += g
    fixed = np.zeros(v.shape, bool)
    for end, r in ((0, ch.r_lo), (-1, ch.r_hi)):
        tied = (r > 0) & np.isfinite(r)
        g_end = np.where(tied, 1.0 / np.where(tied, r, 1.0), 0.0)
        out[:, end] += g_end * (v[:, end] - u)
        rows[:, end] += g_end
        fixed[:, end] |= r == 0
    groups = ch.groups
    gid = (groups + np.concatenate([[0], np.cumsum(groups[:, -1] + 1)[:-1]])[:, None]).ravel()
    size = int(gid[-1]) + 1 if gid.size else 0
    total = np.bincount(gid, weights=out.ravel(), minlength=size)
    row_sum = np.bincount(gid, weights=rows.ravel(), minlength=size)
    return total, row_sum, np.bincount(gid, weights=fixed.ravel(), minlength=size) > 0


def network_kcl_excess(network, v_in, v_wl, v_bl, i_cell, a, b, opts: NewtonOptions) -> float:
    """Largest KCL imbalance over the free nodes of the full network, less its allowance (A).

    ``i_cell`` are the cells' true currents at ``(v_wl, v_bl)`` (WL to BL) and ``a, b`` their
    stamp.  Node by node: the currents leaving through the wire segments, the driver and sense
    ends and the cells, summed over merged nodes (zero-resistance segments); fixed nodes (a
    zero-resistance end) are skipped.  The allowance of a node is ``atol_kcl + rtol_kcl
    max|I_cell|`` plus ``(vntol + RTOL_SOLVE max|v|) sum_j |J_kj|``: the imbalance that
    node-voltage errors at the linear solver's accuracy cause (see the module docstring).
    ``<= 0`` means KCL holds everywhere.
    """
    cell_rows = np.abs(a) + np.abs(b)
    wl = _chain_imbalance(network.wl_chains(), v_wl, v_in, i_cell, cell_rows)
    bl = _chain_imbalance(network.bl_chains(), v_bl.T, network.v_bl_end, -i_cell.T, cell_rows.T)
    v_scale = max(float(np.max(np.abs(v_wl), initial=0.0)), float(np.max(np.abs(v_bl), initial=0.0)),
                  float(np.max(np.abs(v_in), initial=0.0)))
    base = opts.atol_kcl + opts.rtol_kcl * float(np.max(np.abs(i_cell), initial=0.0))
    worst = -np.inf
    for total, row_sum, fixed in (wl, bl):
        excess = np.abs(total) - base - (opts.vntol + RTOL_SOLVE * v_scale) * row_sum
        worst = max(worst, float(np.max(excess[~fixed], initial=-np.inf)))
    return worst


def _initial_guess(network, v_in):
    """Ideal node voltages: every WL node at its source, every BL node at 0 V."""
    m, n = network.shape
    return np.repeat(v_in[:, None], n, axis=1).astype(float), np.zeros((m, n))


def _gmin_stepping(network, stamp, v_in, opts):
    vw, vb = _initial_guess(network, v_in)
    _, a0, _ = stamp(vw, vb, 0.0)
    g_start = max(10.0 * float(np.max(np.abs(a0))), 1e-12)
    total = 0
    x = (vw, vb)
    for gmin in [g_start * 10.0**-k for k in range(GMIN_DECADES + 1)] + [0.0]:
        try:
            out = _newton(network, stamp, v_in, x, gmin, opts)
        except _Failed as f:
            raise _Failed(total + f.iterations, f.residual) from None
        total += out[4]
        x = out[:2]
    return (*out[:4], total, out[5])


def _source_stepping(network, stamp, v_in, opts):
    s, ds, total = 0.0, 0.1, 0
    x = _initial_guess(network, 0.0 * v_in)
    residual = np.inf
    while True:
        target = min(1.0, s + ds)
        try:
            out = _newton(network, stamp, target * v_in, x, 0.0, opts)
        except _Failed as f:
            total += f.iterations
            residual = f.residual
            ds /= 4.0
            if ds < SOURCE_MIN_STEP:
                raise _Failed(total, residual) from None
            continue
        total += out[4]
        s, x = target, out[:2]
        if s >= 1.0:
            return (*out[:4], total, out[5])
        ds = min(2.0 * ds, 0.5)


def _solve_one(network, stamp, v_in, opts):
    """Plain Newton, then the aids in turn; (result tuple, method) or ConvergenceError."""
    spent = 0
    residual = np.inf
    runs = {
        "newton": lambda: _newton(network, stamp, v_in, _initial_guess(network, v_in), 0.0, opts),
        "gmin": lambda: _gmin_stepping(network, stamp, v_in, opts),
        "source": lambda: _source_stepping(network, stamp, v_in, opts),
    }
    strategies = [(name, runs[name]) for name in opts.strategies]
    for name, run in strategies:
        try:
            out = run()
        except _Failed as f:
            spent += f.iterations
            residual = f.residual
            continue
        return (*out[:4], spent + out[4], out[5]), name
    tried = ", ".join(name for name, _ in strategies)
    message = f"Newton did not converge (tried {tried}; residual in A)"
    raise ConvergenceError(message, iterations=spent, residual=residual)


def solve_nonlinear(network, cell, v_in, options: NewtonOptions | None = None) -> NonlinearSolution:
    """Operating point of ``network`` with nonlinear ``cell`` s, driven by ``v_in``.

    Parameters
    ----------
    network : cimphys.circuits.nodal.Network
        Wires, drivers, sense resistors and boundary options, ``(M, N)`` cells.
    cell : TwoTerminalCell or OneTransistorOneResistor
        The cell model; per-cell parameters must be scalars or ``(M, N)``.
    v_in : array_like, V
        Word-line source voltages, ``(M,)`` or ``(batch, M)``.
    options : NewtonOptions, optional
        Tolerances and convergence aids.

    Returns
    -------
    NonlinearSolution
        Node voltages, output and cell currents, iterations and final residual.

    Raises
    ------
    ConvergenceError
        If neither plain Newton nor any aid meets both tolerances.
    """
    opts = options or NewtonOptions()
    m, n = network.shape
    v = as_array("v_in", v_in, unit="V", ndim=(1, 2))
    if v.shape[-1] != m:
        raise InputError(f"v_in: expected {m} word-line voltages in the last axis, got shape {v.shape}")
    stamp = _Stamper(cell, (m, n))
    rows = v.reshape(-1, m)
    results, methods = [], []
    for k in range(rows.shape[0]):  # one full network solve per input vector
        out, method = _solve_one(network, stamp, rows[k], opts)
        results.append(out)
        methods.append(method)
    stacked = [np.stack([r[j] for r in results]) for j in range(4)]
    if v.ndim == 1:
        stacked = [s[0] for s in stacked]
    return NonlinearSolution(
        v_wl=stacked[0],
        v_bl=stacked[1],
        i_out=stacked[2],
        i_cell=stacked[3],
        iterations=np.array([r[4] for r in results], dtype=np.int64),
        residual=np.array([r[5] for r in results]),
        method=tuple(methods),
    )
