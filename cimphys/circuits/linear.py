"""The linear nodal solve: one dispatcher that chooses a path, falls back and finishes.

``v_wl, v_bl, i_out = solve_linear(network, a, b, c, v_in)`` solves Kirchhoff's current law at
every node of ``network`` (:class:`~cimphys.circuits.network.Network`) for the linearised cell
stamp ``I_cell = a * v_wl - b * v_bl + c`` (see :mod:`cimphys.circuits.network`).  Returns
``v_wl, v_bl`` of shape ``([batch,] M, N)`` in V and ``i_out`` of shape ``([batch,] N)`` in A,
positive into the sense node.  The answer has a relative residual below ``tol`` (default 1e-12)
or the call raises :class:`~cimphys.errors.ConvergenceError`; it never returns an unconverged
answer.  :func:`solve_with_report` returns the same with a :class:`SolveReport`: which path
answered, its iterations and residual, whether it fell back, and its wall time.

Paths (each in its own module; each returns voltages with its iterations and residual, or
``None`` to decline):

* ``"direct"`` (:mod:`cimphys.circuits.direct`): SuperLU on the merged nodal matrix, any stamp,
  any option; the reference and the fallback of every other path;
* ``"symmetric_cg"`` (:mod:`cimphys.circuits.schur`): preconditioned CG on the BL Schur
  complement, for symmetric stamps (``a == b >= 0``) with no merged or fixed line node, run on
  until the output currents too are within ``tol`` of their scale;
* ``"iterative"`` (:mod:`cimphys.circuits.iterative`): block Gauss-Seidel over the lines with
  BiCGSTAB, any stamp, memory linear in the cells;
* ``"block"`` (:mod:`cimphys.circuits.block`): every WL eliminated exactly, block LU over the
  rows; reused for any batch and for the transfer matrix (:mod:`cimphys.circuits.transfer`).

:func:`choose_path` makes the choice of ``method="auto"`` (see its docstring and
``benchmarks/bench_solver_choice.py``, which measures it).  A path that misses ``tol``, or
gives a node outside its sources' range in a passive network (maximum principle), falls back to
the direct one, which raises :class:`~cimphys.errors.ConvergenceError` rather than return a wrong
answer.

References
----------
.. [1] A. Chen, "A comprehensive crossbar array model with solutions for line resistance and
   nonlinear device characteristics", IEEE Trans. Electron Devices 60, 1318 (2013),
   doi:10.1109/TED.2013.2246791.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..checks import as_scalar
from ..errors import ConvergenceError, InputError
from . import schur
from .block import BlockFactor, block_fits
from .direct import MAX_DIRECT_NODES, network_residual, solve_direct
from .iterative import MAX_ITERATIONS, solve_iterative
from .lines import fixed_point_residual, output_change
from .network import Network, cell_currents, check_stamp, output_currents

__all__ = [
    "METHODS",
    "PATHS",
    "RTOL_SOLVE",
    "SolveReport",
    "choose_path",
    "solve_factored",
    "solve_linear",
    "solve_with_report",
]

#: Relative residual every solve must reach (KCL, in units of the largest branch current).
RTOL_SOLVE = 1e-12
#: ``method="auto"`` leaves the direct path from this many cells on, for stamps the symmetric CG
#: does not take.
AUTO_ITERATIVE_CELLS = 4096
METHODS = ("auto", "direct", "iterative", "block")
#: The paths a :class:`SolveReport` may name.
PATHS = ("direct", "symmetric_cg", "iterative", "block")
#: How far (relative to the largest source voltage) a node of a passive network may lie outside
#: its sources' range before the answer is refused.  Exact arithmetic gives 0 (maximum
#: principle); a sound solve's rounding is ~cond * 1e-16 of the voltage scale, below 1e-12 for
#: any physical array (G r <= 1), so 1e-9 refuses only answers rounding has swamped, like the
#: 1041 V node of a 0.2 V source that G = 1e20 S with 1 ohm wires gave.
RTOL_BOUNDS = 1e-9
#: ``method="auto"`` factorises (:class:`~cimphys.circuits.block.BlockFactor`) when a batch has
#: this many inputs.
AUTO_BLOCK_BATCH = 8
#: ``method="auto"`` takes the block factor, whatever the stamp and batch, for arrays of at most
#: this many columns: its dense blocks are then N x N of a few hundred numbers, cheaper than the
#: CG's iterations (measured at 16 columns, benchmarks/bench_solver_choice.py).
AUTO_BLOCK_MAX_COLS = 16


@dataclass(frozen=True)
class SolveReport:
    """What a linear solve did.

    Attributes
    ----------
    path : str
        The path that gave the answer, one of :data:`PATHS`.
    iterations : int
        Krylov iterations of that path (the largest over the batch); 1 for a factorisation.
    residual : float
        Relative residual it reached (dimensionless; the KCL residual for ``"direct"``, the
        fixed-point residual of the line sweeps for the others).
    fell_back : bool
        True when the path first chosen (or forced) declined or missed and ``path`` answered
        instead.
    time : float
        Wall time of the solve, s.
    """

    path: str
    iterations: int
    residual: float
    fell_back: bool
    time: float

    def attrs(self) -> dict:
        """The report as Dataset attributes (netCDF-safe: no booleans)."""
        return {"solver_path": self.path, "solver_iterations": int(self.iterations),
                "solver_residual": float(self.residual), "solver_fell_back": int(self.fell_back),
                "solver_time": float(self.time), "solver_time_units": "s"}


def choose_path(network: Network, a: np.ndarray, b: np.ndarray, batch: int, method: str = "auto") -> str:
    """The first path ``solve_linear`` tries for ``method`` on this network, stamp and batch.

    ``"auto"``: the block factor for arrays of at most ``AUTO_BLOCK_MAX_COLS`` columns where it
    applies; else the symmetric CG wherever the stamp qualifies
    (:func:`cimphys.circuits.schur.eligible`: ``a == b >= 0``, no merged or fixed line node),
    whatever the shape and batch: ``benchmarks/bench_solver_choice.py`` measured these the
    fastest of the four paths on every case of its grid.  Otherwise (a non-symmetric stamp, zero wire
    segments or ends) the block path for batches of at least ``AUTO_BLOCK_BATCH`` inputs on
    arrays from ``AUTO_ITERATIVE_CELLS`` cells when the factor fits in
    ``block.MAX_BLOCK_BYTES``, the iterative path from ``AUTO_ITERATIVE_CELLS`` cells on, and
    the direct path for small arrays.  ``"iterative"`` takes the symmetric CG where it
    qualifies.
    """
    if method == "auto" and network.shape[1] <= AUTO_BLOCK_MAX_COLS and block_fits(network):
        return "block"
    if method in ("auto", "iterative") and schur.eligible(network, a, b):
        return "symmetric_cg"
    big = a.size >= AUTO_ITERATIVE_CELLS
    if method == "block" or (method == "auto" and big and batch >= AUTO_BLOCK_BATCH and block_fits(network)):
        return "block"
    if method == "iterative" or (method == "auto" and big):
        return "iterative"
    return "direct"


def solve_linear(network: Network, a, b, c, v_in, *, method: str = "auto", tol: float = RTOL_SOLVE):
    """Node voltages and output currents of the crossbar for a linearised cell stamp.

    Parameters
    ----------
    network : Network
        The wires (see :mod:`cimphys.circuits.network`).
    a, b : array_like, (M, N), S
        Stamp coefficients: ``I_cell = a * v_wl - b * v_bl + c``.
    c : array_like, (M, N) or (batch, M, N), A
        Stamp offset.
    v_in : array_like, (M,) or (batch, M), V
        Word-line source voltages.
    method : {"auto", "direct", "iterative", "block"}
        Solver: "direct" (SuperLU on the merged nodal matrix), "iterative" (Numba line
        relaxation + CG for symmetric stamps or BiCGSTAB, memory linear in the cells), "block"
        (:class:`~cimphys.circuits.block.BlockFactor`); "auto" chooses (:func:`choose_path`).
    tol : float
        Relative residual to reach.

    Returns
    -------
    v_wl, v_bl : ndarray, ([batch,] M, N), V
    i_out : ndarray, ([batch,] N), A

    Raises
    ------
    InputError
        Bad shapes or values, or a singular network.
    ConvergenceError
        If no path meets ``tol``.
    """
    return solve_with_report(network, a, b, c, v_in, method=method, tol=tol)[:3]


def solve_with_report(network: Network, a, b, c, v_in, *, method: str = "auto", tol: float = RTOL_SOLVE,
                      path: str | None = None):
    """:func:`solve_linear` with its :class:`SolveReport`: ``(v_wl, v_bl, i_out, report)``.

    ``path`` (one of :data:`PATHS`) tries that path first whatever ``method`` would choose (for
    benchmarks and tests of the choice); it still falls back to the direct path if it declines.
    """
    start = time.perf_counter()
    if not isinstance(network, Network):
        raise InputError(f"network: expected a Network, got {type(network).__name__}")
    if method not in METHODS:
        raise InputError(f"method: expected one of {METHODS}, got {method!r}")
    if path is not None and path not in PATHS:
        raise InputError(f"path: expected one of {PATHS} or None, got {path!r}")
    tol = as_scalar("tol", tol, low=0.0, low_open=True)
    a, b, c3, v2, batched = check_stamp(network, a, b, c, v_in)
    if method == "direct" and 2 * a.size > MAX_DIRECT_NODES:
        raise InputError(f"method='direct': the {network.shape[0]} x {network.shape[1]} array has {2 * a.size} nodes, "
                         f"above the direct path's limit of {MAX_DIRECT_NODES}; use method='iterative' or 'auto'")
    forced = path is not None
    first = path if forced else choose_path(network, a, b, v2.shape[0], method)
    path, found = first, None
    if path == "symmetric_cg":
        if schur.eligible(network, a, b):
            found = _symmetric_cg(network, a, b, c3, v2, tol)
        if found is None:
            path = _after_cg(network, v2.shape[0], method, forced=forced)
    if path == "block":
        return _factored(BlockFactor(network, a, b), a, b, c3, v2, batched, tol, start, fell_back=first != "block")
    if path == "iterative" and found is None:
        found = solve_iterative(network, a, b, c3, v2, tol)
    if path != "direct" and found is not None:
        return _finish(network, a, b, c3, v2, batched, found, path, path != first, start)
    return _fallback(network, a, b, c3, v2, batched, tol, first != "direct", start)


def _symmetric_cg(network, a, b, c3, v2, tol):
    """The symmetric CG to ``tol``, then on until the output currents are within ``tol`` of their
    scale too; ``None`` where it cannot get there.

    The CG's residual is a node-voltage change relative to the source voltages; where the sensed
    end of a bit line has a small resistance, the drop across it, and so the output current, is a
    small difference of node voltages, and the voltage residual reaches it amplified (on a 7 x 5
    array with 2 ohm wires and biased BL ends, a residual of 6e-14 left 2e-11 in ``i_out``).
    :func:`~cimphys.circuits.lines.output_change` measures that error by one more sweep; the CG
    then runs on to the residual that brings it within ``tol`` (one or two more iterations),
    with an iteration cap, so that a residual rounding does not let it reach is declined quickly.
    """
    found = schur.solve_symmetric(network, a, c3, v2, tol)
    if found is None:
        return None
    change = output_change(network, a, b, c3, v2, found[0], found[1])
    if change <= tol:
        return found
    tighter = max(found[3] * tol / change / 4.0, 1e-300)  # the gap, with a margin for the rate
    again = schur.solve_symmetric(network, a, c3, v2, tighter, max_iterations=2 * found[2] + 10)
    if again is None or output_change(network, a, b, c3, v2, again[0], again[1]) > tol:
        return None
    return again[0], again[1], found[2] + again[2], again[3]


def _after_cg(network: Network, batch: int, method: str, *, forced: bool) -> str:
    """The path that takes over where the symmetric CG declines: the block factor on arrays below
    ``AUTO_ITERATIVE_CELLS`` cells or for batches of ``AUTO_BLOCK_BATCH`` (where it fits), else the
    iterative path (``method="auto"``); the direct path for a forced CG."""
    if forced:
        return "direct"
    small = network.shape[0] * network.shape[1] < AUTO_ITERATIVE_CELLS
    if method == "auto" and (small or batch >= AUTO_BLOCK_BATCH) and block_fits(network):
        return "block"
    return "iterative"


def solve_factored(factor: BlockFactor, c, v_in, *, tol: float = RTOL_SOLVE):
    """:func:`solve_with_report` with a :class:`~cimphys.circuits.block.BlockFactor` already
    built for the stamp: ``(v_wl, v_bl, i_out, report)``, residual-checked, falling back to the
    direct path if the block solve misses ``tol``."""
    start = time.perf_counter()
    a, b, c3, v2, batched = check_stamp(factor.network, factor.a, factor.b, c, v_in)
    return _factored(factor, a, b, c3, v2, batched, tol, start)


def _factored(factor: BlockFactor, a, b, c3, v2, batched, tol, start, *, fell_back: bool = False):
    net = factor.network
    v_wl, v_bl = factor.solve(c3, v2)
    res = fixed_point_residual(net, a, b, c3, v2, v_wl, v_bl)
    if res <= tol:
        return _finish(net, a, b, c3, v2, batched, (v_wl, v_bl, 1, res), "block", fell_back, start)
    return _fallback(net, a, b, c3, v2, batched, tol, True, start)


def _fallback(network, a, b, c3, v2, batched, tol, fell_back, start):
    """The direct SuperLU path, the last resort of every other path."""
    if 2 * a.size > MAX_DIRECT_NODES:
        raise ConvergenceError(
            f"crossbar solve missed tol={tol:g} and the array is too large for the direct path",
            iterations=MAX_ITERATIONS,
            residual=float("nan"),
        )
    v_wl, v_bl = solve_direct(network, a, b, c3, v2)
    if not (np.isfinite(v_wl).all() and np.isfinite(v_bl).all()):
        raise InputError("network: the nodal matrix is singular (non-finite node voltages)")
    res = network_residual(network, a, b, c3, v2, v_wl, v_bl)
    if res > tol:
        raise ConvergenceError("direct crossbar nodal solve missed its tolerance", iterations=1, residual=res)
    return _finish(network, a, b, c3, v2, batched, (v_wl, v_bl, 1, res), "direct", fell_back, start)


def _within_sources(network, a, b, c3, v2, v_wl, v_bl) -> bool:
    """Maximum principle: every node of a passive network (cells ``a == b >= 0``, ``c == 0``,
    resistive wires) lies within the range of its source voltages, per batch member.

    True where it holds within :data:`RTOL_BOUNDS`, or where the stamp is not passive (a
    linearised nonlinear cell carries a current source ``c``) or there is no source.
    """
    if c3.any() or not np.array_equal(a, b) or (a < 0).any():
        return True
    src_bl = network.v_bl_end[~network.bl_floating]
    src_wl = v2[:, ~network.wl_floating]
    lo = np.minimum(src_wl.min(axis=1, initial=np.inf), src_bl.min(initial=np.inf))
    hi = np.maximum(src_wl.max(axis=1, initial=-np.inf), src_bl.max(initial=-np.inf))
    if not np.isfinite(lo).all():
        return True
    slack = RTOL_BOUNDS * np.maximum(np.abs(lo), np.abs(hi))
    nb = v_bl.shape[0]
    nodes_lo = np.minimum(v_wl.reshape(nb, -1).min(axis=1), v_bl.reshape(nb, -1).min(axis=1))
    nodes_hi = np.maximum(v_wl.reshape(nb, -1).max(axis=1), v_bl.reshape(nb, -1).max(axis=1))
    return bool((nodes_lo >= lo - slack).all() and (nodes_hi <= hi + slack).all())


def _finish(network, a, b, c3, v2, batched, found, path, fell_back, start):
    """Check the answer against the maximum principle, compute ``i_out``, write the report."""
    v_wl, v_bl, iterations, residual = found
    if not _within_sources(network, a, b, c3, v2, v_wl, v_bl):
        if path != "direct":  # a residual-checked answer that no passive network can give: try SuperLU
            return _fallback(network, a, b, c3, v2, batched, RTOL_SOLVE, True, start)
        g_r = float(np.abs(a).max() * max(network.r_wl.max(), network.r_bl.max(), 1e-300))
        raise ConvergenceError(
            "crossbar nodal solve gave node voltages outside its sources' range, impossible for a "
            f"passive network (maximum principle); the system is too ill-conditioned for float64 "
            f"(largest cell conductance x wire segment resistance = {g_r:.3g})",
            iterations=1, residual=network_residual(network, a, b, c3, v2, v_wl, v_bl))
    if (network.sense_resistance() > 0).all():  # Ohm's law alone: skip the (B, M, N) cell currents
        i_cell = np.zeros((v_bl.shape[0], 1, v_bl.shape[2]))  # unused by output_currents here
    else:
        i_cell = cell_currents(a, b, c3, v_wl, v_bl)
    i_out = output_currents(network, i_cell, v_bl)
    report = SolveReport(path, int(iterations), float(residual), fell_back, time.perf_counter() - start)
    if not batched:
        return v_wl[0], v_bl[0], i_out[0], report
    return v_wl, v_bl, i_out, report
