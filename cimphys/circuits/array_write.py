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
from .newton import NewtonOptions, solve_nonlinear
from .nodal import Network

__all__ = ["SCHEMES", "apply_pulse", "write_bias_voltages"]

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
                r_driver=0.0, r_sense=0.0, options: NewtonOptions | None = None, rtol: float = 1e-6):
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
    for k in range(substeps):
        sol = solve_nonlinear(net, model.read_cell(x), v_in, options)
        v_cell = sol.v_wl - sol.v_bl
        v_cells[k], i_cells[k] = v_cell, sol.i_cell
        e_sources += dt * (_wl_source_power(net, v_in, sol.v_wl) - float(net.v_bl_end @ sol.i_out))
        moving = np.abs(v_cell) > 0
        if moving.any():
            ds = integrate(model, hold, x.reshape(-1), v_scale=v_cell.reshape(-1), record="final",
                           quantities=("state",), rtol=rtol, atol=1e-12)
            x = ds.state.values[-1].reshape(m, n)
    return x, _dataset(model, x0, x, v_cells, i_cells, dt, e_sources)


def _wl_source_power(net: Network, v_in: np.ndarray, v_wl: np.ndarray) -> float:
    """Power the word-line sources deliver, W (current through the driver end, ``r > 0``)."""
    r_lo = net.r_driver + net.r_wl[:, 0]
    if not (r_lo > 0).all() or net.wl_drive != "near":
        raise InputError("r_driver, r_wl: the source energy needs a resistive near end and wl_drive='near'")
    return float(np.sum(v_in * (v_in - v_wl[:, 0]) / r_lo))


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
