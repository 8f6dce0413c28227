"""Programming a whole matrix through the array, a row at a time, as chips do.

:func:`cimphys.circuits.array_write.write_verify` programs one cell after the other.  Real
arrays program a row at once [1]_: the selected word line is driven at ``V_w``, the bit line
of every cell of that row that still needs a pulse at ``V_w - a_j`` (its own write driver sets
its own amplitude ``a_j`` of incremental step pulse programming), and every other line at the
scheme's inhibit voltage (V/3: unselected word lines at ``V_w / 3``, unselected bit lines at
``2 V_w / 3``; V/2: both at ``V_w / 2``).  A cell within tolerance is inhibited; every
verify read judges the whole row again, so a cell that drifts out of tolerance while the
others are programmed (the row's own IR drop grows as its cells turn on) is pulsed again.
The whole row is verified by one read through the array (its word line at
``v_read``, the others and every bit line at 0 V), so every read-back carries the IR drop and
the sneak currents of the array as programmed so far.  SET and RESET cells of the same row are
pulsed in two pulses of opposite polarity.  With ``a_j >= |V_w| / 3`` no cell outside the row
sees more than ``|V_w| / 3`` (V/3) or ``|V_w| / 2`` (V/2).

Every pulse is the physics of :func:`cimphys.circuits.array_write.apply_pulse` -- the network
with its wires and the cells' own nonlinear I-V solved by Newton, every cell's state
integrated under its own voltage over each substep (Lie splitting) -- done faster by
:class:`ArrayWriter`, with nothing approximated further:

* Newton starts from the previous solve of the same kind (the last substep or pulse of the
  row, the last read of the row), moved with the line sources, and is accepted on the
  full-network KCL check with the cells' true currents (:func:`_warm_newton`): one to three
  iterations instead of ten;
* only the cells whose rate is not zero are integrated.  The voltage is held over a substep,
  so the state equation is autonomous there: a cell whose rate is exactly zero at its state
  (below a threshold, or under the Stanford release's minimum field) stays exactly where it is,
  which is what the integrator would return for it.

When no cell outside the programmed row moves (the threshold or minimum field holds every
half-selected cell) and the wires are ideal, every cell sees the same pulses as in the
cell-by-cell scheme and ends in the same state; with wire resistance the row's summed current
adds IR drop to the selected cells (tested, :mod:`tests.unit.circuits.test_array_program`).

References
----------
.. [1] F. Alibart, L. Gao, B. D. Hoskins, D. B. Strukov, "High precision tuning of state for
   memristive devices by adaptable variation-tolerant algorithm", Nanotechnology 23, 075201
   (2012), doi:10.1088/0957-4484/23/7/075201 (write-verify of a crossbar through the array).
.. [2] A. Chen, IEEE Trans. Electron Devices 60, 1318 (2013), doi:10.1109/TED.2013.2246791
   (V/2 and V/3 schemes on the full network).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..checks import as_array, as_scalar
from ..errors import ConvergenceError, InputError
from . import schur
from .array_write import SCHEMES, verify_dataset, wl_source_power
from .gated_row import row_is_gated, solve_gated_row
from .linear import RTOL_SOLVE
from .network import Network, output_currents
from .newton import NewtonOptions, NonlinearSolution, solve_nonlinear
from .newton_batch import Wires, kcl_excess, newton_measures, solve_stamps

__all__ = ["ArrayWriter", "row_bias_voltages", "write_verify_rows"]


def row_bias_voltages(shape, row: int, amplitudes, scheme: str = "V/3", *, grounded: bool = False):
    """Word-line sources ``(M,)`` and bit-line end sources ``(N,)`` (V) to pulse row ``row``.

    ``amplitudes (N,)`` V: the voltage each cell of the row is to see, all of one sign, 0 for
    an inhibited cell.  The word line is driven at ``V_w``, the largest amplitude (signed); a
    pulsed cell's bit line at ``V_w - a_j``; the other lines at the scheme's fractions of ``V_w``.
    ``grounded``: every line shifted by one voltage so that the lowest is 0 V, as a 1T1R array
    is biased (its gates are referenced to ground: a line below ground would turn an "off"
    transistor on).  Two-terminal cells see the same voltages either way, and the sources
    deliver the same power (their currents sum to zero).
    """
    if scheme not in SCHEMES:
        raise InputError(f"scheme: expected one of {list(SCHEMES)}, got {scheme!r}")
    m, n = shape
    row = int(as_scalar("row", row, low=0, high=m - 1))
    a = as_array("amplitudes", amplitudes, unit="V", shape=(n,))
    if (a > 0).any() and (a < 0).any():
        raise InputError(f"amplitudes: expected one polarity per pulse, got {a.min():g} V and {a.max():g} V")
    v_w = a[np.argmax(np.abs(a))]
    f_wl, f_bl = SCHEMES[scheme]
    if (np.abs(a[a != 0]) < f_wl * abs(v_w) - 1e-12).any():
        raise InputError(f"amplitudes: expected every pulsed cell at >= {f_wl:.3g} x {abs(v_w):g} V, so that no "
                         f"cell outside row {row} sees more than the scheme's inhibit, got {np.abs(a[a != 0]).min():g} V")
    v_in = np.full(m, f_wl * v_w)
    v_in[row] = v_w
    v_bl = np.where(a != 0, v_w - a, f_bl * v_w)
    if grounded:
        low = min(v_in.min(), v_bl.min())
        v_in, v_bl = v_in - low, v_bl - low
    return v_in, v_bl


class ArrayWriter:
    """An array's write pulses and row reads, each solved as a circuit, warm-started.

    Parameters
    ----------
    model : cimphys.devices.DynamicModel
        The memory cells' device model (scalar or ``(M, N)`` per-cell parameters).
    shape : (int, int)
        Rows and columns.
    r_wl, r_bl, r_driver, r_sense : float or array, ohm
        The wires, as in :class:`cimphys.circuits.nodal.Network`.
    selector : cimphys.devices.SinhSelector, optional
        1S1R cells (:class:`cimphys.devices.SelectorMemoryCell`): the state moves under the
        memory element's share of the cell voltage.
    options : NewtonOptions, optional
    rtol : float
        Relative tolerance of each cell's state integration.
    access : (Level1Mosfet, float), optional
        1T1R cells (:class:`cimphys.devices.TransistorMemoryCell`) and the gate voltage (V) that
        selects a row: the pulsed or read row's gate line at it, every other row's at 0 V.
    """

    def __init__(self, model, shape, *, r_wl=1.0, r_bl=1.0, r_driver=0.0, r_sense=0.0, selector=None,
                 options: NewtonOptions | None = None, rtol: float = 1e-6, access=None):
        if selector is not None and access is not None:
            raise InputError("selector, access: a cell has a selector (1S1R) or an access transistor (1T1R), not both")
        self.model, self.shape, self.selector, self.access = model, tuple(shape), selector, access
        self.row = None  # the row whose gate is on (1T1R)
        self.wires = dict(r_wl=r_wl, r_bl=r_bl, r_driver=r_driver, r_sense=r_sense)
        self.options, self.rtol = options, as_scalar("rtol", rtol, low=1e-13, high=1.0)
        self._read_net = Network.build(self.shape, **self.wires)
        self._last = {}  # kind -> (v_wl, v_bl) of the last solve of that kind
        self._eligible = None  # whether the wires take the batched kernels (newton_batch)
        self._wires = None  # their Wires, sources at 0 V
        self._cells = (None, None, None)  # (states, cells, memory elements alone)
        self._holds = {}  # substep duration -> its unit waveform
        self.solves = 0
        self.newton_iterations = 0

    def cells(self, x):
        """The circuit's cells at states ``x`` (built and checked once per state array: a
        verify read and the next pulse see the same states)."""
        from ..devices import SelectorMemoryCell

        x = np.asarray(x, dtype=float)
        if self.access is not None:
            return self._gated(x)
        if self._cells[0] is None or not np.array_equal(self._cells[0], x):
            cells = self.model.read_cell(x) if self.selector is None else SelectorMemoryCell(self.selector, self.model, x)
            self._cells = (x.copy(), cells, self.model.read_cell(x) if self.selector is not None else cells)
        return self._cells[1]

    def _gated(self, x):
        """1T1R cells at states ``x`` with the gate of row ``self.row`` on, the others off."""
        from ..devices.transistor_memory import TransistorMemoryCell

        mosfet, v_on = self.access
        v_gate = np.zeros(self.shape[0])
        if self.row is not None:
            v_gate[self.row] = v_on
        return TransistorMemoryCell(mosfet, self.model, x, v_gate)

    def _memory_voltage(self, cells, sol):
        """The voltage each memory element sees at the solution (V, flat)."""
        if self.access is not None and sol.method == ("gated row",):  # the other rows' elements see 0 V
            v = np.zeros(self.shape)
            v[self.row] = _row_memory_voltage(cells, sol, self.row)
            return v.reshape(-1)
        if self.access is not None:
            return cells.memory_voltage(sol.v_wl, sol.v_bl).reshape(-1)
        v_cell = sol.v_wl - sol.v_bl
        return (v_cell if self.selector is None else cells.memory_voltage(v_cell)).reshape(-1)

    def _read_cells(self, x):
        """The memory elements alone at states ``x`` (what a read sees without a selector)."""
        if self.access is not None:
            return self._gated(x)
        self.cells(x)
        return self._cells[2]

    def _network(self, v_bl_end):
        """The array's network with these bit-line end sources (the wires built once)."""
        return replace(self._read_net, v_bl_end=np.asarray(v_bl_end, dtype=np.float64))

    def _solve(self, net, cells, v_in, kind):
        """Operating point from the last solve of this ``kind``: :func:`_warm_newton` when the
        network takes the batched kernels, else (or if it fails) :func:`solve_nonlinear`."""
        start = self._last.get(kind)
        if start is not None:  # the last answer moved with the sources (exact for the wires)
            vw, vb, u_wl, u_bl = start
            start = (vw + (v_in - u_wl)[:, None], vb + (net.v_bl_end - u_bl)[None, :])
        sol = None
        if self.access is not None and row_is_gated(cells, net, v_in, self.row):  # one word line, exact
            try:
                sol = solve_gated_row(cells, net, v_in, self.row, None if start is None else
                                      (start[0][self.row], start[1][self.row]), self.options)
            except ConvergenceError:  # the general solver, with its convergence aids, takes over
                sol = None
        elif start is not None and self.access is None and self._lean(net):
            wires = replace(self._wires, vend=net.v_bl_end)
            sol = _warm_newton(net, wires, cells, v_in, start, self.options or NewtonOptions())
        if sol is None:
            sol = solve_nonlinear(net, cells, v_in, self.options, initial=start)
        self._last[kind] = (sol.v_wl, sol.v_bl, np.array(v_in, dtype=float), net.v_bl_end.copy())
        self.solves += 1
        self.newton_iterations += int(sol.iterations.sum())
        return sol

    def _lean(self, net) -> bool:
        if self._eligible is None:
            ones = np.ones(self.shape)
            self._eligible = schur.eligible(net, ones, ones)
            self._wires = Wires.of(self._read_net) if self._eligible else None
        return self._eligible

    def read_row(self, x, row: int, v_read: float) -> np.ndarray:
        """Conductance each cell of ``row`` reads as through the array, ``i_out / v_read`` (S, ``(N,)``)."""
        v_in = np.zeros(self.shape[0])
        v_in[row] = v_read
        self.row = row
        sol = self._solve(self._read_net, self._read_cells(x), v_in, ("read", row))
        return sol.i_out / v_read

    def read_all(self, x, v_read: float) -> np.ndarray:
        """Every cell's read-back (S, ``(M, N)``): each row read alone, the rows solved as one batch."""
        if self.access is not None:  # a gate pattern per row: one read each
            return np.stack([self.read_row(x, i, v_read) for i in range(self.shape[0])])
        v_in = np.diag(np.full(self.shape[0], float(v_read)))
        sol = solve_nonlinear(self._read_net, self._read_cells(x), v_in, self.options)
        self.solves += self.shape[0]
        self.newton_iterations += int(sol.iterations.sum())
        return sol.i_out / v_read

    def pulse(self, x, v_in, v_bl_end, width: float, substeps: int = 1, kind=None, row=None):
        """One write pulse; returns ``(new_state, energy_sources J)`` (the physics of
        :func:`cimphys.circuits.array_write.apply_pulse`).  ``kind`` names the warm start;
        ``row`` is the row whose access transistors are on (1T1R; None: all off)."""
        self.row = row
        from ..devices import integrate, pwl

        net = self._network(as_array("v_bl_end", v_bl_end, unit="V", shape=(self.shape[1],)))
        v_in = as_array("v_in", v_in, unit="V", shape=(self.shape[0],))
        dt = width / substeps
        if dt not in self._holds:
            self._holds[dt] = pwl([0.0, dt], [1.0, 1.0])  # 1 V, scaled per cell by its own voltage
        hold = self._holds[dt]
        x = np.asarray(x, dtype=float)
        energy = 0.0
        for _ in range(substeps):
            cells = self.cells(x)
            sol = self._solve(net, cells, v_in, ("pulse", kind))
            energy += dt * (wl_source_power(v_in, sol.i_cell) - float(net.v_bl_end @ sol.i_out))
            v_mem = self._memory_voltage(cells, sol)
            flat = x.reshape(-1)  # read only: the states move in a copy
            # per-cell parameters: every cell integrated (the model cannot be cut to a subset)
            moving = np.flatnonzero(self.model.rate(v_mem, flat)) if not self.model.shape else np.arange(flat.size)
            if moving.size:
                x = x.copy()
                flat = x.reshape(-1)
                flat[moving] = integrate(self.model, hold, flat[moving], v_scale=v_mem[moving], record="final",
                                         rtol=self.rtol, atol=1e-12, labelled=False)[-1]
        return x, energy


def write_verify_rows(model, state, g_target, *, v_read: float = 0.2, scheme: str = "V/3",
                      width: float = 10e-9, v_set=(1.2, 0.02, 2.0), v_reset=(1.2, 0.02, 2.0), rtol: float = 0.05,
                      max_pulses: int = 200, substeps: int = 2, t_read: float = 10e-9, endurance=None,
                      r_wl=1.0, r_bl=1.0, r_driver=0.0, r_sense=0.0, selector=None, rows=None,
                      set_polarity: int = 1, access=None, touch_up: int = 0):
    """Program ``g_target`` (S, read at ``v_read`` through the array) row by row, row-parallel.

    The arguments mean what they mean in :func:`cimphys.circuits.array_write.write_verify`; each
    cell follows the same ramp (a pulse per verify read while it misses its target, the
    amplitude restarting at ``v_set[0]`` or ``v_reset[0]`` on a change of direction), but a
    pulse serves every cell of the row that needs one (see the module docstring).  ``rows``
    limits the rows programmed (the others are left as they are, and reported as not done).
    ``set_polarity``: the sign of the pulses that raise a cell's conductance (+1 for the
    Stanford-PKU cell, whose gap closes under a positive voltage; -1 for VTEAM, which turns on
    below ``v_on < 0``); ``v_set`` and ``v_reset`` are magnitudes.  ``selector`` (1S1R) or
    ``access = (mosfet, v_gate)`` (1T1R: the programmed row's gates on, the others off) as in
    :class:`ArrayWriter`.

    ``touch_up``: verify-and-touch-up passes over the whole array after the first pass.  Rows
    written later shift earlier rows' read-back (their cells' currents add IR drop on the shared
    bit lines), so a cell that passed its verify may read out of tolerance once the matrix is
    complete.  Each pass reads every row back through the finished array and runs the row's
    verify-and-pulse loop again on every row with a cell out of tolerance (only those cells
    are pulsed; each cell keeps its ``max_pulses`` budget over all passes).  Passes stop early
    when every cell reads within tolerance.

    Returns
    -------
    new_state : ndarray, (M, N)
    xarray.Dataset
        As :func:`~cimphys.circuits.array_write.write_verify`'s; ``time`` counts row pulses
        (each serves a whole row) and row reads.  With ``touch_up``, ``error_first_pass`` is
        each cell's read-back error (through the finished array) before the touch-up passes.
        Attributes ``pulses``, ``reads``, ``solves``, ``newton_iterations`` and
        ``touch_up_passes`` (the passes run).
    """
    x = np.array(as_array("state", state, unit=model.state_unit, ndim=2), dtype=float)
    m, n = x.shape
    target = as_array("g_target", g_target, unit="S", low=0.0, low_open=True, shape=(m, n))
    v_read = as_scalar("v_read", v_read, unit="V", low=0.0, low_open=True)
    width = as_scalar("width", width, unit="s", low=0.0, low_open=True)
    substeps = int(as_scalar("substeps", substeps, low=1, high=100_000))
    max_pulses = int(as_scalar("max_pulses", max_pulses, low=0, high=1_000_000))
    touch_up = int(as_scalar("touch_up", touch_up, low=0, high=1000))
    if set_polarity not in (1, -1):
        raise InputError(f"set_polarity: expected +1 or -1, got {set_polarity!r}")
    polarity = int(set_polarity)
    writer = ArrayWriter(model, (m, n), r_wl=r_wl, r_bl=r_bl, r_driver=r_driver, r_sense=r_sense, selector=selector,
                         access=access)
    book = _Book(m, n)
    program = np.arange(m) if rows is None else np.atleast_1d(rows).astype(np.int64)
    args = (v_read, scheme, width, substeps, (np.asarray(v_set, float), np.asarray(v_reset, float)), polarity, rtol,
            max_pulses)
    for i in program:
        x = _program_row(writer, x, int(i), target[i], book, *args)
    g_read = writer.read_all(x, v_read)
    first, passes = g_read / target - 1.0, 0
    for passes in range(1, touch_up + 1):
        bad = np.abs(g_read[program] / target[program] - 1.0) > rtol
        bad &= book.writes[program] < max_pulses
        if not bad.any():
            passes -= 1
            break
        for i in program[bad.any(axis=1)]:
            x = _program_row(writer, x, int(i), target[i], book, *args)
        book.reads += m  # the previous whole-array read served as this pass's verify
        g_read = writer.read_all(x, v_read)
    if touch_up:  # judged on the finished array
        book.done[program] = np.abs(g_read[program] / target[program] - 1.0) <= rtol
    ds = verify_dataset(model, g_read, target, book.done, book.writes, book.disturb, book.energy,
                        book.pulses * width + (book.reads + m) * t_read, endurance)
    if touch_up:
        from ..results import variable

        ds["error_first_pass"] = variable(("row", "col"), first, "1",
                                          "relative programming error before the touch-up passes")
    ds.attrs.update(scheme=f"{scheme}, row-parallel", pulses=book.pulses, reads=book.reads + m,
                    solves=writer.solves, newton_iterations=writer.newton_iterations, touch_up_passes=passes)
    return x, ds


class _Book:
    """What :func:`write_verify_rows` counts."""

    def __init__(self, m, n):
        self.writes = np.zeros((m, n), np.int64)
        self.done = np.zeros((m, n), bool)
        self.disturb = np.zeros((m, n))
        self.energy, self.reads, self.pulses = 0.0, 0, 0


def _program_row(writer, x, i, target, book, v_read, scheme, width, substeps, ramps, polarity, rtol, max_pulses):
    """Verify-and-pulse row ``i`` until every cell passes or has had ``max_pulses``."""
    n = target.size
    direction, amp = np.zeros(n, np.int64), np.zeros(n)
    for _ in range(max_pulses + 1):
        g = writer.read_row(x, i, v_read)
        book.reads += 1
        book.done[i] = np.abs(g / target - 1.0) <= rtol  # every verify read re-judges the whole row
        need = ~book.done[i] & (book.writes[i] < max_pulses)
        if not need.any():
            break
        want = np.where(g < target, 1, -1)  # raise or lower the conductance
        for sign, (start, step, top) in ((1, ramps[0]), (-1, ramps[1])):
            sel = need & (want == sign)
            amp[sel] = np.where(direction[sel] == sign, np.minimum(amp[sel] + step, top), start)
            direction[sel] = sign
        for sign in (1, -1):
            sel = need & (want == sign)
            if not sel.any():
                continue
            v = np.where(sel, sign * polarity * amp, 0.0)
            v_in, v_bl = row_bias_voltages(writer.shape, i, v, scheme, grounded=writer.access is not None)
            x_new, energy = writer.pulse(x, v_in, v_bl, width, substeps, kind=(i, sign), row=i)
            moved = np.abs(x_new - x)
            moved[i, sel] = 0.0
            book.disturb += moved
            book.energy += energy
            book.writes[i, sel] += 1
            book.pulses += 1
            x = x_new
    return x


#: Newton iterations a warm start may take before the general solver takes over: a start from
#: the previous substep converges in 2-4 (measured), quadratically.
WARM_MAX_ITER = 8


def _warm_newton(net, wires, cells, v_in, start, opts: NewtonOptions):
    """Plain Newton on one vector from ``start = (v_wl, v_bl)``, with the kernels of
    :func:`cimphys.circuits.newton.solve_nonlinear`'s batched path without its per-call set-up;
    None when it does not converge in ``WARM_MAX_ITER`` iterations (the caller then runs the
    general solver).

    A point is accepted when the step's linearisation error meets the KCL tolerance and the
    independent KCL check of the full network with the cells' true currents passes
    (:func:`cimphys.circuits.newton_batch.kcl_excess`, the general solver's last test): the
    update test is left out, so a linear cell (VTEAM's) is done after one step.  The first
    step's linear solve is exact (no inexact-Newton forcing term: the start is near)."""
    m, n = net.shape
    v = np.asarray(v_in, dtype=np.float64).reshape(1, m)
    vw, vb = (np.array(a, dtype=np.float64).reshape(1, m, n) for a in start)
    i, g = _iv(cells, vw, vb)
    eta = np.array([0.0])  # a warm start is near: solve the first step fully (linear cells: done)
    for it in range(1, WARM_MAX_ITER + 1):
        if (g < 0).any() or not np.isfinite(g).all():
            return None
        vw_n, vb_n, res, _, _ = solve_stamps(wires, g, i - g * (vw - vb), v, vb, RTOL_SOLVE, eta)
        i_n, g_n = _iv(cells, vw_n, vb_n)
        residual, dv, scale_v, i_max, ok = newton_measures(i, g, vw, vb, vw_n, vb_n, i_n, g_n)[0]
        if not (ok > 0 and np.isfinite(res[0])):
            return None
        kcl_ok = residual <= opts.atol_kcl + opts.rtol_kcl * i_max
        # KCL alone, then the full-network check: a step whose linearisation error is within
        # the KCL tolerance lands on the answer (a linear cell's first step is exact), and the
        # check with the cells' true currents does not trust the step
        if kcl_ok and kcl_excess(wires, v, vw_n, vb_n, i_n, g_n, atol=opts.atol_kcl, rtol=opts.rtol_kcl,
                               vntol=opts.vntol, rtol_solve=RTOL_SOLVE)[0] <= 0.0:
            i_out = output_currents(net, i_n, vb_n)[0]
            return NonlinearSolution(vw_n[0], vb_n[0], i_out, i_n[0], np.array([it]), np.array([residual]),
                                     ("newton",))
        eta = np.array([min(1e-2, dv / max(scale_v, 1e-300))])
        if dv > opts.v_step_max:  # voltage limiting, as the general solver does
            lam = opts.v_step_max / dv
            vw_n, vb_n = vw + lam * (vw_n - vw), vb + lam * (vb_n - vb)
            i_n, g_n = _iv(cells, vw_n, vb_n)
        vw, vb, i, g = vw_n, vb_n, i_n, g_n
    return None


def _iv(cells, vw, vb):
    """Current (A) and dI/dV (S) of every cell at the node voltages."""
    v = (vw - vb).reshape(-1)
    i, g = np.empty_like(v), np.empty_like(v)
    cells._evaluate(v, i, g)
    return i.reshape(vw.shape), g.reshape(vw.shape)


def _row_memory_voltage(cells, sol, row):
    """The voltage across row ``row``'s memory elements (V, ``(N,)``) at the solution."""
    from ..devices.transistor_memory import TransistorMemoryCell

    m, n = sol.v_wl.shape
    one = TransistorMemoryCell(cells.mosfet, cells.model, cells.state.reshape(m, n)[row:row + 1],
                               float(cells.v_gate[row % cells.v_gate.size]))
    return one.memory_voltage(sol.v_wl[row:row + 1], sol.v_bl[row:row + 1])[0]
