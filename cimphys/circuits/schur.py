"""Conjugate gradients on the bit-line Schur complement, for symmetric stamps (``a == b``).

With a two-terminal linear (or linearised) cell the stamp is symmetric, ``a = b = D``, and the
nodal matrix is symmetric positive definite when ``D >= 0``.  Ordering the unknowns WL first,

    [ W   -D ] [x]   [f_w]        W  = WL chains + D (tridiagonal per word line)
    [-D   B  ] [y] = [f_b],       B  = BL chains + D (tridiagonal per bit line),

and eliminating the WL voltages ``x = W^-1 (D y + f_w)`` exactly leaves the Schur complement
``S y = B y - D W^-1 D y = f_b + D W^-1 f_w`` on the BL voltages, again SPD.  Preconditioned by
``B`` (one Thomas solve per bit line), the operator is ``B^-1 S = I - H`` with
``H = B^-1 D W^-1 D`` the block Gauss-Seidel map of :mod:`cimphys.circuits.nodal`'s iterative
path; ``H`` is self-adjoint in the ``B`` inner product with eigenvalues in ``[0, 1)``, so
preconditioned CG [1]_ converges at the rate ``(sqrt(k) - 1) / (sqrt(k) + 1)`` with
``k <= 1 / (1 - rho(H))``, and each iteration costs one WL sweep, one BL sweep and one
tridiagonal product (BiCGSTAB on the same map needs two of each sweep).

The kernel keeps the batch as the innermost axis (``(M, N, K)`` per chunk of ``K`` right-hand
sides) and runs the whole iteration in Numba without returning to Python: an iteration is two
sweeps over four work arrays (ascending rows: ``LINES`` word lines solved together, each
feeding the forward elimination of its BL row at once; descending rows: the BL back
substitution fused with the CG updates and the inner products, accumulated per column).
Chunks are independent (threads for large work, see ``PARALLEL_MIN_WORK``).

What bounds its speed (measured 2026-11-25, AMD EPYC Zen 4, 1 MiB L2 per core, shared L3): not
memory bandwidth alone.  A Gauss-Seidel sweep moves ~8 GB/s where a plain triad moves 30-65 GB/s
on the same machine, and a float32 copy of the kernel ran no faster; the per-member loops of
length ``K`` compile mostly to scalar code (LLVM cannot prove that the work arrays do not
alias), and the word-line Thomas recurrences take ~40 % of a sweep.  A columns-innermost
rewrite (contiguous SIMD loops over ``N``, recurrences per line) measured the same within the
noise (its recurrences got slower), and ``CHUNK = 8`` was 1.2x slower (3x in that rewrite:
16-20 MiB of work arrays no longer stay in the shared L3).  Iterations are few already: ``rho(H) = 0.33`` on the
reference array, so CG needs 8 iterations to ``tol = 1e-12`` and 7 to 1e-10 (+ one sweep for
the right-hand side and one for the final check); a coarse correction or a better start could
save at most one or two of them.

On the reference 256 x 256 array with 64 inputs (the benchmark; 2 cores shared with other
jobs, load ~4): 0.23-0.30 s on one thread to ``tol = 1e-12``, against 1.4-2.3 s for SuperLU in
the same run; the threaded kernel was 1.6-1.8x faster than one thread on the idle machine
(load 0.2, the morning of the same day: 0.19 s vs 0.31 s) and 0.8-1.4x on the loaded one.

Scope: ``a == b >= 0``, no zero WL segment or zero WL end resistance (no merged or fixed WL
node), and the block path's condition on the BL side (non-zero segments and end resistances).
:func:`eligible` says whether a stamp qualifies; the caller falls back otherwise, and also when
the final check misses ``tol``.

The returned relative residual is the BL-voltage change of one more Gauss-Seidel sweep over the
voltage scale, exactly the criterion of the iterative path.

References
----------
.. [1] Y. Saad, *Iterative Methods for Sparse Linear Systems*, 2nd ed., SIAM (2003),
   alg. 9.1 (preconditioned CG), doi:10.1137/1.9780898718003.
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba import jit, jit_parallel, prange
from ..checks import as_scalar
from ..errors import InputError

__all__ = ["CHUNK", "eligible", "solve_symmetric"]

#: Right-hand sides per chunk (innermost axis).  On the 256 x 256, batch-64 benchmark (AMD EPYC,
#: 32 MiB L3, shared 2-core machine) 2 and 4 were within the run-to-run noise (~30%) and 8 was
#: 1.2x slower; 4 keeps a chunk's four work arrays at 8 MiB, in L3 with room for a second thread.
CHUNK = 4
#: CG stops when the max-norm of the fixed-point residual is this fraction of ``tol`` (margin
#: for the independent final check, which recomputes the same quantity from scratch: the two
#: differ by rounding only, ~1e-15 of the voltage scale; a miss falls back to another path).
KRYLOV_MARGIN = 0.5
#: Threads (one chunk sequence each) from this many node-inputs (M N B) on.  On the idle 2-core
#: machine (load 0.2) two threads took 0.19 s and one 0.31 s at 256 x 256 x 64 (4.2 M node-inputs; 0.145 s
#: vs 0.26 s at tol 1e-10); with the two cores shared with other jobs (load ~4) the two ranged
#: from 1.4x faster to 1.2x slower, run to run.  CI and users run idle, so threads from 2**20
#: (the benchmark reports both timings in every run).  The threaded kernel costs ~5-10 s more
#: to compile, once (cached).
PARALLEL_MIN_WORK = 2**20
#: Iteration cap; the caller falls back to another path when it is reached.
MAX_ITERATIONS = 500


def eligible(network, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether :func:`solve_symmetric` applies to this network and stamp (see module doc)."""
    if not (np.array_equal(a, b) and (a >= 0).all()):
        return False
    wl, bl = network.wl_chains(), network.bl_chains()
    return bool(
        (wl.r_seg > 0).all()
        and (wl.r_lo > 0).all()
        and (wl.r_hi > 0).all()
        and (bl.r_seg > 0).all()
        and (bl.r_lo > 0).all()
        and (bl.r_hi > 0).all()
    )


#: Word lines solved together (interleaved): their Thomas recurrences are independent, so
#: interleaving hides the latency of one line's recurrence (measured ~3x faster than one line
#: at a time with CHUNK = 4).
LINES = 4


@jit(error_model="numpy")
def _wl_rows(i0, vbuf, wlow, wcp, wipiv):
    """``vbuf[g] <- W_{i0+g}^-1 vbuf[g]`` in place for the word lines ``i0 ..`` of the group.

    ``vbuf (LINES, N, CHUNK)``; lines past ``M`` are skipped.
    """
    m = wlow.shape[0]
    n = vbuf.shape[1]
    ng = min(LINES, m - i0)
    for gi in range(ng):
        ip = wipiv[i0 + gi, 0]
        for k in range(CHUNK):
            vbuf[gi, 0, k] *= ip
    for j in range(1, n):
        for gi in range(ng):
            lo = wlow[i0 + gi, j]
            ip = wipiv[i0 + gi, j]
            for k in range(CHUNK):
                vbuf[gi, j, k] = (vbuf[gi, j, k] - lo * vbuf[gi, j - 1, k]) * ip
    for j in range(n - 2, -1, -1):
        for gi in range(ng):
            cp = wcp[i0 + gi, j]
            for k in range(CHUNK):
                vbuf[gi, j, k] -= cp * vbuf[gi, j + 1, k]


@jit(error_model="numpy")
def _gs_sweep(bi0, d, y, c, has_c, v_in, vend, wlow, wcp, wipiv, w_glo, w_ghi, blow, bcp, bipiv, b_glo, b_ghi,
              vrow, out, v_wl):
    """One Gauss-Seidel sweep with sources: ``x = W^-1 (D y + f_w)``, ``out = B^-1 (D x + f_b)``.

    ``f_w`` (WL sources minus ``c``) and ``f_b`` (``c`` plus BL-end sources) are formed on the
    fly for batch members ``bi0 .. bi0+CHUNK-1`` (members past the batch get no sources).
    Word line ``i`` is solved in the row buffer ``vrow`` and at once fed to the forward
    elimination of row ``i`` of the bit lines; with ``v_wl.shape[0] > 0`` the WL voltages are
    also written to ``v_wl[bi0 + k]``.
    """
    m, n = d.shape
    nb = v_in.shape[0]
    kk = min(CHUNK, nb - bi0)
    for i0 in range(0, m, LINES):
        i1 = min(i0 + LINES, m)
        for i in range(i0, i1):
            _gs_wl_rhs(i, i0, bi0, kk, d, y, c, has_c, v_in, w_glo, w_ghi, vrow)
        _wl_rows(i0, vrow, wlow, wcp, wipiv)
        for i in range(i0, i1):
            _gs_bl_forward(i, i0, bi0, kk, d, c, has_c, vend, blow, bipiv, b_glo, b_ghi, vrow, out, v_wl)
    for r in range(m - 2, -1, -1):
        for j in range(n):
            cp = bcp[r, j]
            for k in range(CHUNK):
                out[r, j, k] -= cp * out[r + 1, j, k]


@jit(error_model="numpy")
def _gs_wl_rhs(i, i0, bi0, kk, d, y, c, has_c, v_in, w_glo, w_ghi, vbuf):
    """Right-hand side of word line ``i`` into ``vbuf[i - i0]``: ``D y + sources - c``."""
    n = d.shape[1]
    vrow = vbuf[i - i0]
    for j in range(n):
        for k in range(CHUNK):
            vrow[j, k] = d[i, j] * y[i, j, k]
    for k in range(kk):
        if has_c:
            ck = c[(bi0 + k) % c.shape[0], i]
            for j in range(n):
                vrow[j, k] -= ck[j]
        vrow[0, k] += v_in[bi0 + k, i] * w_glo[i]
        vrow[n - 1, k] += v_in[bi0 + k, i] * w_ghi[i]


@jit(error_model="numpy")
def _gs_bl_forward(i, i0, bi0, kk, d, c, has_c, vend, blow, bipiv, b_glo, b_ghi, vbuf, out, v_wl):
    """Row ``i`` of the forward BL elimination of ``D x + c + sources`` (``x = vbuf[i - i0]``)."""
    m, n = d.shape
    vrow = vbuf[i - i0]
    if v_wl.shape[0] > 0:
        for k in range(kk):
            row = v_wl[bi0 + k, i]
            for j in range(n):
                row[j] = vrow[j, k]
    for j in range(n):
        for k in range(CHUNK):
            out[i, j, k] = d[i, j] * vrow[j, k]
    for k in range(kk):
        if has_c:
            ck = c[(bi0 + k) % c.shape[0], i]
            for j in range(n):
                out[i, j, k] += ck[j]
        for j in range(n):
            if i == 0:
                out[i, j, k] += vend[j] * b_glo[j]
            if i == m - 1:
                out[i, j, k] += vend[j] * b_ghi[j]
    ip_ = i - 1 if i > 0 else 0
    for j in range(n):
        lo = blow[i, j] if i > 0 else 0.0
        ip = bipiv[i, j]
        for k in range(CHUNK):
            out[i, j, k] = (out[i, j, k] - lo * out[ip_, j, k]) * ip


@jit(error_model="numpy")
def _cg_bl_forward(i, i0, d, p, blow, bipiv, vbuf, pdv_a, t):
    """Row ``i`` of the forward BL elimination of ``D v`` into ``t``, with ``p.D v`` partial sums."""
    n = d.shape[1]
    vrow = vbuf[i - i0]
    prev = t[max(i - 1, 0)]
    for j in range(n):
        dij = d[i, j]
        ip = bipiv[i, j]
        for k in range(CHUNK):
            vk = vrow[j, k]
            pdv_a[j, k] += dij * p[i, j, k] * vk
            t[i, j, k] = dij * vk * ip
        if i > 0:  # row 0 has no predecessor (and t[0] may hold anything before this)
            lo = blow[i, j] * ip
            for k in range(CHUNK):
                t[i, j, k] -= lo * prev[j, k]


@jit(error_model="numpy")
def _colsum(acc, out):
    """``out[k] = sum_j acc[j, k]``."""
    for k in range(acc.shape[1]):
        out[k] = 0.0
    for j in range(acc.shape[0]):
        for k in range(acc.shape[1]):
            out[k] += acc[j, k]


@jit(error_model="numpy")
def _colmax(acc, out):
    """``out[k] = max_j acc[j, k]``."""
    for k in range(acc.shape[1]):
        out[k] = 0.0
    for j in range(acc.shape[0]):
        for k in range(acc.shape[1]):
            out[k] = max(out[k], acc[j, k])


@jit(error_model="numpy")
def _pcg_chunk(bi0, work, d, wlow, wcp, wipiv, blow, bcp, bipiv, dB, g, w_glo, w_ghi, b_glo, b_ghi,
               v_in, c, has_c, vend, tol, max_it, v_wl, v_bl, res, iters):
    """PCG for batch members ``bi0 .. bi0+CHUNK-1``; writes voltages, residuals, iterations.

    Work arrays ``work (4, M, N, CHUNK)``: ``y`` BL voltages, ``z`` fixed-point residual
    ``F(y) - y`` (the preconditioned residual), ``p`` search direction, ``t`` the forward
    elimination of ``B^-1 D v`` with ``v = W^-1 D p`` (so ``(I - H) p = p - B^-1 D v`` and
    ``p.B(I - H)p = p.B p - p.D v``).  ``v`` lives one word line at a time in a row buffer; the
    ``B``-inner products are accumulated inside the passes that update ``z`` and ``p``.
    Two memory sweeps per iteration: word lines + forward BL elimination, then backward BL
    substitution + the CG updates.
    """
    m, n = d.shape
    nb = v_in.shape[0]
    kk = min(CHUNK, nb - bi0)
    y, z, p, t = work[0], work[1], work[2], work[3]
    vrow = np.empty((LINES, n, CHUNK))
    tbuf = np.zeros((2, n, CHUNK))
    # Per-(column, member) partial sums: no loop-carried dependence inside a row, so the row
    # loops vectorise; reduced over columns after each sweep.
    acc = np.zeros((4, n, CHUNK))
    pdv_a, pbp_a, rz_a, zmax_a = acc[0], acc[1], acc[2], acc[3]
    no_out = np.empty((0, m, n))
    y[:] = 0.0
    _gs_sweep(bi0, d, y, c, has_c, v_in, vend, wlow, wcp, wipiv, w_glo, w_ghi, blow, bcp, bipiv, b_glo, b_ghi,
              vrow, z, no_out)  # z = F(0) = h
    scale = np.zeros(CHUNK)
    vmax = 0.0
    for j in range(n):
        vmax = max(vmax, abs(vend[j]))
    for k in range(kk):
        s = vmax
        for i in range(m):
            s = max(s, abs(v_in[bi0 + k, i]))
        scale[k] = s
    rz = np.zeros(CHUNK)
    pbp = np.zeros(CHUNK)
    for i in range(m):
        im = max(i - 1, 0)  # g[0] = 0: row 0 has no upper neighbour
        for j in range(n):
            for k in range(CHUNK):
                zk = z[i, j, k]
                scale[k] = max(scale[k], abs(zk))
                p[i, j, k] = zk
                rz[k] += (dB[i, j] * zk - 2.0 * g[i, j] * z[im, j, k]) * zk
    for k in range(CHUNK):
        scale[k] = max(scale[k], 1e-300)
        pbp[k] = rz[k]
    live = np.zeros(CHUNK, np.bool_)
    for k in range(kk):
        live[k] = rz[k] > 0.0
    alpha, beta, pdv, zmax = np.zeros(CHUNK), np.zeros(CHUNK), np.zeros(CHUNK), np.zeros(CHUNK)
    it = 0
    while it < max_it:
        nlive = 0
        for k in range(CHUNK):
            nlive += live[k]
        if nlive == 0:
            break
        it += 1
        # Sweep 1, word line by word line: p = z + beta p (from the second iteration on, with
        # p.B p), v = W_i^-1 D p (with p.D v), then row i of the forward BL elimination of D v.
        pdv_a[:] = 0.0
        pbp_a[:] = 0.0
        for i0 in range(0, m, LINES):
            i1 = min(i0 + LINES, m)
            for i in range(i0, i1):
                im = max(i - 1, 0)
                if it > 1:
                    for j in range(n):
                        dbij = dB[i, j]
                        gij = 2.0 * g[i, j]
                        for k in range(CHUNK):
                            pk = z[i, j, k] + beta[k] * p[i, j, k]
                            p[i, j, k] = pk
                            pbp_a[j, k] += (dbij * pk - gij * p[im, j, k]) * pk
                vr = vrow[i - i0]
                for j in range(n):
                    for k in range(CHUNK):
                        vr[j, k] = d[i, j] * p[i, j, k]
            _wl_rows(i0, vrow, wlow, wcp, wipiv)
            for i in range(i0, i1):
                _cg_bl_forward(i, i0, d, p, blow, bipiv, vrow, pdv_a, t)
        _colsum(pdv_a, pdv)
        if it > 1:
            _colsum(pbp_a, pbp)
        rz_a[:] = 0.0
        zmax_a[:] = 0.0
        for k in range(CHUNK):
            pq = pbp[k] - pdv[k]
            if live[k] and not pq > 0.0:
                live[k] = False  # breakdown (or an exact solve): stop this member here
            alpha[k] = rz[k] / pq if live[k] else 0.0
            zmax[k] = 0.0
            beta[k] = rz[k]
            rz[k] = 0.0
        # Sweep 2, rows M-1 .. 0: backward BL substitution (row r of B^-1 D v into a row
        # buffer), y += alpha p, z -= alpha (p - B^-1 D v), z.B z (row r+1 final) and max |z|.
        for r in range(m - 1, -1, -1):
            rp = min(r + 1, m - 1)
            cur, prev = tbuf[r & 1], tbuf[(r + 1) & 1]
            for j in range(n):
                cp = bcp[r, j] if r < m - 1 else 0.0
                dbij = dB[r, j]
                gij = 2.0 * g[r + 1, j] if r < m - 1 else 0.0
                for k in range(CHUNK):
                    tk = t[r, j, k] - cp * prev[j, k]
                    cur[j, k] = tk
                    pk = p[r, j, k]
                    y[r, j, k] += alpha[k] * pk
                    zk = z[r, j, k] - alpha[k] * (pk - tk)
                    z[r, j, k] = zk
                    rz_a[j, k] += (dbij * zk - gij * z[rp, j, k]) * zk
                    zmax_a[j, k] = max(zmax_a[j, k], abs(zk))
        _colsum(rz_a, rz)
        _colmax(zmax_a, zmax)
        for k in range(CHUNK):
            if live[k] and (zmax[k] <= tol * KRYLOV_MARGIN * scale[k] or not rz[k] > 0.0):
                live[k] = False
            beta[k] = rz[k] / beta[k] if live[k] else 0.0
    # Independent check: one more sweep from y, with the sources formed afresh; it also
    # writes the WL voltages of the answer.
    _gs_sweep(bi0, d, y, c, has_c, v_in, vend, wlow, wcp, wipiv, w_glo, w_ghi, blow, bcp, bipiv, b_glo, b_ghi,
              vrow, t, v_wl)
    for k in range(kk):
        worst = 0.0
        vb = v_bl[bi0 + k]
        for i in range(m):
            for j in range(n):
                yk = y[i, j, k]
                e = abs(t[i, j, k] - yk)
                if not e <= worst:  # NaN-aware: a NaN makes the residual infinite
                    worst = e if e == e else np.inf
                vb[i, j] = yk
        res[bi0 + k] = worst / scale[k] if np.isfinite(worst) else np.inf
        iters[bi0 + k] = it


@jit_parallel(error_model="numpy")
def _pcg(workers, d, wlow, wcp, wipiv, blow, bcp, bipiv, dB, g, w_glo, w_ghi, b_glo, b_ghi,
         v_in, c, has_c, vend, tol, max_it, v_wl, v_bl, res, iters):
    """:func:`_pcg_chunk` over every chunk of the batch, chunks dealt out to ``workers`` threads."""
    m, n = d.shape
    nchunks = (v_in.shape[0] + CHUNK - 1) // CHUNK
    workers = min(workers, nchunks)
    for w in prange(workers):  # one set of work arrays per worker, reused for its chunks
        work = np.empty((4, m, n, CHUNK))
        for ci in range(w, nchunks, workers):
            _pcg_chunk(ci * CHUNK, work, d, wlow, wcp, wipiv, blow, bcp, bipiv, dB, g, w_glo, w_ghi, b_glo, b_ghi,
                       v_in, c, has_c, vend, tol, max_it, v_wl, v_bl, res, iters)


@jit(error_model="numpy")
def _pcg_serial(workers, d, wlow, wcp, wipiv, blow, bcp, bipiv, dB, g, w_glo, w_ghi, b_glo, b_ghi,
                v_in, c, has_c, vend, tol, max_it, v_wl, v_bl, res, iters):
    """:func:`_pcg` on one thread (``workers`` is ignored)."""
    m, n = d.shape
    work = np.empty((4, m, n, CHUNK))
    for ci in range((v_in.shape[0] + CHUNK - 1) // CHUNK):
        _pcg_chunk(ci * CHUNK, work, d, wlow, wcp, wipiv, blow, bcp, bipiv, dB, g, w_glo, w_ghi, b_glo, b_ghi,
                   v_in, c, has_c, vend, tol, max_it, v_wl, v_bl, res, iters)


def _end_conductance(r: np.ndarray) -> np.ndarray:
    """``1 / r`` for ``0 < r``, 0 for an open (infinite) end."""
    return np.where(np.isfinite(r), 1.0 / r, 0.0)


def solve_symmetric(network, a: np.ndarray, c3: np.ndarray, v2: np.ndarray, tol: float,
                    *, max_iterations: int = MAX_ITERATIONS):
    """PCG solve of an eligible network (see :func:`eligible`) for a batch of inputs.

    ``a (M, N)`` S is the symmetric stamp; ``c3 (Bc, M, N)`` A with ``Bc`` 1 or the batch;
    ``v2 (B, M)`` V.  Returns ``(v_wl, v_bl, iterations, residual)`` with voltages
    ``(B, M, N)``, or ``None`` when the relative residual misses ``tol`` (caller falls back).
    The arrays are those :func:`cimphys.circuits.nodal.check_stamp` returns (finite, float64,
    C-contiguous); :func:`~cimphys.circuits.nodal.solve_linear` is the checked entry point.
    """
    from .nodal import _Family  # the chain factorisation shared with the other paths

    m, n = network.shape
    tol = as_scalar("tol", tol, low=0.0, low_open=True)
    if not eligible(network, a, a):
        raise InputError("a: the symmetric CG path needs a == b >= 0 and no merged or fixed line nodes")
    if v2.ndim != 2 or v2.shape[1] != m or c3.ndim != 3 or c3.shape[1:] != (m, n):
        raise InputError(f"v2, c3: expected (B, {m}) and (Bc, {m}, {n}), got {v2.shape} and {c3.shape}")
    wl, bl = network.wl_chains(), network.bl_chains()
    wlf = _Family(wl, a)
    blf = _Family(bl, np.ascontiguousarray(a.T))
    g = np.zeros((m, n))
    g[1:] = 1.0 / bl.r_seg.T
    b_glo, b_ghi = _end_conductance(bl.r_lo), _end_conductance(bl.r_hi)
    dB = a.copy()
    dB[1:] += g[1:]
    dB[:-1] += g[1:]
    dB[0] += b_glo
    dB[-1] += b_ghi
    nb = v2.shape[0]
    v_wl, v_bl = np.empty((nb, m, n)), np.empty((nb, m, n))
    res, iters = np.empty(nb), np.empty(nb, np.int64)
    kernel = _pcg if a.size * nb >= PARALLEL_MIN_WORK else _pcg_serial
    kernel(
        numba.get_num_threads(), a, wlf.low, wlf.cp, wlf.ipiv,
        np.ascontiguousarray(blf.low.T), np.ascontiguousarray(blf.cp.T), np.ascontiguousarray(blf.ipiv.T),
        dB, g, _end_conductance(wl.r_lo), _end_conductance(wl.r_hi), b_glo, b_ghi,
        v2, c3, bool(c3.any()), np.ascontiguousarray(network.v_bl_end, dtype=np.float64), tol,
        int(max_iterations), v_wl, v_bl, res, iters,
    )
    if not (np.isfinite(res).all() and res.max() <= tol and np.isfinite(v_wl).all()):
        return None
    return v_wl, v_bl, int(iters.max()), float(res.max())
