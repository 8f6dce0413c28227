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
voltages set on the ``Network`` are not ramped).  If all fail,
:class:`cimphys.errors.ConvergenceError` is raised naming the input vector, with the
iterations spent and the last residual; an unconverged answer is never returned.

A batch of input vectors of a two-terminal cell whose differential conductance is not
negative, on a network with no zero wire segment or end (:func:`cimphys.circuits.schur.eligible`),
takes plain Newton for all its vectors together: each vector keeps its own Jacobian values on
the shared sparsity, and one Numba kernel (:mod:`cimphys.circuits.newton_batch`, threads over
the vectors) solves every vector's Newton step by the bit-line Schur complement, warm-started
from the vector's previous iterate, as an inexact Newton step (CG stopped once its residual
has fallen by ``min(1e-2, |dv| / |v|)`` of the last update, Eisenstat-Walker's choice that
keeps the convergence quadratic [3]_).  The convergence tests and the independent full-network
KCL check are those above, vector by vector; a vector that plain Newton does not bring home
goes on alone through the aids.  Other batches are solved one vector after the other.

References
----------
.. [1] L. W. Nagel, "SPICE2: a computer program to simulate semiconductor circuits", UCB/ERL
   M520 (1975), ch. 5 (Newton-Raphson, voltage limiting, convergence tests).
.. [2] A. Chen, IEEE Trans. Electron Devices 60, 1318 (2013), doi:10.1109/TED.2013.2246791
   (crossbar with nonlinear devices solved on the full network).
.. [3] S. C. Eisenstat, H. F. Walker, "Choosing the forcing terms in an inexact Newton
   method", SIAM J. Sci. Comput. 17, 16 (1996). doi:10.1137/0917003
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..checks import as_array
from ..errors import ConvergenceError, InputError
from . import schur
from .newton_batch import Wires, kcl_excess, newton_measures, solve_stamps
from .linear import RTOL_SOLVE, solve_linear
from .network import output_currents
from .newton_options import NewtonOptions, NonlinearSolution

__all__ = ["NewtonOptions", "NonlinearSolution", "network_kcl_excess", "solve_nonlinear"]

# Update accepted after two consecutive KCL passes: still 1000x tighter than SPICE's default
# reltol 1e-3, and above the round-off of a linear solve with condition number ~1e9.
RTOL_V_FLOOR = 1e-6
GMIN_DECADES = 12  # gmin stepping: from g_start down 12 decades, then 0
SOURCE_MIN_STEP = 1e-4  # source stepping gives up when the ramp step falls below this
# Forcing term of the batched path's first inexact step (the later ones follow |dv| / |v|):
# the first update is ~0.1 of the drive, so a 1e-2 linear error there costs no extra iteration.
ETA_MAX = 1e-2


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


    def two_terminal(self, vw: np.ndarray, vb: np.ndarray):
        """``(I, dI/dV)`` of a two-terminal cell at ``vw - vb``, without the stamp's copies."""
        v = vw - vb
        i, g = np.empty_like(v), np.empty_like(v)
        self.cell._evaluate(v.reshape(-1), i.reshape(-1), g.reshape(-1))
        return i, g


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


def _batched_eligible(network, stamp, batch: int, opts: NewtonOptions, warm: bool = False) -> bool:
    """Whether a batch takes :func:`_newton_batched` (see the module docstring); a single
    vector does when it has a start of its own (``warm``: the kernel reuses it, CG included)."""
    if batch < (1 if warm else 2) or stamp.three or opts.strategies[0] != "newton":
        return False
    ones = np.ones(network.shape)
    return schur.eligible(network, ones, ones)


def _newton_batched(network, stamp, v, opts, x0=None):
    """Plain Newton on every vector of ``v (B, M)`` at once, from ``x0 = (v_wl, v_bl)`` each
    ``(B, M, N)`` when given (else the ideal node voltages).

    Returns ``(results, failed)``: ``results[k]`` the tuple of :func:`_newton` for each vector
    that converged (else None), ``failed`` the indices that did not (their aids follow).
    """
    nb, (m, n) = v.shape[0], network.shape
    wires = Wires.of(network)
    if x0 is None:
        vw, vb = np.repeat(v[:, :, None], n, axis=2), np.zeros((nb, m, n))
    else:
        vw, vb = (np.array(a, dtype=np.float64).reshape(nb, m, n) for a in x0)
    i, g = stamp.two_terminal(vw, vb)
    results = [None] * nb
    live = np.arange(nb)
    if (g < 0).any() or not np.isfinite(g).all():
        return results, list(live)  # a negative stamp: not for the symmetric CG, aids take it
    kcl_prev = np.zeros(nb, bool)
    eta = np.full(nb, ETA_MAX)
    for it in range(1, opts.max_iter + 1):
        c = i - g * (vw - vb)
        vw_n, vb_n, res, _, _ = solve_stamps(wires, g, c, v[live], vb, RTOL_SOLVE, eta[live])
        i_n, g_n = stamp.two_terminal(vw_n, vb_n)
        residual, dv, scale_v, i_max, ok = newton_measures(i, g, vw, vb, vw_n, vb_n, i_n, g_n).T
        ok = (ok > 0) & np.isfinite(res)
        kcl_ok = residual <= opts.atol_kcl + opts.rtol_kcl * i_max
        floor_ok = kcl_ok & kcl_prev[live] & (dv <= opts.vntol + RTOL_V_FLOOR * scale_v)
        done = ok & ((kcl_ok & (dv <= opts.vntol + opts.rtol_v * scale_v)) | floor_ok)
        if done.any():
            _accept(wires, v, opts, live, done, it, residual, (vw_n, vb_n, i_n, g_n), results)
        kcl_prev[live] = kcl_ok
        eta[live] = np.minimum(ETA_MAX, dv / np.maximum(scale_v, 1e-300))
        keep = ok & ~done
        if not keep.any():
            break
        _limit_steps(stamp, opts, dv, (vw, vb), (vw_n, vb_n, i_n, g_n))
        if keep.all():
            live, vw, vb, i, g = live, vw_n, vb_n, i_n, g_n
        else:
            live, vw, vb, i, g = live[keep], vw_n[keep], vb_n[keep], i_n[keep], g_n[keep]
    failed = [k for k in range(nb) if results[k] is None]
    return results, failed


def _accept(wires, v, opts, live, done, it, residual, new, results) -> None:
    """Record in ``results`` the vectors Newton's test passed (``done``) whose KCL also holds once
    the linear solve's own error is counted (:func:`kcl_excess`); clear ``done`` for the others."""
    vw_n, vb_n, i_n, g_n = new
    idx = np.flatnonzero(done)
    excess = kcl_excess(wires, v[live[idx]], vw_n[idx], vb_n[idx], i_n[idx], g_n[idx], atol=opts.atol_kcl,
                        rtol=opts.rtol_kcl, vntol=opts.vntol, rtol_solve=RTOL_SOLVE)
    for k, e in zip(idx, excess):
        if e <= 0.0:
            results[live[k]] = (vw_n[k], vb_n[k], None, i_n[k], it, float(residual[k]))
        else:
            done[k] = False


def _limit_steps(stamp, opts, dv, old, new) -> None:
    """Voltage limiting, in place: a step whose largest node change ``dv`` (V) exceeds
    ``opts.v_step_max`` is damped to it and the stamp relinearised where it lands."""
    vw, vb = old
    vw_n, vb_n, i_n, g_n = new
    lam = np.minimum(1.0, opts.v_step_max / np.maximum(dv, 1e-300))
    damped = lam < 1.0
    if damped.any():
        lam3 = lam[damped, None, None]
        vw_n[damped] = vw[damped] + lam3 * (vw_n[damped] - vw[damped])
        vb_n[damped] = vb[damped] + lam3 * (vb_n[damped] - vb[damped])
        i_n[damped], g_n[damped] = stamp.two_terminal(vw_n[damped], vb_n[damped])


def _solve_one(network, stamp, v_in, opts, spent=0, residual=np.inf, x0=None):
    """Plain Newton (from ``x0`` when given), then the aids in turn; (result tuple, method) or
    ConvergenceError."""
    start = _initial_guess(network, v_in) if x0 is None else x0
    runs = {
        "newton": lambda: _newton(network, stamp, v_in, start, 0.0, opts),
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


def solve_nonlinear(network, cell, v_in, options: NewtonOptions | None = None, *,
                    initial=None) -> NonlinearSolution:
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
    initial : (v_wl, v_bl), optional
        Where plain Newton starts (V, shaped like the node voltages), e.g. the answer of the
        previous time step; the aids start from scratch as without it.  The convergence tests
        and the KCL check are the same: only the iterations spent change.

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
    x0 = None if initial is None else _start(initial, (rows.shape[0], m, n))
    results, methods = [None] * rows.shape[0], ["newton"] * rows.shape[0]
    todo, aids = range(rows.shape[0]), opts
    if _batched_eligible(network, stamp, rows.shape[0], opts, warm=x0 is not None):
        results, todo = _newton_batched(network, stamp, rows, opts, x0)
        for k, out in enumerate(results):
            if out is not None:  # the output currents from the answer, as the linear solve gives them
                i_out = output_currents(network, out[3][None], out[1][None])[0]
                results[k] = (out[0], out[1], i_out, *out[3:])
        aids = replace(opts, strategies=opts.strategies[1:]) if len(opts.strategies) > 1 else None
    for k in todo:  # one full network solve per input vector
        try:
            if aids is None:
                raise ConvergenceError("Newton did not converge (tried newton; residual in A)", iterations=opts.max_iter,
                                       residual=np.inf)
            start = None if x0 is None or aids is not opts else (x0[0][k], x0[1][k])
            results[k], methods[k] = _solve_one(network, stamp, rows[k], aids, x0=start)
        except ConvergenceError as exc:
            raise ConvergenceError(f"input vector {k} of {rows.shape[0]}: {exc.args[0].split(' (after')[0]}",
                                   iterations=exc.iterations, residual=exc.residual) from None
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


def _start(initial, shape):
    """``initial = (v_wl, v_bl)`` checked and shaped ``(B, M, N)`` each, V."""
    try:
        v_wl, v_bl = initial
    except (TypeError, ValueError):
        raise InputError(f"initial: expected (v_wl, v_bl) node voltages in V, got {type(initial).__name__}") from None
    size = shape[0] * shape[1] * shape[2]
    out = []
    for name, a in (("initial v_wl", v_wl), ("initial v_bl", v_bl)):
        a = as_array(name, a, unit="V")
        if a.size != size:
            raise InputError(f"{name}: expected {shape[1:]} node voltages per input vector, got shape {a.shape}")
        out.append(a.reshape(shape))
    return tuple(out)
