"""A 1T1R array with one row's gates on: the exact operating point from one word line.

With gate selection (:class:`cimphys.devices.TransistorMemoryCell`, every gate line but the
selected row's at 0 V and every line at or above 0 V) the access transistors of the other rows
are cut off: in the level-1 law their drain current and all its derivatives are exactly zero
(``V_gs <= 0 < V_th``).  Those cells are open circuits, so

* every other word line carries no current: all its nodes sit at its source voltage;
* bit line ``j`` carries only the selected cell's current ``I_j``, from the selected row to the
  sense end through ``(M - row)`` wire segments ``r_bl`` and ``r_sense``: the bit-line node under
  the selected cell is at ``e_j + I_j R_j``, ``R_j = (M - row) r_bl + r_sense``, the nodes
  above it (towards the open row-0 end) at the same voltage, the nodes below it lower by
  ``I_j r_bl`` per segment;
* the memory elements of the other rows carry no current and see 0 V (their internal node
  floats to the word-line voltage): their states do not move.

What is left is exact and small: the selected word line (driver, ``r_wl`` segments) with ``N``
cells, each to its bit-line node and through ``R_j`` to its source: ``2N`` unknowns
``(u_j, b_j)`` in a banded Jacobian (bandwidth 2 when interleaved), solved by Newton with
:func:`scipy.linalg.solve_banded` in ``O(N)`` per iteration instead of the full ``2MN`` network.
The answer is the full network's (tested against :func:`cimphys.circuits.newton.solve_nonlinear`
on the same array).

References
----------
.. [1] H. Shichman, D. A. Hodges, IEEE J. Solid-State Circuits 3, 285 (1968),
   doi:10.1109/JSSC.1968.1049902 (the level-1 cut-off: no drain current below threshold).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_banded

from ..errors import ConvergenceError
from .newton_options import NewtonOptions, NonlinearSolution

__all__ = ["row_is_gated", "solve_gated_row"]


def row_is_gated(cells, net, v_in, row) -> bool:
    """Whether :func:`solve_gated_row` gives the exact answer: scalar wires with a bit-line
    path (``r_bl`` or ``r_sense`` > 0), one row's gate on and every other gate below the
    transistor's threshold with every line at or above 0 V (cut-off whatever the node voltages)."""
    if row is None or not all(np.ndim(a) == 0 or np.unique(a).size == 1 for a in
                              (net.r_wl, net.r_bl, net.r_driver, net.r_sense)):
        return False
    if float(np.max(net.r_bl)) * net.shape[0] + float(np.max(net.r_sense)) <= 0.0:
        return False
    others = np.delete(np.broadcast_to(cells.v_gate, (net.shape[0],)), row)  # one gate voltage: every row's
    vto = float(cells.mosfet.packed()[0])
    return bool((others <= 0.0).all() and vto > 0.0 and min(np.min(v_in), np.min(net.v_bl_end)) >= 0.0)


def solve_gated_row(cells, net, v_in, row: int, start=None, options: NewtonOptions | None = None):
    """Operating point of the array with only ``row``'s transistors on (module docstring).

    Parameters
    ----------
    cells : TransistorMemoryCell
        The array's cells (states ``(M, N)``); only row ``row``'s are evaluated.
    net : Network
        Its wires and bit-line end sources (scalar wires: :func:`row_is_gated`).
    v_in : ndarray (M,), V
    row : int
    start : (u (N,), b (N,)), optional
        Word-line and bit-line node voltages of the selected row to start from.

    Returns
    -------
    NonlinearSolution
        Full ``(M, N)`` node voltages and cell currents, ``i_out (N,)``, iterations, residual.

    Raises
    ------
    ConvergenceError
        When Newton does not meet the KCL tolerance in ``options.max_iter`` iterations.
    """
    from ..devices.transistor_memory import TransistorMemoryCell

    opts = options or NewtonOptions()
    m, n = net.shape
    r_wl, r_bl = float(np.max(net.r_wl)), float(np.max(net.r_bl))
    g_left = 1.0 / (float(np.max(net.r_driver)) + r_wl)
    g_w = 1.0 / r_wl
    r_col = (m - row) * r_bl + float(np.max(net.r_sense))
    e = np.asarray(net.v_bl_end, dtype=float)
    src = float(v_in[row])
    cell = TransistorMemoryCell(cells.mosfet, cells.model, cells.state.reshape(m, n)[row:row + 1],
                                float(cells.v_gate[row % cells.v_gate.size]))
    u, b = (np.full(n, src), e.copy()) if start is None else (np.array(start[0], float), np.array(start[1], float))
    right = np.full(n, g_w)
    right[-1] = 0.0  # the far end is open
    left = np.full(n, g_w)
    left[0] = g_left
    # the KCL residual cannot fall below the rounding of the node voltages times the wire
    # conductances that meet at a node (0.4 S wires against uA cells: above rtol_kcl alone)
    floor = 8.0 * np.finfo(float).eps * (g_left + 2.0 * g_w + 1.0 / r_col)
    settled = False
    for it in range(1, opts.max_iter + 1):
        i, a, bs = (x[0] for x in cell.stamp(u[None], b[None]))
        u_prev = np.concatenate(([src], u[:-1]))
        u_next = np.concatenate((u[1:], [0.0]))
        f_u = left * (u_prev - u) + right * (u_next - u) - i
        f_b = i - (b - e) / r_col
        i_max = max(float(np.abs(i).max()), float(np.abs(b - e).max()) / r_col, 1e-300)
        residual = max(np.abs(f_u).max(), np.abs(f_b).max())
        v_max = max(float(np.abs(u).max()), float(np.abs(b).max()), abs(src))
        if settled and residual <= opts.atol_kcl + opts.rtol_kcl * i_max + floor * v_max:
            return _solution(net, v_in, row, u, b, i, e, r_bl, it - 1, residual)
        ab = np.zeros((5, 2 * n))  # interleaved (u_0, b_0, u_1, ...): ab[2 + r - c, c] = J[r, c]
        ab[2, 0::2] = -(left + right) - a      # dF_u/du_j
        ab[1, 1::2] = bs                       # dF_u/db_j  (-dI/db = bs)
        ab[3, 0::2] = a                        # dF_b/du_j
        ab[2, 1::2] = -bs - 1.0 / r_col        # dF_b/db_j
        ab[0, 2::2] = right[:-1]               # dF_u_j/du_{j+1}
        ab[4, 0:-2:2] = left[1:]               # dF_u_{j+1}/du_j
        rhs = np.empty(2 * n)
        rhs[0::2], rhs[1::2] = -f_u, -f_b
        dz = solve_banded((2, 2), ab, rhs)
        step = float(np.abs(dz).max())
        lam = min(1.0, opts.v_step_max / step) if step > 0 else 1.0
        u, b = u + lam * dz[0::2], b + lam * dz[1::2]
        settled = lam == 1.0 and step <= opts.vntol + opts.rtol_v * v_max  # the update test, as SPICE's
    raise ConvergenceError(f"row {row}: gated-row Newton did not meet the KCL tolerance (A)", iterations=opts.max_iter,
                           residual=float(max(np.abs(f_u).max(), np.abs(f_b).max())))


def _solution(net, v_in, row, u, b, i, e, r_bl, iterations, residual):
    """The full network's voltages and currents from the selected row's (module docstring)."""
    m, n = net.shape
    v_wl = np.repeat(np.asarray(v_in, float)[:, None], n, axis=1)
    v_wl[row] = u
    k = np.arange(m)[:, None]
    v_bl = e[None, :] + i[None, :] * ((m - np.maximum(k, row)) * r_bl + float(np.max(net.r_sense)))
    v_bl[row] = b  # the same value, as solved
    i_cell = np.zeros((m, n))
    i_cell[row] = i
    return NonlinearSolution(v_wl, v_bl, i.copy(), i_cell, np.array([iterations]), np.array([residual]),
                             ("gated row",))
