"""Nodal analysis of a crossbar with wire resistance: the network and the linear solver.

Contract (the nonlinear solver in :mod:`cimphys.circuits.newton` calls this every iteration)
--------------------------------------------------------------------------------------------
``network = Network.build((M, N), r_wl=..., r_bl=..., r_driver=..., r_sense=..., **options)``
    A frozen description of the wires.  ``r_wl (M, N)``: segment ``r_wl[i, j]`` lies on the
    *driver side* of WL node ``(i, j)`` (so ``r_wl[i, 0]`` joins the driver to cell ``(i, 0)``).
    ``r_bl (M, N)``: segment ``r_bl[i, j]`` lies on the *sense side* of BL node ``(i, j)`` (with
    the default sensing at row M-1, ``r_bl[M-1, j]`` joins the last cell to ``r_sense``).
    ``r_driver (M,)``, ``r_sense (N,)``.  Scalars broadcast.  Zero resistances are exact
    (nodes merge); nothing is ever divided by zero.

``v_wl, v_bl, i_out = solve_linear(network, a, b, c, v_in)``
    Solves Kirchhoff's current law at every node for the linearised cell stamp
    ``I_cell = a * v_wl - b * v_bl + c`` (A, from the WL node to the BL node of each cell),
    ``a, b`` of shape ``(M, N)`` in S, ``c`` of shape ``(M, N)`` or ``(batch, M, N)`` in A,
    ``v_in`` of shape ``(M,)`` or ``(batch, M)`` in V.  For a two-terminal cell linearised at
    ``V0``: ``a = b = dI/dV`` and ``c = I(V0) - a * V0``.  ``a != b`` (a non-symmetric system) is
    allowed for three-terminal cells.  Returns ``v_wl, v_bl`` of shape ``([batch,] M, N)`` in V
    and ``i_out`` of shape ``([batch,] N)`` in A, positive into the sense node.  The answer has a
    relative residual below ``tol`` (default 1e-12) or the call raises
    :class:`~cimphys.errors.ConvergenceError`; it never returns an unconverged answer.

Options of :meth:`Network.build` (defaults give the reference crossbar of DESIGN.md):
``wl_drive="near" | "both"`` (with ``"both"`` the far node ``(i, N-1)`` is also tied to
``v_in[i]`` through its own ``r_driver[i]``), ``sense_at="last" | "first"`` (row M-1 or row 0),
``v_bl_end (N,)`` the voltage the sense node of each BL is held at (V/2 and V/3 write schemes),
``wl_floating (M,)`` / ``bl_floating (N,)`` boolean masks of lines left without a source.

Method
------
Each WL and each BL is a chain: a tridiagonal system, factorised once per stamp by the Thomas
algorithm on its merged nodes (zero-resistance segments merge nodes; a zero end resistance
fixes the end node at its source).  The lines of one family couple to those of the other only
through the diagonal cell stamps.  Three exact paths, all residual-checked:

* ``method="direct"``: the merged nodal matrix assembled and factorised by SuperLU (any stamp,
  any option; the reference path and the fallback of the others);
* ``method="iterative"`` (Numba, memory linear in the cells): the fixed point of block
  Gauss-Seidel over the WL chains then the BL chains, solved for the BL voltages by
  preconditioned CG on the BL Schur complement when the stamp is symmetric (``a == b >= 0``,
  no merged WL nodes, see :mod:`cimphys.circuits.schur`), else by BiCGSTAB; the relative
  residual is the BL-voltage change of one more sweep over the voltage scale;
* ``method="block"`` (:class:`~cimphys.circuits.transfer.BlockFactor`, Numba + LAPACK): each WL
  chain eliminated exactly, leaving a block-tridiagonal system over rows with dense ``N x N``
  blocks, factorised by block LU (``M N^3`` flops, ``M N^2`` memory) and reused for any batch
  and the transfer matrix; Cholesky when ``a == b``.  It lives in
  :mod:`cimphys.circuits.transfer` with :func:`~cimphys.circuits.transfer.transfer_matrix`;
  this module re-exports ``BlockFactor``, ``transfer_matrix``, ``block_fits`` and
  ``block_eligible`` (imported on first access: that module imports this one).

``"auto"`` takes the symmetric CG path from ``AUTO_ITERATIVE_CELLS`` cells on when the stamp
qualifies (any batch: measured ~5x faster than the block path on 256 x 256 with 64 inputs),
else the block path for batches of at least ``AUTO_BLOCK_BATCH`` inputs when the factor fits in
``transfer.MAX_BLOCK_BYTES``, the iterative path from ``AUTO_ITERATIVE_CELLS`` cells on, and the direct
path for small arrays.  A path that misses ``tol`` falls back to the direct
one, which raises :class:`~cimphys.errors.ConvergenceError` rather than return a wrong answer.

References
----------
.. [1] C. Ho, J. Vlach, *Computer Methods for Circuit Analysis and Design*, 2nd ed., ch. 2
   (nodal formulation), Springer (1994).
.. [2] A. Chen, "A comprehensive crossbar array model with solutions for line resistance and
   nonlinear device characteristics", IEEE Trans. Electron Devices 60, 1318 (2013),
   doi:10.1109/TED.2013.2246791.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._numba import jit, jit_parallel, prange
from ..checks import as_array, as_scalar
from ..errors import ConvergenceError, InputError
from . import schur

__all__ = [
    "BlockFactor",
    "Chains",
    "LineFactor",
    "METHODS",
    "Network",
    "RTOL_SOLVE",
    "block_eligible",
    "block_fits",
    "cell_currents",
    "dissipation",
    "network_residual",
    "output_currents",
    "solve_linear",
    "transfer_matrix",
    "wl_end_currents",
]

#: Relative residual every solve must reach (KCL, in units of the largest branch current).
RTOL_SOLVE = 1e-12
#: ``method="auto"`` uses the iterative path from this many cells on (measured crossover).
AUTO_ITERATIVE_CELLS = 4096
METHODS = ("auto", "direct", "iterative", "block")
#: Largest system (nodes) the SuperLU fallback is allowed to factorise.
MAX_DIRECT_NODES = 2_000_000
#: How far (relative to the largest source voltage) a node of a passive network may lie outside
#: its sources' range before the answer is refused.  Exact arithmetic gives 0 (maximum
#: principle); a sound solve's rounding is ~cond * 1e-16 of the voltage scale, below 1e-12 for
#: any physical array (G r <= 1), so 1e-9 refuses only answers rounding has swamped, like the
#: 1041 V node of a 0.2 V source that G = 1e20 S with 1 ohm wires gave.
RTOL_BOUNDS = 1e-9
#: ``method="auto"`` factorises (:class:`BlockFactor`) when a batch has this many inputs.
AUTO_BLOCK_BATCH = 8


@dataclass(frozen=True, eq=False)
class Chains:
    """One family of lines (all WLs or all BLs) as resistor chains.

    Chain ``l`` has nodes ``0 .. n-1``; ``r_seg[l, k]`` joins node k to node k+1; ``r_lo[l]`` ties
    node 0 and ``r_hi[l]`` node n-1 to an ideal source.  A resistance of 0 merges nodes (or fixes
    a node to its source); ``inf`` means open (no source at that end).  Ohm.
    """

    r_seg: np.ndarray  # (L, n-1)
    r_lo: np.ndarray  # (L,)
    r_hi: np.ndarray  # (L,)

    @property
    def groups(self) -> np.ndarray:
        """Local index of the merged node each node belongs to, ``(L, n)`` int64."""
        step = np.concatenate([np.zeros((self.r_seg.shape[0], 1), bool), self.r_seg > 0], axis=1)
        return np.cumsum(step, axis=1, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Network:
    """The wires of an M x N crossbar (see the module docstring for the exact contract)."""

    r_wl: np.ndarray
    r_bl: np.ndarray
    r_driver: np.ndarray
    r_sense: np.ndarray
    v_bl_end: np.ndarray
    wl_floating: np.ndarray
    bl_floating: np.ndarray
    wl_drive: str = "near"
    sense_at: str = "last"

    @classmethod
    def build(
        cls,
        shape,
        r_wl=1.0,
        r_bl=1.0,
        r_driver=0.0,
        r_sense=0.0,
        *,
        wl_drive: str = "near",
        sense_at: str = "last",
        v_bl_end=0.0,
        wl_floating=False,
        bl_floating=False,
    ) -> Network:
        """Check and broadcast the wire description of an ``shape = (M, N)`` array."""
        m, n = _check_shape(shape)
        if wl_drive not in ("near", "both"):
            raise InputError(f"wl_drive: expected 'near' or 'both', got {wl_drive!r}")
        if sense_at not in ("last", "first"):
            raise InputError(f"sense_at: expected 'last' or 'first', got {sense_at!r}")
        net = cls(
            r_wl=_resistance("r_wl", r_wl, (m, n)),
            r_bl=_resistance("r_bl", r_bl, (m, n)),
            r_driver=_resistance("r_driver", r_driver, (m,)),
            r_sense=_resistance("r_sense", r_sense, (n,)),
            v_bl_end=_broadcast("v_bl_end", as_array("v_bl_end", v_bl_end, unit="V", ndim=(0, 1)), (n,)),
            wl_floating=_mask("wl_floating", wl_floating, (m,)),
            bl_floating=_mask("bl_floating", bl_floating, (n,)),
            wl_drive=wl_drive,
            sense_at=sense_at,
        )
        net._check_sources()
        return net

    @property
    def shape(self) -> tuple[int, int]:
        return self.r_wl.shape

    def wl_chains(self) -> Chains:
        """The M word lines as chains along the columns."""
        open_ = np.where(self.wl_floating, np.inf, 0.0)
        r_lo = self.r_driver + self.r_wl[:, 0] + open_
        r_hi = (self.r_driver if self.wl_drive == "both" else np.full_like(self.r_driver, np.inf)) + open_
        return Chains(np.ascontiguousarray(self.r_wl[:, 1:]), r_lo, r_hi)

    def bl_chains(self) -> Chains:
        """The N bit lines as chains along the rows (arrays transposed to ``(N, ...)``)."""
        open_ = np.where(self.bl_floating, np.inf, 0.0)
        inf = np.full_like(self.r_sense, np.inf)
        if self.sense_at == "last":
            seg, r_lo, r_hi = self.r_bl[:-1].T, inf, self.r_bl[-1] + self.r_sense + open_
        else:
            seg, r_lo, r_hi = self.r_bl[1:].T, self.r_bl[0] + self.r_sense + open_, inf
        return Chains(np.ascontiguousarray(seg), r_lo, r_hi)

    def bl_couplings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The BL wires as conductances, S: ``g (M, N)`` between rows t-1 and t of each BL (row 0:
        none); ``g_lo, g_hi (N,)`` the end conductances at rows 0 and M-1 (1/inf = 0: an open
        end); ``diag (M, N)``, what the BL wires add to the diagonal at each node."""
        m, n = self.shape
        bl = self.bl_chains()
        g = np.zeros((m, n))
        g[1:] = 1.0 / bl.r_seg.T
        g_lo, g_hi = 1.0 / bl.r_lo, 1.0 / bl.r_hi
        diag = np.zeros((m, n))
        diag[1:] += g[1:]
        diag[:-1] += g[1:]
        diag[0] += g_lo
        diag[-1] += g_hi
        return g, g_lo, g_hi, diag

    def sense_resistance(self) -> np.ndarray:
        """Resistance from the sensed end node of each BL to its sense node, ``(N,)`` ohm."""
        row = -1 if self.sense_at == "last" else 0
        return self.r_bl[row] + self.r_sense

    def _check_sources(self) -> None:
        if self.wl_drive != "both":
            return
        chains = self.wl_chains()
        shorted = (chains.r_lo == 0) & (chains.r_hi == 0) & (chains.r_seg.sum(axis=1) == 0)
        if shorted.any():
            i = int(np.argmax(shorted))
            raise InputError(
                f"r_driver, r_wl: with wl_drive='both' word line {i} has zero resistance between its two "
                "drivers, so the split of its current between them is undefined"
            )


def _check_shape(shape) -> tuple[int, int]:
    try:
        m, n = (int(s) for s in shape)
    except (TypeError, ValueError) as exc:
        raise InputError(f"shape: expected (M, N), got {shape!r}") from exc
    if m < 1 or n < 1:
        raise InputError(f"shape: expected M, N >= 1, got {(m, n)}")
    return m, n


def _broadcast(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if arr.ndim and arr.shape != shape:
        raise InputError(f"{name}: expected a scalar or shape {shape}, got {arr.shape}")
    out = np.ascontiguousarray(np.broadcast_to(arr, shape), dtype=np.float64)
    out.setflags(write=False)
    return out


def _resistance(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    arr = as_array(name, value, unit="ohm", low=0.0, ndim=(0, len(shape)))
    return _broadcast(name, arr, shape)


def _mask(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != bool:
        raise InputError(f"{name}: expected booleans, got {arr.dtype} {value!r:.60}")
    if arr.ndim and arr.shape != shape:
        raise InputError(f"{name}: expected a scalar or shape {shape}, got {arr.shape}")
    out = np.ascontiguousarray(np.broadcast_to(arr, shape))
    out.setflags(write=False)
    return out


# ---------------------------------------------------------------------------------------------
# Input checks shared by the solvers
# ---------------------------------------------------------------------------------------------


def check_stamp(network: Network, a, b, c, v_in):
    """Check the stamp and the inputs; return ``(a, b, c3, v2, batched)`` with batch axes.

    ``v2`` is ``(B, M)``; ``c3`` is ``(1, M, N)`` when ``c`` has no batch axis or a batch of one
    (every path broadcasts it: ``B`` copies would cost a pass over ``B M N`` values), else
    ``(B, M, N)``.
    """
    m, n = network.shape
    a = as_array("a", a, unit="S", shape=(m, n))
    b = as_array("b", b, unit="S", shape=(m, n))
    c = as_array("c", c, unit="A", ndim=(2, 3))
    v_in = as_array("v_in", v_in, unit="V", ndim=(1, 2))
    if v_in.shape[-1] != m:
        raise InputError(f"v_in: expected last axis of length M={m}, got shape {v_in.shape}")
    if c.shape[-2:] != (m, n):
        raise InputError(f"c: expected shape ({m}, {n}) or (batch, {m}, {n}), got {c.shape}")
    batched = v_in.ndim == 2 or c.ndim == 3
    nb = max(v_in.shape[0] if v_in.ndim == 2 else 1, c.shape[0] if c.ndim == 3 else 1)
    for name, arr, core in (("v_in", v_in, 1), ("c", c, 2)):
        if arr.ndim == core + 1 and arr.shape[0] not in (1, nb):
            raise InputError(f"{name}: batch size {arr.shape[0]} does not match the other input's {nb}")
    v2 = _writable(np.broadcast_to(v_in.reshape(-1, m), (nb, m)))
    c3 = _writable(c.reshape(-1, m, n))
    return _writable(a), _writable(b), c3, v2, batched


def _writable(arr: np.ndarray) -> np.ndarray:
    """A writable C-contiguous float64 array (one compiled signature per kernel, not two)."""
    ok = arr.flags.writeable and arr.flags.c_contiguous and arr.dtype == np.float64
    return arr if ok else np.array(arr, dtype=np.float64, order="C")


# ---------------------------------------------------------------------------------------------
# Direct path: merged nodal matrix + SuperLU
# ---------------------------------------------------------------------------------------------


class _Numbering:
    """Global numbering of the merged nodes (groups) of both families of chains."""

    def __init__(self, network: Network):
        self.wl, self.bl = network.wl_chains(), network.bl_chains()
        gw, gb = self.wl.groups, self.bl.groups
        nw, nbl = gw[:, -1] + 1, gb[:, -1] + 1
        off_w = np.concatenate([[0], np.cumsum(nw)[:-1]])
        off_b = np.concatenate([[0], np.cumsum(nbl)[:-1]]) + nw.sum()
        self.wl_gid = gw + off_w[:, None]  # (M, N)
        self.bl_gid = gb + off_b[:, None]  # (N, M)
        self.size = int(nw.sum() + nbl.sum())
        # Fixed groups: the end group of a chain whose end resistance is zero.
        self.fixed = np.zeros(self.size, bool)
        for ch, gid in ((self.wl, self.wl_gid), (self.bl, self.bl_gid)):
            self.fixed[gid[ch.r_lo == 0, 0]] = True
            self.fixed[gid[ch.r_hi == 0, -1]] = True

    def fixed_values(self, network: Network, v2: np.ndarray) -> np.ndarray:
        """Voltages of every group, filled at the fixed groups, ``(batch, size)``."""
        vals = np.zeros((v2.shape[0], self.size))
        lo, hi = self.wl.r_lo == 0, self.wl.r_hi == 0
        vals[:, self.wl_gid[hi, -1]] = v2[:, hi]
        vals[:, self.wl_gid[lo, 0]] = v2[:, lo]
        lo, hi = self.bl.r_lo == 0, self.bl.r_hi == 0
        vals[:, self.bl_gid[lo, 0]] = network.v_bl_end[lo]
        vals[:, self.bl_gid[hi, -1]] = network.v_bl_end[hi]
        return vals


def _chain_stamps(ch: Chains, gid: np.ndarray, u_lo: np.ndarray, u_hi: np.ndarray, rows, cols, vals, rhs):
    """Append the wire and end stamps of a family of chains (rhs is ``(batch, size)``)."""
    seg = ch.r_seg > 0
    p, q = gid[:, :-1][seg], gid[:, 1:][seg]
    g = 1.0 / ch.r_seg[seg]
    rows += [p, q, p, q]
    cols += [p, q, q, p]
    vals += [g, g, -g, -g]
    for r_end, node, u in ((ch.r_lo, gid[:, 0], u_lo), (ch.r_hi, gid[:, -1], u_hi)):
        ok = (r_end > 0) & np.isfinite(r_end)
        g_end = 1.0 / r_end[ok]
        rows.append(node[ok])
        cols.append(node[ok])
        vals.append(g_end)
        np.add.at(rhs, (slice(None), node[ok]), u[:, ok] * g_end)


def assemble(network: Network, a: np.ndarray, b: np.ndarray, c3: np.ndarray, v2: np.ndarray):
    """Merged nodal matrix ``K`` (scipy CSC, all groups) and right-hand sides ``(batch, size)``."""
    import scipy.sparse as sp

    num = _Numbering(network)
    rows, cols, vals = [], [], []
    rhs = np.zeros((v2.shape[0], num.size))
    bl_end = np.broadcast_to(network.v_bl_end, v2.shape[:1] + network.v_bl_end.shape)
    _chain_stamps(num.wl, num.wl_gid, v2, v2, rows, cols, vals, rhs)
    _chain_stamps(num.bl, num.bl_gid, bl_end, bl_end, rows, cols, vals, rhs)
    p, q = num.wl_gid.ravel(), num.bl_gid.T.ravel()
    rows += [p, p, q, q]
    cols += [p, q, p, q]
    vals += [a.ravel(), -b.ravel(), -a.ravel(), b.ravel()]
    np.add.at(rhs, (slice(None), p), -c3.reshape(c3.shape[0], -1))
    np.add.at(rhs, (slice(None), q), c3.reshape(c3.shape[0], -1))
    k = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(num.size, num.size)
    ).tocsc()
    return k, rhs, num


def _solve_direct(network, a, b, c3, v2):
    from scipy.sparse.linalg import splu

    k, rhs, num = assemble(network, a, b, c3, v2)
    volts = num.fixed_values(network, v2)
    free = ~num.fixed
    if free.any():
        rhs_u = rhs[:, free] - (k[:, num.fixed][free] @ volts[:, num.fixed].T).T
        try:
            lu = splu(k[free][:, free].tocsc())
        except RuntimeError as exc:  # exactly singular
            raise InputError(
                "network: the nodal matrix is singular (a floating group of lines with no path to a source?)"
            ) from exc
        volts[:, free] = lu.solve(np.ascontiguousarray(rhs_u.T)).T
    return volts[:, num.wl_gid], volts[:, num.bl_gid].transpose(0, 2, 1)


# ---------------------------------------------------------------------------------------------
# Currents and residual
# ---------------------------------------------------------------------------------------------


def cell_currents(a, b, c3, v_wl, v_bl) -> np.ndarray:
    """Current of every cell from its WL node to its BL node, ``(batch, M, N)`` A."""
    return a * v_wl - b * v_bl + c3


def output_currents(network: Network, i_cell: np.ndarray, v_bl: np.ndarray) -> np.ndarray:
    """Current into each BL's sense node, ``(batch, N)`` A, positive out of the array.

    Ohm's law on the sense-end resistance where it is non-zero; where it is zero, the BL's
    only exit is its sense node, so KCL gives the sum of the column's cell currents.
    """
    r_end = network.sense_resistance()
    row = -1 if network.sense_at == "last" else 0
    ohm = (v_bl[:, row, :] - network.v_bl_end) / np.where(r_end > 0, r_end, 1.0)
    i_out = np.where(r_end > 0, ohm, i_cell.sum(axis=1))
    return np.where(network.bl_floating, 0.0, i_out)


def network_residual(network: Network, a, b, c, v_in, v_wl, v_bl) -> float:
    """Largest KCL residual over the merged nodes, relative to the largest branch current."""
    a, b, c3, v2, _ = check_stamp(network, a, b, c, v_in)
    k, rhs, num = assemble(network, a, b, c3, v2)
    m, n = network.shape
    volts = num.fixed_values(network, v2)
    v_wl = np.asarray(v_wl).reshape(-1, m, n)
    v_bl = np.asarray(v_bl).reshape(-1, m, n)
    volts[:, num.wl_gid] = v_wl
    volts[:, num.bl_gid] = v_bl.transpose(0, 2, 1)
    res = (k @ volts.T).T - rhs
    free = ~num.fixed
    scale = np.abs(k).max() * np.abs(volts).max() + np.abs(rhs).max()
    return float(np.abs(res[:, free]).max() / scale) if free.any() and scale > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# Public solver
# ---------------------------------------------------------------------------------------------


def solve_linear(network: Network, a, b, c, v_in, *, method: str = "auto", tol: float = RTOL_SOLVE):
    """Node voltages and output currents of the crossbar for a linearised cell stamp.

    Parameters
    ----------
    network : Network
        The wires (see the module docstring).
    a, b : array_like, (M, N), S
        Stamp coefficients: ``I_cell = a * v_wl - b * v_bl + c``.
    c : array_like, (M, N) or (batch, M, N), A
        Stamp offset.
    v_in : array_like, (M,) or (batch, M), V
        Word-line source voltages.
    method : {"auto", "direct", "iterative", "block"}
        Solver: "direct" (SuperLU on the merged nodal matrix), "iterative" (Numba line
        relaxation + CG for symmetric stamps or BiCGSTAB, memory linear in the cells), "block"
        (:class:`BlockFactor`).  "auto" takes the symmetric CG for large arrays that qualify,
        "block" for other large batches that fit, "iterative" for large arrays, else "direct".
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
    if not isinstance(network, Network):
        raise InputError(f"network: expected a Network, got {type(network).__name__}")
    if method not in METHODS:
        raise InputError(f"method: expected one of {METHODS}, got {method!r}")
    tol = as_scalar("tol", tol, low=0.0, low_open=True)
    a, b, c3, v2, batched = check_stamp(network, a, b, c, v_in)
    if method == "direct" and 2 * a.size > MAX_DIRECT_NODES:
        raise InputError(f"method='direct': the {network.shape[0]} x {network.shape[1]} array has {2 * a.size} nodes, "
                         f"above the direct path's limit of {MAX_DIRECT_NODES}; use method='iterative' or 'auto'")
    big = a.size >= AUTO_ITERATIVE_CELLS
    if (method == "iterative" or (method == "auto" and big)) and schur.eligible(network, a, b):
        found = schur.solve_symmetric(network, a, c3, v2, tol)
        if found is not None:
            return _finish(network, a, b, c3, v2, found[0], found[1], batched)
    if method == "block" or (method == "auto" and _block_pays(network, v2.shape[0])):
        from .transfer import BlockFactor

        factor = BlockFactor(network, a, b)
        return factor.solve_linear(c3 if batched else c3[0], v2 if batched else v2[0], tol=tol)
    if method == "iterative" or (method == "auto" and big):
        found = _solve_iterative(network, a, b, c3, v2, tol)
        if found is not None:
            return _finish(network, a, b, c3, v2, found[0], found[1], batched)
    return _fallback(network, a, b, c3, v2, batched, tol)


def _fallback(network, a, b, c3, v2, batched, tol):
    """The direct SuperLU path, the last resort of every other path."""
    if 2 * a.size > MAX_DIRECT_NODES:
        raise ConvergenceError(
            f"crossbar solve missed tol={tol:g} and the array is too large for the direct path",
            iterations=MAX_ITERATIONS,
            residual=float("nan"),
        )
    v_wl, v_bl = _solve_direct(network, a, b, c3, v2)
    if not (np.isfinite(v_wl).all() and np.isfinite(v_bl).all()):
        raise InputError("network: the nodal matrix is singular (non-finite node voltages)")
    res = network_residual(network, a, b, c3, v2, v_wl, v_bl)
    if res > tol:
        raise ConvergenceError("direct crossbar nodal solve missed its tolerance", iterations=1, residual=res)
    return _finish(network, a, b, c3, v2, v_wl, v_bl, batched, direct=True)


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


def _block_pays(network: Network, batch: int) -> bool:
    from .transfer import block_fits

    m, n = network.shape
    return batch >= AUTO_BLOCK_BATCH and m * n >= AUTO_ITERATIVE_CELLS and block_fits(network)


def _finish(network, a, b, c3, v2, v_wl, v_bl, batched, *, direct=False):
    if not _within_sources(network, a, b, c3, v2, v_wl, v_bl):
        if not direct:  # a residual-checked answer that no passive network can give: try SuperLU
            return _fallback(network, a, b, c3, v2, batched, RTOL_SOLVE)
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
    if not batched:
        return v_wl[0], v_bl[0], i_out[0]
    return v_wl, v_bl, i_out


# ---------------------------------------------------------------------------------------------
# Iterative path (Numba): exact line solves, block Gauss-Seidel, BiCGSTAB on the BL voltages
# ---------------------------------------------------------------------------------------------

#: BiCGSTAB stops when its residual is this fraction of ``tol`` (margin for the final check).
_KRYLOV_MARGIN = 0.1
#: Iteration cap of the Krylov loop before falling back to the direct path.
MAX_ITERATIONS = 1000


@jit(error_model="numpy")  # a singular chain gives inf/NaN, caught by the caller
def _chain_factor(d, rseg, rlo, rhi, gid, low, cp, ipiv):
    """LU-factorise one resistor chain with extra diagonal ``d`` (S); returns the group count.

    Zero segments merge nodes into groups (``gid[t]`` is node t's group); a zero end
    resistance fixes the end group at its source (a Dirichlet row); an infinite one leaves
    the end open.  On the groups the matrix is tridiagonal: ``low[k]`` couples group k to
    k-1; ``cp`` and ``ipiv`` are the Thomas factors (upper / pivot and 1 / pivot).
    """
    n = d.size
    k = 0
    gid[0] = 0
    ipiv[0] = d[0]  # holds the group diagonal until it is replaced by 1 / pivot
    low[0] = 0.0
    for t in range(1, n):
        r = rseg[t - 1]
        if r > 0.0:
            g = 1.0 / r
            ipiv[k] += g
            k += 1
            low[k] = -g
            ipiv[k] = d[t] + g
        else:
            ipiv[k] += d[t]
        gid[t] = k
    ng = k + 1
    lo_fixed = rlo == 0.0
    hi_fixed = rhi == 0.0 and not (lo_fixed and ng == 1)
    if not lo_fixed and rlo < np.inf:
        ipiv[0] += 1.0 / rlo
    if not hi_fixed and 0.0 < rhi < np.inf:
        ipiv[ng - 1] += 1.0 / rhi
    if lo_fixed:
        ipiv[0] = 1.0
    if hi_fixed:
        ipiv[ng - 1] = 1.0
    prev = 0.0
    for k in range(ng):
        lower = 0.0 if (hi_fixed and k == ng - 1) else low[k]
        upper = 0.0 if (k == ng - 1 or (k == 0 and lo_fixed)) else low[k + 1]
        piv = ipiv[k] - lower * prev
        ipiv[k] = 1.0 / piv
        cp[k] = upper / piv
        prev = cp[k]
    if hi_fixed:
        low[ng - 1] = 0.0  # a Dirichlet row has no coupling
    return ng


@jit(error_model="numpy")
def _chain_apply(s_node, gid, low, cp, ipiv, rlo, ulo, rhi, uhi, z):
    """Solve a factored chain for node injections ``s_node`` (A); group voltages into ``z``."""
    n = gid.size
    ng = gid[n - 1] + 1
    for k in range(ng):
        z[k] = 0.0
    for t in range(n):
        z[gid[t]] += s_node[t]
    lo_fixed = rlo == 0.0
    hi_fixed = rhi == 0.0 and not (lo_fixed and ng == 1)
    if not lo_fixed and rlo < np.inf:
        z[0] += ulo / rlo
    if not hi_fixed and 0.0 < rhi < np.inf:
        z[ng - 1] += uhi / rhi
    if hi_fixed:
        z[ng - 1] = uhi
    if lo_fixed:
        z[0] = ulo
    z[0] *= ipiv[0]
    for k in range(1, ng):
        z[k] = (z[k] - low[k] * z[k - 1]) * ipiv[k]
    for k in range(ng - 2, -1, -1):
        z[k] -= cp[k] * z[k + 1]
    return ng


@jit_parallel(error_model="numpy")
def _factor_family(diag, rseg, rlo, rhi, gid, low, cp, ipiv):
    """:func:`_chain_factor` for every line of a family (``(L, n)`` arrays)."""
    for li in prange(diag.shape[0]):
        _chain_factor(diag[li], rseg[li], rlo[li], rhi[li], gid[li], low[li], cp[li], ipiv[li])


@jit(error_model="numpy")
def _factor_family_serial(diag, rseg, rlo, rhi, gid, low, cp, ipiv):
    """:func:`_factor_family` on one thread, for small families."""
    for li in range(diag.shape[0]):
        _chain_factor(diag[li], rseg[li], rlo[li], rhi[li], gid[li], low[li], cp[li], ipiv[li])


@jit(error_model="numpy")
def _sweep_line(job, out, other, coef, c, sign_c, u_lo, u_hi, gid, low, cp, ipiv, rlo, rhi):
    """Line ``job % L`` of batch member ``job // L`` (see :func:`_sweep`)."""
    nb, nl, n = out.shape
    bi = job // nl
    li = job % nl
    s = np.empty(n)
    z = np.empty(n)
    cb = c[bi % c.shape[0], li]
    ob = other[bi % other.shape[0]]
    for t in range(n):
        s[t] = coef[li, t] * ob[t, li] + sign_c * cb[t]
    g = gid[li]
    ub = bi % u_lo.shape[0]
    _chain_apply(s, g, low[li], cp[li], ipiv[li], rlo[li], u_lo[ub, li], rhi[li], u_hi[ub, li], z)
    o = out[bi, li]
    for t in range(n):
        o[t] = z[g[t]]


@jit_parallel(error_model="numpy")
def _sweep(out, other, coef, c, sign_c, u_lo, u_hi, gid, low, cp, ipiv, rlo, rhi):
    """Solve every line of one factored family given the other family's voltages.

    ``out (B, L, n)`` receives the line voltages; ``other (Bo, n, L)`` are the voltages of the
    other family in *its* layout (a batch of 1 broadcasts); line ``l`` node ``t`` receives the
    current ``coef[l, t] * other[b, t, l] + sign_c * c[b % Bc, l, t]``.  ``u_lo, u_hi`` are
    ``(Bu, L)`` end-source voltages.
    """
    for job in prange(out.shape[0] * out.shape[1]):
        _sweep_line(job, out, other, coef, c, sign_c, u_lo, u_hi, gid, low, cp, ipiv, rlo, rhi)


@jit(error_model="numpy")
def _sweep_serial(out, other, coef, c, sign_c, u_lo, u_hi, gid, low, cp, ipiv, rlo, rhi):
    """:func:`_sweep` on one thread: small sweeps cost less than waking the thread pool."""
    for job in range(out.shape[0] * out.shape[1]):
        _sweep_line(job, out, other, coef, c, sign_c, u_lo, u_hi, gid, low, cp, ipiv, rlo, rhi)


#: Sweeps and factorisations over fewer nodes than this run on one thread.  Measured on a
#: shared 2-core machine (load ~4): waking the thread pool costs 1-15 ms per launch, so one
#: 256 x 256 solve took 0.028 s serial vs 0.18 s parallel, and 1024 x 1024 1.1 s vs 1.3 s.
PARALLEL_MIN_NODES = 2**20


class LineFactor:
    """One family of chains (WLs or BLs) factorised with its cell stamps on the diagonal.

    The exact line solves every path shares: the iterative sweeps here, the symmetric CG of
    :mod:`cimphys.circuits.schur` and the WL elimination of :mod:`cimphys.circuits.transfer`.
    """

    def __init__(self, chains: Chains, diag: np.ndarray):
        shape = diag.shape
        self.r_lo, self.r_hi = chains.r_lo, chains.r_hi
        self.gid = np.empty(shape, np.int64)
        self.low, self.cp, self.ipiv = np.empty(shape), np.empty(shape), np.empty(shape)
        kernel = _factor_family if diag.size >= PARALLEL_MIN_NODES else _factor_family_serial
        kernel(diag, chains.r_seg, chains.r_lo, chains.r_hi, self.gid, self.low, self.cp, self.ipiv)

    def sweep(self, out, other, coef, c, sign_c, u):
        kernel = _sweep if out.size >= PARALLEL_MIN_NODES else _sweep_serial
        kernel(out, other, coef, c, sign_c, u, u, self.gid, self.low, self.cp, self.ipiv, self.r_lo, self.r_hi)
        return out


class _LineSolver:
    """Block Gauss-Seidel map ``y -> F(y)`` over WL then BL chains, in Numba."""

    def __init__(self, network: Network, a, b, c3, v2):
        m, n = network.shape
        self.a, self.b = a, b
        self.aT, self.bT = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
        self.wlf = LineFactor(network.wl_chains(), a)
        self.blf = LineFactor(network.bl_chains(), self.bT)
        self.c, self.cT = c3, np.ascontiguousarray(c3.transpose(0, 2, 1))
        self.v2 = v2
        self.vend = _writable(network.v_bl_end[None, :])
        self.zero_c = np.zeros((1, m, n))
        self.zero_cT = np.zeros((1, n, m))
        self.zero_v = np.zeros((1, m))
        self.zero_e = np.zeros((1, n))

    def wl(self, y, x, sources=True):
        c, v = (self.c, self.v2) if sources else (self.zero_c, self.zero_v)
        return self.wlf.sweep(x, y, self.b, c, -1.0, v)

    def bl(self, x, y, sources=True):
        c, v = (self.cT, self.vend) if sources else (self.zero_cT, self.zero_e)
        return self.blf.sweep(y, x, self.aT, c, 1.0, v)

    def apply(self, y, sources=True):
        """``F(y)`` with sources, or ``H y`` (the homogeneous part) without."""
        x = self.wl(y, np.empty((y.shape[0],) + self.a.shape), sources)
        return self.bl(x, np.empty_like(y), sources)


def _dot(u, v):
    return np.einsum("bij,bij->b", u, v)


def _bicgstab(op: _LineSolver, h: np.ndarray, scale: np.ndarray, tol: float):
    """Solve ``(I - H) y = h`` for every batch member; return ``(y, iterations, residual)``."""
    matvec = lambda p: p - op.apply(p, sources=False)  # noqa: E731
    y = h.copy()
    r = h - matvec(y)
    rhat = r.copy()
    p = np.zeros_like(h)
    v = np.zeros_like(h)
    rho = alpha = omega = np.ones(h.shape[0])
    norm = lambda z: np.abs(z).reshape(z.shape[0], -1).max(axis=1) / scale  # noqa: E731
    res = norm(r)
    it = 0
    while (res > tol * _KRYLOV_MARGIN).any() and it < MAX_ITERATIONS:
        it += 1
        live = (res > tol * _KRYLOV_MARGIN)[:, None, None]
        rho_new = _dot(rhat, r)
        beta = _safe(rho_new, rho) * _safe(alpha, omega)
        p = r + beta[:, None, None] * (p - omega[:, None, None] * v)
        v = matvec(p)
        alpha = _safe(rho_new, _dot(rhat, v))
        s = r - alpha[:, None, None] * v
        t = matvec(s)
        omega = _safe(_dot(t, s), _dot(t, t))
        y = np.where(live, y + alpha[:, None, None] * p + omega[:, None, None] * s, y)
        r = np.where(live, s - omega[:, None, None] * t, r)
        rho = rho_new
        res = np.where(live[:, 0, 0], norm(r), res)
        if not np.isfinite(res).all():
            break
    return y, it, res


def _safe(num, den):
    ok = den != 0
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def _fixed_point_residual(network, a, b, c3, v2, v_wl, v_bl) -> float:
    """One more BL sweep from ``v_wl``: the largest BL voltage change relative to the scale."""
    if not (np.isfinite(v_wl).all() and np.isfinite(v_bl).all()):
        return np.inf
    op = _LineSolver(network, a, b, c3, v2)
    y = np.ascontiguousarray(v_bl.transpose(0, 2, 1))
    y_next = op.bl(np.ascontiguousarray(v_wl), np.empty_like(y))
    scale = max(np.abs(v2).max(), np.abs(network.v_bl_end).max(initial=0.0), np.abs(y).max(), 1e-300)
    return float(np.abs(y_next - y).max() / scale)


def _solve_iterative(network, a, b, c3, v2, tol):
    """Line-relaxation Krylov solve; ``None`` when it cannot meet ``tol`` (caller falls back)."""
    op = _LineSolver(network, a, b, c3, v2)
    nb, (m, n) = v2.shape[0], network.shape
    zero_y = np.zeros((nb, n, m))
    h = op.apply(zero_y)
    scale = np.maximum(np.abs(v2).max(axis=1), np.abs(network.v_bl_end).max(initial=0.0))
    scale = np.maximum(np.maximum(scale, np.abs(h).reshape(nb, -1).max(axis=1)), 1e-300)
    y, it, _ = _bicgstab(op, h, scale, tol)
    x = op.wl(y, np.empty((nb, m, n)))
    y_next = op.bl(x, np.empty_like(y))
    res = np.abs(y_next - y).reshape(nb, -1).max(axis=1) / scale
    if not (np.isfinite(res).all() and np.isfinite(x).all()) or res.max() > tol:
        return None
    return x, np.ascontiguousarray(y.transpose(0, 2, 1)), it, float(res.max())


# ---------------------------------------------------------------------------------------------
# Power accounting
# ---------------------------------------------------------------------------------------------


def _ohm(dv: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``dv / r`` where ``0 < r < inf``, else 0 (no division by zero)."""
    ok = (r > 0) & np.isfinite(r)
    return np.where(ok, dv / np.where(ok, r, 1.0), 0.0)


def _group_current(v, i_cell, r_seg, from_lo: bool):
    """Current entering an end group through its source, by KCL on that group, ``(B, L)``.

    The end group is the run of nodes joined by zero segments; what enters through the source
    leaves through the group's cells and its first non-zero segment.  Returns that current and
    whether the group has such a segment.
    """
    if not from_lo:
        v, i_cell, r_seg = v[..., ::-1], i_cell[..., ::-1], r_seg[:, ::-1]
    has = (r_seg > 0).any(axis=1)
    k = np.argmax(r_seg > 0, axis=1)  # index of the first non-zero segment
    n = v.shape[-1]
    in_group = np.arange(n)[None, :] <= np.where(has, k, n - 1)[:, None]
    rows = np.arange(v.shape[1])
    kk = np.minimum(k + 1, n - 1)
    wire = _ohm(v[:, rows, k] - v[:, rows, kk], np.where(has, r_seg[rows, k] if r_seg.size else 1.0, np.inf))
    return (i_cell * in_group).sum(axis=-1) + wire, has


def wl_end_currents(network: Network, *, v_in, v_wl, v_bl, i_out, i_cell):
    """Currents delivered through the near and far WL drivers, ``(B, M)`` A each."""
    ch = network.wl_chains()
    near = _ohm(v_in - v_wl[:, :, 0], ch.r_lo)
    far = _ohm(v_in - v_wl[:, :, -1], ch.r_hi)
    total = i_cell.sum(axis=-1)  # what enters a WL leaves through its cells
    g_lo, has_lo = _group_current(v_wl, i_cell, ch.r_seg, True)
    g_hi, has_hi = _group_current(v_wl, i_cell, ch.r_seg, False)
    lo0, hi0 = ch.r_lo == 0, ch.r_hi == 0
    near = np.where(lo0, np.where(has_lo | hi0, g_lo, total - far), near)
    far = np.where(hi0, np.where(has_hi | lo0, g_hi, total - near), far)
    return near, far


def dissipation(network: Network, *, v_in, v_wl, v_bl, i_out, i_cell, i_near, i_far) -> dict:
    """Power in every element of the network, W, each with a leading batch axis.

    Keys: ``cell`` (B, M, N); ``wl`` and ``bl`` (B, M, N) per wire segment (indexed like
    ``r_wl``/``r_bl``); ``driver`` (B, M); ``sense`` (B, N) in ``r_sense``; ``source`` (B, M)
    delivered by the WL sources; ``sink`` (B, N) absorbed by the sense-node sources
    (``v_bl_end * i_out``).  Energy balance: ``source.sum() == cell + wl + bl + driver +
    sense + sink`` summed.
    """
    p_cell = i_cell * (v_wl - v_bl)
    r_wl, r_bl = network.r_wl, network.r_bl
    p_wl = np.empty_like(v_wl)
    dv = v_wl[:, :, :-1] - v_wl[:, :, 1:]
    p_wl[:, :, 1:] = dv * _ohm(dv, r_wl[:, 1:])
    p_wl[:, :, 0] = i_near**2 * r_wl[:, 0]
    p_bl = np.empty_like(v_bl)
    dv = v_bl[:, :-1, :] - v_bl[:, 1:, :]
    if network.sense_at == "last":
        p_bl[:, :-1, :] = dv * _ohm(dv, r_bl[:-1])
        p_bl[:, -1, :] = i_out**2 * r_bl[-1]
    else:
        p_bl[:, 1:, :] = dv * _ohm(dv, r_bl[1:])
        p_bl[:, 0, :] = i_out**2 * r_bl[0]
    far_r = network.r_driver if network.wl_drive == "both" else 0.0
    return {
        "cell": p_cell,
        "wl": p_wl,
        "bl": p_bl,
        "driver": i_near**2 * network.r_driver + i_far**2 * far_r,
        "sense": i_out**2 * network.r_sense,
        "source": v_in * (i_near + i_far),
        "sink": network.v_bl_end * i_out,
    }


# The exact direct factorisation and the transfer matrix live in cimphys.circuits.transfer, which
# imports this module; re-exported here on first access (PEP 562), so either may load first.
_TRANSFER_NAMES = ("BlockFactor", "block_eligible", "block_fits", "transfer_matrix")


def __getattr__(name: str):
    if name in _TRANSFER_NAMES:
        from . import transfer

        return getattr(transfer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
