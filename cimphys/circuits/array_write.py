"""A write pulse applied through the array: every cell's state moved under its own voltage.

A V/2 or V/3 write drives the selected word line at ``v_write`` and its bit line at 0 V, the
other lines at fractions of ``v_write`` (:mod:`cimphys.circuits.sneak`).  Here the pulse is
*applied*: its width is cut into ``substeps``; in each, the array is solved as a circuit
(wires, drivers, the sense ends and every cell's own nonlinear I-V at its present state, by
:func:`cimphys.circuits.newton.solve_nonlinear`), and then every cell's state is integrated
over the substep under the voltage it actually sees (:func:`cimphys.devices.integrate`, error
controlled, one voltage per cell).  So the selected cell switches with its IR drop, and
half-selected cells drift as far as their device law lets them (write disturb); the Stanford
release's minimum field, for example, keeps a V/3 half-selected cell still.

:func:`write_verify` programs a target conductance matrix cell by cell with such pulses
(incremental step pulse programming, SET or RESET as the read-back asks), reading back through
the array (:func:`read_through_array`: one row driven at ``v_read``, every bit line sensed at
0 V, so the read-back carries the IR drop and the sneak currents) after every pulse, and
reports the programming error, the disturb of every cell while others were written, the
energy, the time and the writes per cell (against the card's endurance window when given).

Splitting the circuit (voltages held over a substep) from the device (states integrated) is
first order in the substep: the error falls like ``width / substeps``, and the validation
against an ngspice transient of the same netlist (behavioural cells whose state is a capacitor
voltage, :func:`transient_netlist`) states the substeps it needs.

References
----------
.. [1] A. Chen, "A comprehensive crossbar array model with solutions for line resistance and
   nonlinear device characteristics", IEEE Trans. Electron Devices 60, 1318 (2013),
   doi:10.1109/TED.2013.2246791 (V/2, V/3 write schemes on the full network).
.. [2] E. Hairer, G. Wanner, C. Lubich, *Geometric Numerical Integration*, 2nd ed., Springer
   (2006), sec. II.5 (splitting methods, first-order Lie splitting).
"""

from __future__ import annotations

import numpy as np

from ..checks import as_array, as_scalar
from ..errors import InputError
from .network import Network
from .newton import NewtonOptions, solve_nonlinear

__all__ = ["SCHEMES", "apply_pulse", "read_through_array", "write_bias_voltages", "write_verify"]

#: Fractions of ``v_write`` on (unselected word lines, unselected bit lines).
SCHEMES = {"V/2": (0.5, 0.5), "V/3": (1.0 / 3.0, 2.0 / 3.0)}


def write_bias_voltages(shape, v_write: float, row: int, col: int, scheme: str = "V/3"):
    """Word-line sources ``(M,)`` and bit-line end sources ``(N,)`` (V) to write cell ``(row, col)``.

    ``v_write`` may be negative (a RESET of a bipolar cell): every line scales with it.
    """
    if scheme not in SCHEMES:
        raise InputError(f"scheme: expected one of {list(SCHEMES)}, got {scheme!r}")
    m, n = shape
    v = as_scalar("v_write", v_write, unit="V")
    row = int(as_scalar("row", row, low=0, high=m - 1))
    col = int(as_scalar("col", col, low=0, high=n - 1))
    f_wl, f_bl = SCHEMES[scheme]
    v_in = np.full(m, f_wl * v)
    v_in[row] = v
    v_bl = np.full(n, f_bl * v)
    v_bl[col] = 0.0
    return v_in, v_bl


def apply_pulse(model, state, v_in, v_bl_end, width: float, *, substeps: int = 16, r_wl=1.0, r_bl=1.0,
                r_driver=0.0, r_sense=0.0, options: NewtonOptions | None = None, rtol: float = 1e-6,
                selector=None):
    """One write pulse through the array; returns ``(new_state, dataset)``.

    Parameters
    ----------
    model : cimphys.devices.DynamicModel
        The cells' device model (scalar parameters or ``(M, N)`` per-cell ones).
    state : array_like, (M, N)
        Every cell's state before the pulse (in ``model.state_unit``).
    v_in : array_like, (M,), V
        Word-line sources during the pulse.
    v_bl_end : array_like, (N,), V
        Bit-line end sources during the pulse.
    width : float, s
        Pulse width (ideal edges).
    substeps : int
        Circuit solves per pulse; the voltages are held over each.
    r_wl, r_bl, r_driver, r_sense : float or array, ohm
        The wires, as in :class:`cimphys.circuits.nodal.Network`.
    rtol : float
        Relative tolerance of each cell's state integration.
    selector : cimphys.devices.SinhSelector, optional
        1S1R cells (:class:`cimphys.devices.SelectorMemoryCell`): the state then moves under the
        memory element's own share of the cell voltage.

    Returns
    -------
    new_state : ndarray, (M, N)
    xarray.Dataset
        ``v_cell (substep, row, col)`` V and ``i_cell`` A at the start of each substep,
        ``state (row, col)`` after the pulse, ``delta_state``, ``energy_cells`` J (the energy
        the cells took, ``sum V I dt``) and ``energy_sources`` J (what the word-line and
        bit-line sources delivered).
    """
    from ..devices import integrate, pwl

    x = np.array(as_array("state", state, unit=model.state_unit, ndim=2), dtype=float)
    m, n = x.shape
    width = as_scalar("width", width, unit="s", low=0.0, low_open=True)
    substeps = int(as_scalar("substeps", substeps, low=1, high=100_000))
    net = Network.build((m, n), r_wl=r_wl, r_bl=r_bl, r_driver=r_driver, r_sense=r_sense, v_bl_end=v_bl_end)
    v_in = as_array("v_in", v_in, unit="V", shape=(m,))
    dt = width / substeps
    hold = pwl([0.0, dt], [1.0, 1.0])  # 1 V scaled per cell by its own voltage
    x0 = x.copy()
    v_cells, i_cells = np.empty((substeps, m, n)), np.empty((substeps, m, n))
    e_sources = 0.0
    from ..devices import SelectorMemoryCell

    for k in range(substeps):
        cells = model.read_cell(x) if selector is None else SelectorMemoryCell(selector, model, x)
        sol = solve_nonlinear(net, cells, v_in, options)
        v_cell = sol.v_wl - sol.v_bl
        v_cells[k], i_cells[k] = v_cell, sol.i_cell
        e_sources += dt * (wl_source_power(v_in, sol.i_cell) - float(net.v_bl_end @ sol.i_out))
        v_mem = v_cell if selector is None else cells.memory_voltage(v_cell)
        if (np.abs(v_mem) > 0).any():
            ds = integrate(model, hold, x.reshape(-1), v_scale=v_mem.reshape(-1), record="final",
                           quantities=("state",), rtol=rtol, atol=1e-12)
            x = ds.state.values[-1].reshape(m, n)
    return x, _dataset(model, x0, x, v_cells, i_cells, dt, e_sources)


def wl_source_power(v_in: np.ndarray, i_cell: np.ndarray) -> float:
    """Power the word-line sources deliver, W: a word line's only way out is through its cells
    (KCL), so its source supplies their summed current, whatever its wires (zero included)."""
    return float(v_in @ i_cell.sum(axis=1))


def _dataset(model, x0, x, v_cells, i_cells, dt, e_sources):
    import xarray as xr

    from ..results import variable

    unit = model.state_unit
    dims = ("substep", "row", "col")
    return xr.Dataset(
        {
            "v_cell": variable(dims, v_cells, "V", "cell voltage at the start of each substep"),
            "i_cell": variable(dims, i_cells, "A", "cell current at the start of each substep"),
            "state": variable(("row", "col"), x, unit, f"{model.state_long_name} after the pulse"),
            "delta_state": variable(("row", "col"), x - x0, unit, f"change of the {model.state_long_name}"),
            "energy_cells": variable((), float(np.sum(v_cells * i_cells) * dt), "J", "energy taken by the cells"),
            "energy_sources": variable((), e_sources, "J", "energy delivered by the line sources"),
        },
        attrs={"substep_duration_s": dt, "method": "Lie splitting: circuit solve, then per-cell integration"},
    )


def read_through_array(model, state, v_read: float, *, rows=None, r_wl=1.0, r_bl=1.0, r_driver=0.0,
                       r_sense=0.0, options: NewtonOptions | None = None) -> np.ndarray:
    """Conductance every cell reads as, ``i_out / v_read`` (S, ``(M, N)``), row by row.

    Row ``i`` is read with its word line at ``v_read``, the others and every bit line at 0 V:
    column ``j``'s sense current is cell ``(i, j)``'s current plus what the array adds (IR drop,
    sneak paths).  The rows are solved as one batch.  ``rows`` limits the rows read (the
    others are NaN).
    """
    x = np.asarray(state, dtype=float)
    m, n = x.shape
    rows = np.arange(m) if rows is None else np.atleast_1d(rows)
    v_in = np.zeros((rows.size, m))
    v_in[np.arange(rows.size), rows] = v_read
    net = Network.build((m, n), r_wl=r_wl, r_bl=r_bl, r_driver=r_driver, r_sense=r_sense)
    sol = solve_nonlinear(net, model.read_cell(x), v_in, options)
    g = np.full((m, n), np.nan)
    g[rows] = sol.i_out.reshape(rows.size, n) / v_read
    return g


def write_verify(model, state, g_target, *, v_read: float = 0.2, scheme: str = "V/3", width: float = 10e-9,
                 v_set=(1.2, 0.02, 2.0), v_reset=(1.2, 0.02, 2.0), rtol: float = 0.05, max_pulses: int = 200,
                 substeps: int = 2, t_read: float = 10e-9, endurance=None, r_wl=1.0, r_bl=1.0, r_driver=0.0,
                 r_sense=0.0, set_polarity: int = 1, cells=None):
    """Program ``g_target`` (S, read at ``v_read`` through the array) cell by cell, row-major.

    Each pulse is :func:`apply_pulse` with the ``scheme``'s bias; SET pulses (positive) start at
    ``v_set[0]`` V and grow by ``v_set[1]`` up to ``v_set[2]`` while the read-back stays low;
    RESET pulses (negative) likewise with ``v_reset``; a change of direction restarts the
    ramp.  A cell is done when its read-back is within ``rtol`` of its target, or after
    ``max_pulses`` (reported as failed, never silently).  ``set_polarity``: the sign of the
    pulses that raise the conductance (-1 for VTEAM).  ``cells``: ``(row, col)`` pairs to
    program, in that order (default: all, row-major); the others are left as they are.

    Returns
    -------
    new_state : ndarray, (M, N)
    xarray.Dataset
        ``g_read`` (the final read-back, S), ``error`` (relative to the target), ``done``,
        ``writes`` (pulses per cell), ``disturb`` (summed ``|delta state|`` of each cell while
        other cells were written), ``energy`` J (line sources, all pulses), ``time`` s (pulses
        plus reads of ``t_read`` each), and with ``endurance`` (an
        :class:`~cimphys.devices.variability.EnduranceWindow`) ``g_on_window``/``g_off_window``,
        the window each cell has left after its writes.
    """
    x = np.array(state, dtype=float)
    m, n = x.shape
    target = as_array("g_target", g_target, unit="S", low=0.0, low_open=True, shape=(m, n))
    wires = dict(r_wl=r_wl, r_bl=r_bl, r_driver=r_driver, r_sense=r_sense)
    writes = np.zeros((m, n), np.int64)
    done = np.zeros((m, n), bool)
    disturb = np.zeros((m, n))
    energy, reads, pulses = 0.0, 0, 0
    if set_polarity not in (1, -1):
        raise InputError(f"set_polarity: expected +1 or -1, got {set_polarity!r}")
    order = [(i, j) for i in range(m) for j in range(n)] if cells is None else [(int(i), int(j)) for i, j in cells]
    for i, j in order:
        direction, amp = 0, 0.0
        for _ in range(max_pulses + 1):
            g = read_through_array(model, x, v_read, rows=i, **wires)[i, j]
            reads += 1
            if abs(g / target[i, j] - 1.0) <= rtol:
                done[i, j] = True
                break
            if writes[i, j] >= max_pulses:
                break
            want = 1 if g < target[i, j] else -1
            ramp = v_set if want > 0 else v_reset
            amp = ramp[0] if want != direction else min(amp + ramp[1], ramp[2])
            direction = want
            v_in, v_bl = write_bias_voltages((m, n), set_polarity * want * amp, i, j, scheme)
            x_new, ds = apply_pulse(model, x, v_in, v_bl, width, substeps=substeps, **wires)
            moved = np.abs(x_new - x)
            moved[i, j] = 0.0
            disturb += moved
            x = x_new
            energy += float(ds.energy_sources)
            writes[i, j] += 1
            pulses += 1
    g_read = read_through_array(model, x, v_read, **wires)
    return x, verify_dataset(model, g_read, target, done, writes, disturb, energy,
                              pulses * width + (reads + m) * t_read, endurance)


def verify_dataset(model, g_read, target, done, writes, disturb, energy, time, endurance):
    """The write-verify report as a Dataset: per cell the read-back and target conductance (S),
    done, writes, disturb; in all the energy (J), the time (s) and the endurance window."""
    import xarray as xr

    from ..results import variable

    cells = ("row", "col")
    data = {
        "g_read": variable(cells, g_read, "S", "conductance read back through the array"),
        "error": variable(cells, g_read / target - 1.0, "1", "relative programming error"),
        "done": variable(cells, done, "1", "read-back within tolerance"),
        "writes": variable(cells, writes, "1", "write pulses applied to the cell"),
        "disturb": variable(cells, disturb, model.state_unit, "state change while other cells were written"),
        "energy": variable((), energy, "J", "energy delivered by the line sources"),
        "time": variable((), time, "s", "pulse and read time"),
    }
    if endurance is not None:
        on, off = endurance.window(np.maximum(writes, 1))
        data["g_on_window"] = variable(cells, on, "S", "on-state conductance left after the cell's writes")
        data["g_off_window"] = variable(cells, off, "S", "off-state conductance left after the cell's writes")
    return xr.Dataset(data)
