"""The block path: every word line eliminated exactly, then block LU over the rows (Numba + LAPACK).

For a fixed linear stamp ``I_cell = a * v_wl - b * v_bl`` (see :mod:`cimphys.circuits.network`),
WL chain ``t`` (factorised by :class:`cimphys.circuits.lines.LineFactor`) is eliminated exactly:
its inverse is dense, so the BL voltages obey a block-tridiagonal system over rows with dense
``N x N`` diagonal blocks (:func:`_wl_block`) and diagonal couplings (the BL segments) [1]_.
Block LU factorises it in ``M N^3`` flops and ``M N^2`` memory (:class:`BlockFactor`), so that
any batch of inputs, or the transfer matrix ``T`` itself (``i_out = T @ v_in``), follows by
substitution.  When ``a == b`` (two-terminal cells) every block is symmetric positive definite
[2]_ and one kernel, :func:`_spd_recursion`, builds, reduces and inverts the blocks by Cholesky
(LAPACK ``dpotrf`` and ``dpotri``, called without the GIL); it either keeps every inverse (a
reusable factor) or keeps two and applies each at once to the unit inputs above it
(:func:`streamed_transfer`: the transfer matrix in one pass, the inverses L2-resident).
Otherwise, or where a block is not positive definite, the blocks are inverted by LU
(:func:`_schur_recursion`).  Timings: ``benchmarks/bench_crossbar.py``.

References
----------
.. [1] G. H. Golub, C. F. Van Loan, *Matrix Computations*, 4th ed., section 4.5.1 (block
   tridiagonal systems, block LU), Johns Hopkins University Press (2013).
.. [2] The BL Schur complement of a resistive network with non-negative cell conductances is a
   weighted graph Laplacian plus a non-negative diagonal (the BL end conductances): symmetric
   and positive definite when every BL node has a path to a source (a floating BL of open
   cells makes it singular); see C. Ho, J. Vlach, *Computer
   Methods for Circuit Analysis and Design*, 2nd ed., ch. 2, Springer (1994).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, jit_parallel, prange
from ..errors import InputError
from .lines import LineFactor
from .network import Network, writable

__all__ = ["MAX_BLOCK_BYTES", "BlockFactor", "block_eligible", "block_fits", "streamed_transfer"]

#: Largest factor (bytes, M*N*N float64 blocks) the block path may hold.
MAX_BLOCK_BYTES = 768 * 2**20


def _lapack(module: str, name: str, nargs: int):
    """A Fortran BLAS/LAPACK routine of SciPy's bundled library, callable without the GIL from
    a Numba kernel (through the pointers of ``scipy.linalg.cython_lapack`` / ``cython_blas``).

    Kernels take these as arguments, not as globals: Numba would freeze a global pointer into
    the compiled code, which then could not be cached; an argument is typed by its signature
    alone, so the kernel is cached like any other and the address is read at each call.
    """
    import ctypes

    from numba.core.extending import get_cython_function_address

    ptr = ctypes.c_void_p
    return ctypes.CFUNCTYPE(None, *(ptr,) * nargs)(get_cython_function_address(f"scipy.linalg.{module}", name))


_DPOTRF = _lapack("cython_lapack", "dpotrf", 5)
_DPOTRI = _lapack("cython_lapack", "dpotri", 5)


@jit(error_model="numpy")
def _wl_block(t, a, b, gid, low, cp, ipiv, rlo, rhi, diag_bl, inv, blk):
    """``blk = diag(b_t) - diag(a_t) W_t^-1 diag(b_t) + diag(diag_bl[t])``, row ``t``'s BL block.

    The arithmetic of :func:`_schur_blocks` element for element (the
    same values, bit for bit), with its loops turned so that the Thomas recurrences of the
    chain inverse run across all unit currents at once (vectorised) instead of one latency-bound
    recurrence per current, and a contiguous row gather when no nodes are merged.
    ``inv (N, N)`` is scratch: ``inv[p, q]`` is the voltage of group p per ampere into group q.
    """
    n = a.shape[1]
    g = gid[t]
    ng = g[n - 1] + 1
    lo_fixed = rlo[t] == 0.0
    hi_fixed = rhi[t] == 0.0 and not (lo_fixed and ng == 1)
    for p in range(ng):
        for q in range(ng):
            inv[p, q] = 0.0
    for k in range(ng):
        inv[k, k] = ipiv[t, k]
        if k > 0:
            f1 = -low[t, k]
            f2 = ipiv[t, k]
            row, up = inv[k], inv[k - 1]
            for q in range(k):
                row[q] = f1 * up[q] * f2
    for k in range(ng - 2, -1, -1):
        c = cp[t, k]
        row, dn = inv[k], inv[k + 1]
        for q in range(ng):
            row[q] -= c * dn[q]
    if lo_fixed:  # current into a node held by a source changes nothing
        for p in range(ng):
            inv[p, 0] = 0.0
    if hi_fixed:
        for p in range(ng):
            inv[p, ng - 1] = 0.0
    if ng == n:
        for j in range(n):
            aj = -a[t, j]
            row = inv[j]
            for k in range(n):
                blk[j, k] = aj * row[k] * b[t, k]
            blk[j, j] += b[t, j] + diag_bl[t, j]
    else:
        for j in range(n):
            aj = -a[t, j]
            row = inv[g[j]]
            for k in range(n):
                blk[j, k] = aj * row[g[k]] * b[t, k]
            blk[j, j] += b[t, j] + diag_bl[t, j]


@jit_parallel(error_model="numpy")
def _schur_blocks(a, b, gid, low, cp, ipiv, rlo, rhi, diag_bl, out):
    """Every row's BL block, ``out[t]`` by :func:`_wl_block`, rows in parallel."""
    m, n = a.shape
    for t in prange(m):
        _wl_block(t, a, b, gid, low, cp, ipiv, rlo, rhi, diag_bl, np.empty((n, n)), out[t])


@jit(error_model="numpy")
def _schur_recursion(s, g):
    """Block LU over rows in place: ``s[t] <- (D_t - G_t s[t-1] G_t)^-1`` with diagonal ``G_t = g[t]``."""
    m, n, _ = s.shape
    for t in range(m):
        if t > 0:
            prev = s[t - 1]
            cur = s[t]
            for j in range(n):
                for k in range(n):
                    cur[j, k] -= g[t, j] * prev[j, k] * g[t, k]
        s[t] = np.linalg.inv(s[t])


@jit(error_model="numpy")
def _spd_recursion(a, b, gid, low, cp, ipiv, rlo, rhi, diag_bl, gc, s, keep, z, inv, potrf, potri):
    """Block LU by Cholesky for ``a == b`` (symmetric positive definite blocks), one pass over rows.

    Row ``t``: its block ``S_t`` is built (:func:`_wl_block`; here, not beforehand by the
    parallel :func:`_schur_blocks`: measured 0.33 s vs 0.34 s for a 256 x 256 factor, the
    block still in cache when LAPACK takes it, and no thread pool to wake), reduced to ``S_t - G_t S_{t-1}^-1 G_t`` (upper
    triangle) and inverted by ``dpotrf`` + ``dpotri`` (measured 1.2x faster than ``dtrtri`` +
    ``dsyrk`` at N = 64, 128 and 256 with SciPy's OpenBLAS), then mirrored.  A C-ordered block
    is its F-ordered transpose to LAPACK (the same matrix: it is symmetric), so LAPACK's
    ``"L"`` triangle is the upper one here.

    ``keep=True``: ``s (M, N, N)`` ends holding every ``S_t^-1`` (the factor of
    :class:`BlockFactor`).  ``keep=False``: ``s (2, N, N)`` alternates, so only two inverses
    live at a time (L2-resident), each applied at once by the forward sweep to ``z (M, N)``,
    the BL injection of unit input ``k`` at row ``k`` (input ``k`` reaches row ``t`` only for
    ``k < t``: half a dense sweep); ``z`` ends holding the BL voltages of the last row per
    input.  ``z`` of shape ``(0, N)`` skips the sweep.  ``inv (N, N)`` is scratch; ``potrf,
    potri`` are :data:`_DPOTRF`, :data:`_DPOTRI` (arguments, not globals, so that the kernel is
    cached).  Returns 0, or the row + 1 whose block is not positive definite (``s`` and ``z``
    then spoiled: the caller takes the general path).
    """
    m, n = a.shape
    sweep = z.shape[0] == m
    ch = np.empty(1, np.uint8)
    ch[0] = 76  # "L"
    iv = np.empty(3, np.int32)  # n, lda, info
    iv[0], iv[1], iv[2] = n, n, 0
    for t in range(m):
        cur = s[t] if keep else s[t % 2]
        _wl_block(t, a, b, gid, low, cp, ipiv, rlo, rhi, diag_bl, inv, cur)
        if t > 0:
            prev = s[t - 1] if keep else s[(t - 1) % 2]
            for j in range(n):
                gj = gc[t, j]
                for k in range(j, n):
                    cur[j, k] -= gj * prev[j, k] * gc[t, k]
        potrf(ch.ctypes.data, iv.ctypes.data, cur.ctypes.data, iv[1:].ctypes.data, iv[2:].ctypes.data)
        if iv[2] != 0:
            return t + 1
        potri(ch.ctypes.data, iv.ctypes.data, cur.ctypes.data, iv[1:].ctypes.data, iv[2:].ctypes.data)
        if iv[2] != 0:
            return t + 1
        for j in range(n):
            for k in range(j + 1, n):
                cur[k, j] = cur[j, k]
        if sweep:
            if t < m - 1:
                w = z[: t + 1] @ cur.T
                for k in range(t + 1):
                    z[k] = w[k] * gc[t + 1]
            else:
                z[:] = z @ cur.T
    return 0


@jit(error_model="numpy")
def _block_substitute(sinv, g, z, back):
    """Solve the block-tridiagonal system in place: ``z (M, N, B)`` right-hand sides -> ``y``.

    With ``back=False`` only the last row is finished (all an output at row M-1 needs).
    """
    m, n, nb = z.shape
    for t in range(1, m):
        w = sinv[t - 1] @ z[t - 1]
        for j in range(n):
            for k in range(nb):
                z[t, j, k] += g[t, j] * w[j, k]
    z[m - 1] = sinv[m - 1] @ z[m - 1]
    if back:
        for t in range(m - 2, -1, -1):
            w = z[t].copy()
            for j in range(n):
                for k in range(nb):
                    w[j, k] += g[t + 1, j] * z[t + 1, j, k]
            z[t] = sinv[t] @ w


@jit(error_model="numpy")
def _transfer_forward(sinv, g, z):
    """Forward block elimination for one unit input per row, in place; returns ``y_{M-1}``.

    Row ``k`` of ``z (M, N)`` starts as the BL injection of input ``k`` at its own row; input
    ``k`` reaches row ``t`` only for ``k < t``, so step ``t`` updates rows ``0..t-1`` alone
    (half the work of a dense forward sweep), and one ``(M, N)`` buffer suffices.
    """
    m = z.shape[0]
    for t in range(1, m):
        w = z[:t] @ sinv[t - 1].T
        for k in range(t):
            z[k] = w[k] * g[t]
    return z @ sinv[m - 1].T


class BlockFactor:
    """Exact factorisation of the network for a fixed stamp ``(a, b)``, reused for any batch.

    WL chain ``t`` is eliminated exactly (its inverse is dense, N x N), leaving the BL voltages
    in a block-tridiagonal system over rows with dense N x N diagonal blocks and diagonal
    couplings (the BL segments), which a block LU factorises: ``M N^3`` flops in LAPACK,
    ``M N^2`` memory.  Needs every BL segment and BL end resistance non-zero (rows stay
    distinct); :func:`block_eligible` says whether a network qualifies.
    """

    def __init__(self, network: Network, a: np.ndarray, b: np.ndarray):
        if not block_eligible(network):
            raise InputError("network: the block path needs non-zero BL segments and BL end resistances")
        m, n = network.shape
        a, b = writable(a), writable(b)
        self.network, self.a, self.b = network, a, b
        self.wl = network.wl_chains()
        self.g, self.g_lo, self.g_hi, diag = network.bl_couplings()
        self.wlf = LineFactor(self.wl, a)
        f = self.wlf
        self.sinv = np.empty((m, n, n))
        # a == b (two-terminal cells): every BL Schur block is symmetric, and positive definite
        # when no group of lines floats, so Cholesky halves the flops of the recursion.
        self.symmetric = np.array_equal(a, b) and _spd_recursion(
            a, b, f.gid, f.low, f.cp, f.ipiv, f.r_lo, f.r_hi, diag, self.g, self.sinv, True, np.empty((0, n)),
            np.empty((n, n)), _DPOTRF, _DPOTRI) == 0
        if self.symmetric:
            return
        _schur_blocks(a, b, f.gid, f.low, f.cp, f.ipiv, f.r_lo, f.r_hi, diag, self.sinv)  # (re)built for LU
        try:
            _schur_recursion(self.sinv, self.g)
        except np.linalg.LinAlgError as exc:
            raise InputError("network: the nodal matrix is singular (a floating group of lines?)") from exc

    def _wl_sweep(self, y_t, c3, v2):
        x = np.empty((v2.shape[0],) + self.a.shape)
        return self.wlf.sweep(x, y_t, self.b, c3, -1.0, v2)

    def solve(self, c3: np.ndarray, v2: np.ndarray):
        """Node voltages ``v_wl, v_bl`` (B, M, N) for stamps offsets ``c3`` and sources ``v2``."""
        m, n = self.network.shape
        xi = self._wl_sweep(np.zeros((1, n, m)), c3, v2)  # WL voltages with the BLs at 0 V
        rhs = self.a * xi + c3
        rhs[:, 0] += self.g_lo * self.network.v_bl_end
        rhs[:, -1] += self.g_hi * self.network.v_bl_end
        z = np.ascontiguousarray(rhs.transpose(1, 2, 0))
        _block_substitute(self.sinv, self.g, z, True)
        v_bl = np.ascontiguousarray(z.transpose(2, 0, 1))
        v_wl = self._wl_sweep(np.ascontiguousarray(v_bl.transpose(0, 2, 1)), c3, v2)
        return v_wl, v_bl

    def transfer(self) -> np.ndarray:
        """``T (N, M)``: sense currents per volt at each WL source (BL ends and ``c`` at 0)."""
        m, n = self.network.shape
        net = self.network
        ones = np.ones((1, m))
        xi = self._wl_sweep(np.zeros((1, n, m)), np.zeros((1, m, n)), ones)[0]
        if net.sense_at == "last":
            y_end = _transfer_forward(self.sinv, self.g, self.a * xi).T  # (N, M)
            g_end = self.g_hi
        else:
            z = np.zeros((m, n, m))
            z[np.arange(m), :, np.arange(m)] = self.a * xi  # input k drives only row k
            _block_substitute(self.sinv, self.g, z, True)
            y_end, g_end = z[0], self.g_lo
        return np.ascontiguousarray(np.where(net.bl_floating, 0.0, g_end)[:, None] * y_end)


def block_fits(network: Network) -> bool:
    """Whether the block factor of ``network`` is allowed (structure and memory)."""
    m, n = network.shape
    return block_eligible(network) and 8 * m * n * n <= MAX_BLOCK_BYTES


def block_eligible(network: Network) -> bool:
    """Whether :class:`BlockFactor` applies: no zero BL segment or BL end resistance."""
    bl = network.bl_chains()
    return bool((bl.r_seg > 0).all() and (bl.r_lo > 0).all() and (bl.r_hi > 0).all())


def streamed_transfer(network: Network, a: np.ndarray, b: np.ndarray):
    """``T (N, M)`` by :func:`_spd_recursion` without keeping the factor, or None where that
    does not apply (``a != b``, a negative cell, sensing at row 0, a block not positive definite,
    a non-finite result).  ``a, b`` as :func:`~cimphys.circuits.network.check_stamp` returns them."""
    if network.sense_at != "last" or not np.array_equal(a, b) or not (a >= 0).all():
        return None
    m, n = a.shape
    gc, _, g_hi, diag = network.bl_couplings()
    wlf = LineFactor(network.wl_chains(), a)
    # WL voltages per volt at each WL source with the BLs held at 0 V, and their BL injection
    xi = wlf.sweep(np.empty((1, m, n)), np.zeros((1, n, m)), b, np.zeros((1, m, n)), -1.0, np.ones((1, m)))[0]
    z = np.ascontiguousarray(a * xi)
    bad = _spd_recursion(a, b, wlf.gid, wlf.low, wlf.cp, wlf.ipiv, wlf.r_lo, wlf.r_hi, diag, gc,
                         np.empty((2, n, n)), False, z, np.empty((n, n)), _DPOTRF, _DPOTRI)
    if bad:
        return None
    t = np.where(network.bl_floating, 0.0, g_hi)[:, None] * z.T
    return np.ascontiguousarray(t) if np.isfinite(t).all() else None
