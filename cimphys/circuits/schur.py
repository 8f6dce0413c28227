"""Conjugate gradients on the bit-line Schur complement, for symmetric stamps (``a == b``).

With a two-terminal linear (or linearised) cell the stamp is symmetric, ``a = b = D``, and the
nodal matrix is symmetric positive definite when ``D >= 0``.  Ordering the unknowns WL first,

    [ W   -D ] [x]   [f_w]        W  = WL chains + D (tridiagonal per word line)
    [-D   B  ] [y] = [f_b],       B  = BL chains + D (tridiagonal per bit line),

and eliminating the WL voltages ``x = W^-1 (D y + f_w)`` exactly leaves the Schur complement
``S y = B y - D W^-1 D y = f_b + D W^-1 f_w`` on the BL voltages, again SPD.  Preconditioned by
``B`` (one Thomas solve per bit line), the operator is ``B^-1 S = I - H`` with
``H = B^-1 D W^-1 D`` the block Gauss-Seidel map of :mod:`cimphys.circuits.iterative`'s
path; ``H`` is self-adjoint in the ``B`` inner product with eigenvalues in ``[0, 1)``, so
preconditioned CG [1]_ converges at the rate ``(sqrt(k) - 1) / (sqrt(k) + 1)`` with
``k <= 1 / (1 - rho(H))``, and each iteration costs one WL sweep, one BL sweep and one
tridiagonal product (BiCGSTAB on the same map needs two of each sweep).

A chunk of ``K`` right-hand sides is stored ``(M, K, N)``, columns innermost, and the whole
iteration runs in Numba without returning to Python: an iteration is two sweeps over four work
arrays (ascending rows: ``LINES`` word lines solved together, each feeding the forward
elimination of its BL row at once; descending rows: the BL back substitution fused with the CG
updates and the inner products, accumulated per column).  Every loop over the columns is one
contiguous loop over a few rows (in L1), which LLVM vectorises with a couple of run-time alias
checks; with the batch innermost (``(M, N, K)``, the previous layout) the loops of length ``K``
compiled to scalar code, since LLVM could not prove that the work arrays do not alias.  Chunks
are independent (threads for large work, see ``PARALLEL_MIN_WORK``).  What each of these choices
was measured to gain, and what was tried and did not help, is in ``benchmarks/bench_crossbar.py``.

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

from .._numba import jit
from ..checks import as_scalar
from ..errors import InputError
from .lines import LineFactor

__all__ = ["CHUNK", "eligible", "solve_symmetric"]

#: Right-hand sides per chunk (read at each call).  On the 256 x 256, batch-64 benchmark 2, 3
#: and 4 were within the run-to-run noise and 8 was 3x slower (the four work arrays, 16 MiB,
#: no longer stay in the shared L3); 4 keeps them at 8 MiB.
CHUNK = 4
#: CG stops when the max-norm of the fixed-point residual is this fraction of ``tol`` (margin
#: for the independent final check, which recomputes the same quantity from scratch: the two
#: differ by rounding only, ~1e-15 of the voltage scale; a miss falls back to another path).
KRYLOV_MARGIN = 0.5
#: Threads (Python threads, each running the GIL-free kernel on a contiguous run of chunks) from
#: this many node-inputs (M N B) on, as many as ``numba.get_num_threads()`` allows.  On the idle
#: 2-core machine (load 0.2) two threads took 0.19 s and one 0.31 s at 256 x 256 x 64 (4.2 M
#: node-inputs; 0.145 s vs 0.26 s at tol 1e-10; Numba's parallel loop then, the same split);
#: with the two cores shared with other jobs (load ~4) the two ranged from 1.4x faster to 1.2x
#: slower, run to run.  CI and users run idle, so threads from 2**20 (the benchmark reports both
#: timings in every run).  Plain threads instead of a ``prange`` kernel: no second kernel to
#: compile (that one took 10-20 s cold), and safe to call from a thread pool of the caller.
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


#: Word lines solved together: their Thomas recurrences are independent, so interleaving
#: ``LINES`` lines (times the chunk's members) hides the latency of one recurrence.
LINES = 4


@jit(error_model="numpy")
def _wl_rows(i0, ng, kk, vbuf, wlow, wcp, wipiv):
    """``vbuf[g, k] <- W_{i0+g}^-1 vbuf[g, k]`` in place for ``g < ng`` lines, ``k < kk`` members.

    ``vbuf (LINES, CHUNK, N)``: ``ng * kk`` independent Thomas recurrences.  A full chunk of 4
    runs two lines at a time with their 8 recurrences carried in registers
    (:func:`_wl_two_lines`, measured 2.9 ns per node and chunk against 4.5-5.4 for the loops
    below, bit-identical); other chunks, and an odd last line, take the loops.
    """
    g = 0
    if kk == 4:
        while g + 1 < ng:
            _wl_two_lines(vbuf[g], vbuf[g + 1], wlow[i0 + g], wcp[i0 + g], wipiv[i0 + g], wlow[i0 + g + 1],
                          wcp[i0 + g + 1], wipiv[i0 + g + 1])
            g += 2
    n = vbuf.shape[2]
    for gi in range(g, ng):
        ip = wipiv[i0 + gi, 0]
        for k in range(kk):
            vbuf[gi, k, 0] *= ip
    for j in range(1, n):
        for gi in range(g, ng):
            lo = wlow[i0 + gi, j]
            ip = wipiv[i0 + gi, j]
            for k in range(kk):
                vbuf[gi, k, j] = (vbuf[gi, k, j] - lo * vbuf[gi, k, j - 1]) * ip
    for j in range(n - 2, -1, -1):
        for gi in range(g, ng):
            cp = wcp[i0 + gi, j]
            for k in range(kk):
                vbuf[gi, k, j] -= cp * vbuf[gi, k, j + 1]


@jit(error_model="numpy")
def _wl_two_lines(va, vb, la, ca, pa, lb, cb, pb):
    """Thomas solves of two word lines for 4 members each, ``va, vb (4, N)`` in place.

    Factors ``la, ca, pa`` (``low, cp, ipiv``) of the first line, ``lb, cb, pb`` of the second;
    the same arithmetic as the loops of :func:`_wl_rows`, with the 8 running values in locals
    (no store-to-load round trip, no loop over members).
    """
    n = va.shape[1]
    a0, a1, a2, a3 = va[0], va[1], va[2], va[3]
    b0, b1, b2, b3 = vb[0], vb[1], vb[2], vb[3]
    ip, iq = pa[0], pb[0]
    x0, x1, x2, x3 = a0[0] * ip, a1[0] * ip, a2[0] * ip, a3[0] * ip
    y0, y1, y2, y3 = b0[0] * iq, b1[0] * iq, b2[0] * iq, b3[0] * iq
    a0[0], a1[0], a2[0], a3[0] = x0, x1, x2, x3
    b0[0], b1[0], b2[0], b3[0] = y0, y1, y2, y3
    for j in range(1, n):
        lo, ip, lq, iq = la[j], pa[j], lb[j], pb[j]
        x0 = (a0[j] - lo * x0) * ip
        x1 = (a1[j] - lo * x1) * ip
        x2 = (a2[j] - lo * x2) * ip
        x3 = (a3[j] - lo * x3) * ip
        y0 = (b0[j] - lq * y0) * iq
        y1 = (b1[j] - lq * y1) * iq
        y2 = (b2[j] - lq * y2) * iq
        y3 = (b3[j] - lq * y3) * iq
        a0[j], a1[j], a2[j], a3[j] = x0, x1, x2, x3
        b0[j], b1[j], b2[j], b3[j] = y0, y1, y2, y3
    for j in range(n - 2, -1, -1):
        cp, cq = ca[j], cb[j]
        x0 = a0[j] - cp * x0
        x1 = a1[j] - cp * x1
        x2 = a2[j] - cp * x2
        x3 = a3[j] - cp * x3
        y0 = b0[j] - cq * y0
        y1 = b1[j] - cq * y1
        y2 = b2[j] - cq * y2
        y3 = b3[j] - cq * y3
        a0[j], a1[j], a2[j], a3[j] = x0, x1, x2, x3
        b0[j], b1[j], b2[j], b3[j] = y0, y1, y2, y3


@jit(error_model="numpy")
def _gs_sweep(bi0, kk, zero_y, d, y, c, has_c, v_in, vend, wlow, wcp, wipiv, w_glo, w_ghi, blow, bcp, bipiv,
              b_glo, b_ghi, vbuf, out, v_wl):
    """One Gauss-Seidel sweep with sources: ``x = W^-1 (D y + f_w)``, ``out = B^-1 (D x + f_b)``.

    ``y, out (M, CHUNK, N)`` hold members ``bi0 .. bi0+kk-1`` (``zero_y``: ``y`` is taken as 0,
    not read).  ``f_w`` (WL sources minus ``c``) and ``f_b`` (``c`` plus BL-end sources) are
    formed on the fly.  Word line ``i`` is solved in the buffer ``vbuf`` and at once fed to
    the forward elimination of row ``i`` of the bit lines; with ``v_wl.shape[0] > 0`` the WL
    voltages are also written to ``v_wl[bi0 + k]``.
    """
    m, n = d.shape
    for i0 in range(0, m, LINES):
        ng = min(LINES, m - i0)
        for gi in range(ng):
            i = i0 + gi
            di = d[i]
            for k in range(kk):
                vr = vbuf[gi, k]
                if zero_y:
                    vr[:] = 0.0
                else:
                    yr = y[i, k]
                    for j in range(n):
                        vr[j] = di[j] * yr[j]
                if has_c:
                    cr = c[(bi0 + k) % c.shape[0], i]
                    for j in range(n):
                        vr[j] -= cr[j]
                vr[0] += v_in[bi0 + k, i] * w_glo[i]
                vr[n - 1] += v_in[bi0 + k, i] * w_ghi[i]
        _wl_rows(i0, ng, kk, vbuf, wlow, wcp, wipiv)
        for gi in range(ng):
            i = i0 + gi
            di, lo, ip = d[i], blow[i], bipiv[i]
            for k in range(kk):
                vr = vbuf[gi, k]
                if v_wl.shape[0] > 0:
                    v_wl[bi0 + k, i, :] = vr
                o = out[i, k]
                if has_c:
                    cr = c[(bi0 + k) % c.shape[0], i]
                    for j in range(n):
                        o[j] = di[j] * vr[j] + cr[j]
                else:
                    for j in range(n):
                        o[j] = di[j] * vr[j]
                if i == 0:
                    for j in range(n):
                        o[j] += vend[j] * b_glo[j]
                if i == m - 1:
                    for j in range(n):
                        o[j] += vend[j] * b_ghi[j]
                if i > 0:
                    prev = out[i - 1, k]
                    for j in range(n):
                        o[j] = (o[j] - lo[j] * prev[j]) * ip[j]
                else:
                    for j in range(n):
                        o[j] *= ip[j]
    for r in range(m - 2, -1, -1):
        cp = bcp[r]
        for k in range(kk):
            o, nxt = out[r, k], out[r + 1, k]
            for j in range(n):
                o[j] -= cp[j] * nxt[j]


@jit(error_model="numpy")
def _pcg_chunk(bi0, kk, work, vbuf, acc, d, wlow, wcp, wipiv, blow, bcp, bipiv, dB, g2, g2n, w_glo, w_ghi,
               b_glo, b_ghi, v_in, c, has_c, vend, tol, max_it, v_wl, v_bl, res, iters):
    """PCG for batch members ``bi0 .. bi0+kk-1``; writes voltages, residuals, iterations.

    Work arrays ``work (4, M, CHUNK, N)``: ``y`` BL voltages, ``z`` fixed-point residual
    ``F(y) - y`` (the preconditioned residual), ``p`` search direction, ``t`` the forward
    elimination of ``B^-1 D v`` with ``v = W^-1 D p`` (so ``(I - H) p = p - B^-1 D v`` and
    ``p.B(I - H)p = p.B p - p.D v``), then the final check's sweep.  ``v`` lives one group of
    word lines at a time in ``vbuf``; the ``B``-inner products are accumulated per
    (member, column) in ``acc`` inside the passes that update ``z`` and ``p``.  Two memory
    sweeps per iteration: word lines + forward BL elimination, then backward BL substitution
    + the CG updates.  Columns are the innermost axis: every loop over them is a contiguous
    SIMD loop touching a few arrays (each a row, in L1), so the vectoriser's alias checks stay
    few.  ``g2[i] = 2 g[i]`` couples rows ``i-1, i`` (``g2[0] = 0``), ``g2n[i] = g2[i+1]``
    (``g2n[M-1] = 0``), and ``bcp[M-1] = 0``.
    """
    m, n = d.shape
    y, z, p, t = work[0], work[1], work[2], work[3]
    pdv_a, pbp_a, rz_a, zmax_a, prev = acc[0], acc[1], acc[2], acc[3], acc[4]
    no_out = np.empty((0, m, n))
    _gs_sweep(bi0, kk, True, d, y, c, has_c, v_in, vend, wlow, wcp, wipiv, w_glo, w_ghi, blow, bcp, bipiv,
              b_glo, b_ghi, vbuf, z, no_out)  # z = F(0) = h
    for i in range(m):
        for k in range(kk):
            y[i, k, :] = 0.0
    nc = acc.shape[1]
    scale = np.zeros(nc)
    rz = np.zeros(nc)
    pbp = np.zeros(nc)  # p.B p of the first iteration (p = z); later ones are summed in pbp_a
    vmax = 0.0
    for j in range(n):
        vmax = max(vmax, abs(vend[j]))
    for k in range(kk):
        s = vmax
        for i in range(m):
            s = max(s, abs(v_in[bi0 + k, i]))
        scale[k] = s
        rz_a[k, :] = 0.0
        zmax_a[k, :] = 0.0
    for i in range(m):
        im = max(i - 1, 0)  # g2[0] = 0: row 0 has no upper neighbour
        dBi, g2i = dB[i], g2[i]
        for k in range(kk):
            zr, zm, ra, za = z[i, k], z[im, k], rz_a[k], zmax_a[k]
            p[i, k, :] = zr
            for j in range(n):
                za[j] = max(za[j], abs(zr[j]))
            for j in range(n):
                ra[j] += (dBi[j] * zr[j] - g2i[j] * zm[j]) * zr[j]
    for k in range(kk):
        rz[k] = _sum(rz_a[k])
        scale[k] = max(scale[k], _max(zmax_a[k]), 1e-300)
        pbp[k] = rz[k]
    live = np.zeros(nc, np.bool_)
    for k in range(kk):
        live[k] = rz[k] > 0.0
    alpha, beta = np.zeros(nc), np.zeros(nc)
    it = 0
    while it < max_it:
        nlive = 0
        for k in range(kk):
            nlive += live[k]
        if nlive == 0:
            break
        it += 1
        # Sweep 1, word line by word line: p = z + beta p (from the second iteration on, with
        # p.B p), v = W_i^-1 D p (with p.D v), then row i of the forward BL elimination of D v.
        for k in range(kk):
            pdv_a[k, :] = 0.0
            pbp_a[k, :] = 0.0
        for i0 in range(0, m, LINES):
            ng = min(LINES, m - i0)
            for gi in range(ng):
                i = i0 + gi
                im = max(i - 1, 0)
                di, dBi, g2i = d[i], dB[i], g2[i]
                for k in range(kk):
                    pr, vr = p[i, k], vbuf[gi, k]
                    if it > 1:
                        zr, pm, pa, bk = z[i, k], p[im, k], pbp_a[k], beta[k]
                        for j in range(n):
                            pk = zr[j] + bk * pr[j]
                            pr[j] = pk
                            pa[j] += (dBi[j] * pk - g2i[j] * pm[j]) * pk
                            vr[j] = di[j] * pk
                    else:
                        for j in range(n):
                            vr[j] = di[j] * pr[j]
            _wl_rows(i0, ng, kk, vbuf, wlow, wcp, wipiv)
            for gi in range(ng):
                i = i0 + gi
                di, lo, ip = d[i], blow[i], bipiv[i]
                for k in range(kk):
                    vr, pr, tr, pa = vbuf[gi, k], p[i, k], t[i, k], pdv_a[k]
                    if i > 0:  # row 0 has no predecessor
                        tm = t[i - 1, k]
                        for j in range(n):
                            vk = vr[j]
                            pa[j] += vk * pr[j] * di[j]
                            tr[j] = (di[j] * vk - lo[j] * tm[j]) * ip[j]
                    else:
                        for j in range(n):
                            vk = vr[j]
                            pa[j] += vk * pr[j] * di[j]
                            tr[j] = di[j] * vk * ip[j]
        for k in range(kk):
            pq = (pbp[k] if it == 1 else _sum(pbp_a[k])) - _sum(pdv_a[k])  # p.B(I - H)p
            if live[k] and not pq > 0.0:
                live[k] = False  # breakdown (or an exact solve): stop this member here
            alpha[k] = rz[k] / pq if live[k] else 0.0
            rz_a[k, :] = 0.0
            zmax_a[k, :] = 0.0
            prev[k, :] = 0.0  # read (times bcp[M-1] = 0) on the last row: never uninitialised
        # Sweep 2, rows M-1 .. 0: backward BL substitution (row r of B^-1 D v into prev, in
        # place of row r+1), y += alpha p, z -= alpha (p - B^-1 D v), z.B z and max |z|.
        for r in range(m - 1, -1, -1):
            rp = min(r + 1, m - 1)
            cp, dBr, g2r = bcp[r], dB[r], g2n[r]
            for k in range(kk):
                ak = alpha[k]
                tr, tn, pr = t[r, k], prev[k], p[r, k]
                yr, zr, zn, ra, za = y[r, k], z[r, k], z[rp, k], rz_a[k], zmax_a[k]
                for j in range(n):
                    tk = tr[j] - cp[j] * tn[j]  # cp = bcp[M-1] = 0 on the last row
                    tn[j] = tk  # row r of B^-1 D v, read by row r-1
                    pk = pr[j]
                    yr[j] += ak * pk
                    zk = zr[j] - ak * (pk - tk)
                    zr[j] = zk
                    ra[j] += (dBr[j] * zk - g2r[j] * zn[j]) * zk
                    za[j] = max(za[j], abs(zk))
        for k in range(kk):
            rz_new = _sum(rz_a[k])
            if live[k] and (_max(zmax_a[k]) <= tol * KRYLOV_MARGIN * scale[k] or not rz_new > 0.0):
                live[k] = False
            beta[k] = rz_new / rz[k] if live[k] else 0.0
            rz[k] = rz_new
    # Independent check: one more sweep from y, with the sources formed afresh; it also
    # writes the WL voltages of the answer.
    _gs_sweep(bi0, kk, False, d, y, c, has_c, v_in, vend, wlow, wcp, wipiv, w_glo, w_ghi, blow, bcp, bipiv,
              b_glo, b_ghi, vbuf, t, v_wl)
    for k in range(kk):
        worst = 0.0
        vb = v_bl[bi0 + k]
        for i in range(m):
            yr, cr = y[i, k], t[i, k]
            for j in range(n):
                e = abs(cr[j] - yr[j])
                if not e <= worst:  # NaN-aware: a NaN makes the residual infinite
                    worst = e if e == e else np.inf
            vb[i, :] = yr
        res[bi0 + k] = worst / scale[k] if np.isfinite(worst) else np.inf
        iters[bi0 + k] = it


@jit(error_model="numpy")
def _sum(a):
    """``sum(a)`` of a 1-D array, in order."""
    s = 0.0
    for x in a:
        s += x
    return s


@jit(error_model="numpy")
def _max(a):
    """``max(a)`` of a non-negative 1-D array (0 for an empty one)."""
    s = 0.0
    for x in a:
        s = max(s, x)
    return s


@jit(error_model="numpy")  # nogil (package policy): threads of solve_symmetric run it at once
def _pcg(chunk, d, wlow, wcp, wipiv, blow, bcp, bipiv, dB, g2, g2n, w_glo, w_ghi, b_glo, b_ghi,
         v_in, c, has_c, vend, tol, max_it, v_wl, v_bl, res, iters):
    """:func:`_pcg_chunk` over every chunk of the batch ``v_in``, one set of work arrays reused."""
    m, n = d.shape
    nb = v_in.shape[0]
    work = np.empty((4, m, chunk, n))
    vbuf = np.empty((LINES, chunk, n))
    acc = np.empty((5, chunk, n))
    for ci in range((nb + chunk - 1) // chunk):
        bi0 = ci * chunk
        _pcg_chunk(bi0, min(chunk, nb - bi0), work, vbuf, acc, d, wlow, wcp, wipiv, blow, bcp, bipiv, dB,
                   g2, g2n, w_glo, w_ghi, b_glo, b_ghi, v_in, c, has_c, vend, tol, max_it, v_wl, v_bl,
                   res, iters)


def _threads(work: int, nchunks: int) -> int:
    """Threads for ``work`` node-inputs in ``nchunks`` chunks (see ``PARALLEL_MIN_WORK``)."""
    if work < PARALLEL_MIN_WORK:
        return 1
    return max(1, min(numba.get_num_threads(), nchunks))


def _end_conductance(r: np.ndarray) -> np.ndarray:
    """``1 / r`` for ``0 < r``, 0 for an open (infinite) end."""
    return np.where(np.isfinite(r), 1.0 / r, 0.0)


def _pcg_arguments(network, a: np.ndarray) -> tuple:
    """What :func:`_pcg` takes after the stamp ``a (M, N)`` (S), in its order: the word-line and
    bit-line chain factors (the preconditioner), the bit-line couplings and the word-line ends'
    conductances (S)."""
    m, n = network.shape
    wl, bl = network.wl_chains(), network.bl_chains()
    wlf = LineFactor(wl, a)
    blf = LineFactor(bl, np.ascontiguousarray(a.T))
    g, b_glo, b_ghi, diag = network.bl_couplings()
    dB = a + diag
    g2n = np.zeros((m, n))
    g2n[:-1] = 2.0 * g[1:]
    bcp = np.ascontiguousarray(blf.cp.T)
    bcp[-1] = 0.0  # already 0 (no coupling past the last row); the kernel relies on it
    return (wlf.low, wlf.cp, wlf.ipiv, np.ascontiguousarray(blf.low.T), bcp, np.ascontiguousarray(blf.ipiv.T),
            dB, 2.0 * g, g2n, _end_conductance(wl.r_lo), _end_conductance(wl.r_hi), b_glo, b_ghi)


def solve_symmetric(network, a: np.ndarray, c3: np.ndarray, v2: np.ndarray, tol: float,
                    *, max_iterations: int = MAX_ITERATIONS):
    """PCG solve of an eligible network (see :func:`eligible`) for a batch of inputs.

    ``a (M, N)`` S is the symmetric stamp; ``c3 (Bc, M, N)`` A with ``Bc`` 1 or the batch;
    ``v2 (B, M)`` V.  Returns ``(v_wl, v_bl, iterations, residual)`` with voltages
    ``(B, M, N)``, or ``None`` when the relative residual misses ``tol`` (caller falls back).
    The arrays are those :func:`cimphys.circuits.network.check_stamp` returns (finite, float64,
    C-contiguous); :func:`~cimphys.circuits.linear.solve_linear` is the checked entry point.
    """
    m, n = network.shape
    tol = as_scalar("tol", tol, low=0.0, low_open=True)
    if not eligible(network, a, a):
        raise InputError("a: the symmetric CG path needs a == b >= 0 and no merged or fixed line nodes")
    if v2.ndim != 2 or v2.shape[1] != m or c3.ndim != 3 or c3.shape[1:] != (m, n):
        raise InputError(f"v2, c3: expected (B, {m}) and (Bc, {m}, {n}), got {v2.shape} and {c3.shape}")
    args = _pcg_arguments(network, a)
    nb = v2.shape[0]
    v_wl, v_bl = np.empty((nb, m, n)), np.empty((nb, m, n))
    res, iters = np.empty(nb), np.empty(nb, np.int64)
    chunk = int(CHUNK)
    has_c, vend = bool(c3.any()), np.ascontiguousarray(network.v_bl_end, dtype=np.float64)
    nchunks = (nb + chunk - 1) // chunk
    workers = _threads(a.size * nb, nchunks)

    def run(lo: int, hi: int) -> None:  # members lo..hi-1, whole chunks: the same arithmetic as one call
        c_part = c3 if c3.shape[0] == 1 else c3[lo:hi]
        _pcg(chunk, a, *args, v2[lo:hi], c_part, has_c, vend, tol, int(max_iterations),
             v_wl[lo:hi], v_bl[lo:hi], res[lo:hi], iters[lo:hi])

    if workers == 1:
        run(0, nb)
    else:  # the kernel releases the GIL: plain threads, each a contiguous run of chunks
        from concurrent.futures import ThreadPoolExecutor

        per = (nchunks + workers - 1) // workers * chunk
        with ThreadPoolExecutor(workers) as pool:
            for job in [pool.submit(run, lo, min(lo + per, nb)) for lo in range(0, nb, per)]:
                job.result()
    if not (np.isfinite(res).all() and res.max() <= tol and np.isfinite(v_wl).all()):
        return None
    return v_wl, v_bl, int(iters.max()), float(res.max())
