"""Exact solves of the lines: each word line and each bit line as a resistor chain (Numba).

Each WL and each BL is a chain: a tridiagonal system, factorised once per stamp by the Thomas
algorithm on its merged nodes (zero-resistance segments merge nodes; a zero end resistance fixes
the end node at its source) [1]_.  The lines of one family couple to those of the other only
through the diagonal cell stamps, so a sweep over one family given the other's voltages is
exact.  :class:`LineFactor` holds one family's factors (shared by every path: the iterative
sweeps, the symmetric CG of :mod:`cimphys.circuits.schur` and the WL elimination of
:mod:`cimphys.circuits.block`); :class:`LineSolver` is the block Gauss-Seidel map over WL then BL
chains, and :func:`fixed_point_residual` the criterion the iterative paths are checked by.

References
----------
.. [1] G. H. Golub, C. F. Van Loan, *Matrix Computations*, 4th ed., section 4.3 (banded and
   tridiagonal systems), Johns Hopkins University Press (2013).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, jit_parallel, prange
from .network import Chains, Network, writable

__all__ = ["PARALLEL_MIN_NODES", "LineFactor", "LineSolver", "fixed_point_residual", "output_change"]

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


class LineSolver:
    """Block Gauss-Seidel map ``y -> F(y)`` over WL then BL chains, in Numba."""

    def __init__(self, network: Network, a, b, c3, v2):
        m, n = network.shape
        self.a, self.b = a, b
        self.aT, self.bT = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
        self.wlf = LineFactor(network.wl_chains(), a)
        self.blf = LineFactor(network.bl_chains(), self.bT)
        self.c, self.cT = c3, np.ascontiguousarray(c3.transpose(0, 2, 1))
        self.v2 = v2
        self.vend = writable(network.v_bl_end[None, :])
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


def fixed_point_residual(network, a, b, c3, v2, v_wl, v_bl) -> float:
    """One more BL sweep from ``v_wl``: the largest BL voltage change relative to the scale."""
    if not (np.isfinite(v_wl).all() and np.isfinite(v_bl).all()):
        return np.inf
    op = LineSolver(network, a, b, c3, v2)
    y = np.ascontiguousarray(v_bl.transpose(0, 2, 1))
    y_next = op.bl(np.ascontiguousarray(v_wl), np.empty_like(y))
    scale = max(np.abs(v2).max(), np.abs(network.v_bl_end).max(initial=0.0), np.abs(y).max(), 1e-300)
    return float(np.abs(y_next - y).max() / scale)


def output_change(network, a, b, c3, v2, v_wl, v_bl) -> float:
    """One more BL sweep from ``v_wl``: the largest change of an output current, relative to the
    largest output current of its batch member (the output's analogue of
    :func:`fixed_point_residual`; Ohm's law on each sensed end's resistance)."""
    if not (np.isfinite(v_wl).all() and np.isfinite(v_bl).all()):
        return np.inf
    op = LineSolver(network, a, b, c3, v2)
    y = np.ascontiguousarray(v_bl.transpose(0, 2, 1))
    y_next = op.bl(np.ascontiguousarray(v_wl), np.empty_like(y))
    row = -1 if network.sense_at == "last" else 0
    r_end = network.sense_resistance()
    ok = (r_end > 0) & ~network.bl_floating
    r = np.where(ok, r_end, 1.0)
    i_out = np.where(ok, (y[:, :, row] - network.v_bl_end) / r, 0.0)
    change = np.where(ok, (y_next[:, :, row] - y[:, :, row]) / r, 0.0)
    scale = np.maximum(np.abs(i_out).max(axis=1), 1e-300)
    return float((np.abs(change).max(axis=1) / scale).max())
