"""Linear solves of a batch of Newton steps at once, each input vector with its own stamp.

In a Newton solve of a crossbar with two-terminal cells every input vector linearises the
cells at its own node voltages, so the stamp ``D = dI/dV`` differs from vector to vector
while the wires (the sparsity and the line chains) are shared.  This module solves

    [ W_b   -D_b ] [x_b]   [f_w,b]        W_b = WL chains + D_b  (tridiagonal per word line)
    [-D_b    B_b ] [y_b] = [f_b,b],       B_b = BL chains + D_b  (tridiagonal per bit line)

for every vector ``b`` of a batch in one Numba kernel: threads over the vectors, and for each
the structure of :mod:`cimphys.circuits.schur` (the word lines eliminated exactly, conjugate
gradients on the bit-line Schur complement ``S = B - D W^-1 D`` preconditioned by ``B``, one
Thomas factorisation per line and vector) with its own ``D_b``.  A warm start (the bit-line
voltages of the previous Newton iterate) cuts the CG iterations of the later Newton steps.

Scope: ``a == b = D >= 0`` (a two-terminal cell with a non-negative differential conductance)
on a network whose word and bit lines have no zero segment and no zero end resistance
(:func:`cimphys.circuits.schur.eligible`); the caller uses the per-vector path otherwise.

Accuracy: CG stops when the preconditioned residual ``B^-1 (f - S y)`` (the bit-line voltage
change of one more block Gauss-Seidel sweep, the criterion of :mod:`cimphys.circuits.nodal`'s
iterative path) is below ``tol`` times the voltage scale, or has fallen by the forcing term
``eta`` of an inexact Newton step.  The residual returned is CG's own (it departs from a
recomputed one by rounding only); this is a kernel for :mod:`cimphys.circuits.newton`, which
accepts no answer before an independent KCL check of the full network
(:func:`kcl_excess`), not a general linear solver.

References
----------
.. [1] Y. Saad, *Iterative Methods for Sparse Linear Systems*, 2nd ed., SIAM (2003), alg. 9.1
   (preconditioned CG). doi:10.1137/1.9780898718003
.. [2] L. H. Thomas, "Elliptic problems in linear difference equations over a network",
   Watson Sci. Comput. Lab. report, Columbia University (1949) (tridiagonal elimination).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._numba import jit, jit_parallel, prange

__all__ = ["Wires", "kcl_excess", "newton_measures", "solve_stamps"]

#: CG stops at this fraction of ``tol`` (margin for the recomputed final residual).
MARGIN = 0.5
#: Iteration cap per linear solve; a vector that reaches it is reported as missed.
MAX_CG = 400
#: Batches of fewer node-inputs (B M N) than this run on one thread: under a shared machine's
#: load (~8 on 2 cores) waking the thread pool cost more than it saved at 32 x 32 x 16.
PARALLEL_MIN_NODES = 2**20


@dataclass(frozen=True, eq=False)
class Wires:
    """The wire conductances of an eligible network, S (no zero, and open ends as 0 S).

    ``gw (N, M)``, transposed: ``gw[j, i]`` between WL ``i``'s nodes ``j-1`` and ``j`` (``j = 0`` unused); ``gw_lo, gw_hi (M,)``
    the near and far WL ends; ``gb (M, N)``: between BL nodes ``i-1`` and ``i`` (row 0 unused);
    ``gb_lo, gb_hi (N,)`` the BL ends at rows 0 and M-1; ``vend (N,)`` the BL end sources, V.
    """

    gw: np.ndarray
    gw_lo: np.ndarray
    gw_hi: np.ndarray
    gb: np.ndarray
    gb_lo: np.ndarray
    gb_hi: np.ndarray
    vend: np.ndarray
    dw: np.ndarray  # (N, M): what the WL wires add to the diagonal, transposed
    db: np.ndarray  # (M, N): what the BL wires add to the diagonal

    @classmethod
    def of(cls, network) -> Wires:
        m, n = network.shape
        wl = network.wl_chains()
        gw = np.zeros((m, n))
        gw[:, 1:] = 1.0 / wl.r_seg
        g, g_lo, g_hi, db = network.bl_couplings()
        end = lambda r: np.where(np.isfinite(r), 1.0 / r, 0.0)  # noqa: E731
        gw_lo, gw_hi = end(wl.r_lo), end(wl.r_hi)
        dw = gw.copy()
        dw[:, :-1] += gw[:, 1:]
        dw[:, 0] += gw_lo
        dw[:, -1] += gw_hi
        c = np.ascontiguousarray
        return cls(c(gw.T), gw_lo, gw_hi, c(g), c(g_lo), c(g_hi), c(network.v_bl_end, dtype=np.float64), c(dw.T), c(db))


@jit(error_model="numpy")
def _transpose(a, out):
    """``out = a.T`` in 16 x 16 tiles (both in cache)."""
    m, n = a.shape
    for i0 in range(0, m, 16):
        for j0 in range(0, n, 16):
            for i in range(i0, min(i0 + 16, m)):
                for j in range(j0, min(j0 + 16, n)):
                    out[j, i] = a[i, j]


@jit(error_model="numpy")
def _factor_lines(d, dd, g, cp, ip):
    """Thomas factors of every line at once, the lines innermost: ``d, dd (K, L)`` the diagonal
    (stamp and wire parts) of L tridiagonal systems of K unknowns along axis 0, ``g`` the wire
    conductance coupling unknown k to k-1.  One step along the lines is one contiguous loop over
    the L lines, which vectorises (a loop along one line would wait on each division).  ``cp``
    is minus the super-diagonal over the pivot.  Word lines run in the transposed ``(N, M)``
    layout, bit lines in ``(M, N)``."""
    k_len, n_lines = d.shape
    for k in range(k_len):
        for i in range(n_lines):
            piv = d[k, i] + dd[k, i]
            if k > 0:
                piv -= g[k, i] * cp[k - 1, i]
            ip[k, i] = 1.0 / piv
        if k < k_len - 1:
            for i in range(n_lines):
                cp[k, i] = g[k + 1, i] * ip[k, i]
        else:
            for i in range(n_lines):
                cp[k, i] = 0.0


@jit(error_model="numpy")
def _solve_lines(r, g, cp, ip, z):
    """``z = L^-1 r`` for every line of :func:`_factor_lines`, the same layout."""
    k_len, n_lines = r.shape
    for i in range(n_lines):
        z[0, i] = r[0, i] * ip[0, i]
    for k in range(1, k_len):
        for i in range(n_lines):
            z[k, i] = (r[k, i] + g[k, i] * z[k - 1, i]) * ip[k, i]
    for k in range(k_len - 2, -1, -1):
        for i in range(n_lines):
            z[k, i] += cp[k, i] * z[k + 1, i]


@jit(error_model="numpy")
def _schur_apply(p, d, db, gb, gwT, wcp, wip, u, uT, wT, w, q):
    """``q = S p = B p - D W^-1 D p`` (``u, w (M, N)`` and ``uT, wT (N, M)`` work arrays)."""
    m, n = p.shape
    for i in range(m):
        for j in range(n):
            u[i, j] = d[i, j] * p[i, j]
    _transpose(u, uT)
    _solve_lines(uT, gwT, wcp, wip, wT)
    _transpose(wT, w)
    for i in range(m):
        for j in range(n):
            q[i, j] = (d[i, j] + db[i, j]) * p[i, j] - d[i, j] * w[i, j]
        if i > 0:
            for j in range(n):
                q[i, j] -= gb[i, j] * p[i - 1, j]
        if i < m - 1:
            for j in range(n):
                q[i, j] -= gb[i + 1, j] * p[i + 1, j]


@jit(error_model="numpy")
def _one(d, c, v_in, y, x, gw, gw_lo, gw_hi, gb, gb_lo, gb_hi, vend, dw, db, tol, eta, margin, max_it):
    """Solve one vector in place (``y`` warm start in, BL voltages out; ``x`` WL voltages).

    Returns ``(relative residual, CG iterations)``.
    """
    m, n = d.shape
    wcp, wip, dT, uT, wT = np.empty((n, m)), np.empty((n, m)), np.empty((n, m)), np.empty((n, m)), np.empty((n, m))
    bcp, bip = np.empty((m, n)), np.empty((m, n))
    _transpose(d, dT)
    _factor_lines(dT, dw, gw, wcp, wip)
    _factor_lines(d, db, gb, bcp, bip)
    fw, f = np.empty((m, n)), np.empty((m, n))
    u, w = np.empty((m, n)), np.empty((m, n))
    scale = 0.0
    for i in range(m):
        scale = max(scale, abs(v_in[i]))
        for j in range(n):
            fw[i, j] = -c[i, j]
        fw[i, 0] += v_in[i] * gw_lo[i]
        fw[i, n - 1] += v_in[i] * gw_hi[i]
    for j in range(n):
        scale = max(scale, abs(vend[j]))
    scale = max(scale, 1e-300)
    _transpose(fw, uT)
    _solve_lines(uT, gw, wcp, wip, wT)  # W^-1 f_w
    _transpose(wT, w)
    for i in range(m):
        for j in range(n):
            f[i, j] = c[i, j] + d[i, j] * w[i, j]
            fw[i, j] = w[i, j]  # keep W^-1 f_w for the WL voltages at the end
    for j in range(n):
        f[0, j] += vend[j] * gb_lo[j]
        f[m - 1, j] += vend[j] * gb_hi[j]
    r, z, p, q = np.empty((m, n)), np.empty((m, n)), np.empty((m, n)), np.empty((m, n))
    _schur_apply(y, d, db, gb, gw, wcp, wip, u, uT, wT, w, q)
    t = w.copy()  # W^-1 D y, carried along with y (x = W^-1 D y + W^-1 f_w at the end)
    for i in range(m):
        for j in range(n):
            r[i, j] = f[i, j] - q[i, j]
    _solve_lines(r, gb, bcp, bip, z)
    rz = 0.0
    for i in range(m):
        for j in range(n):
            p[i, j] = z[i, j]
            rz += r[i, j] * z[i, j]
    z0 = 0.0
    for i in range(m):
        for j in range(n):
            z0 = max(z0, abs(z[i, j]))
    stop = max(tol * margin * scale, eta * z0)
    it = 0
    while it < max_it:
        zmax = 0.0
        for i in range(m):
            for j in range(n):
                zmax = max(zmax, abs(z[i, j]))
        if not zmax > stop or not rz > 0.0:
            break
        it += 1
        _schur_apply(p, d, db, gb, gw, wcp, wip, u, uT, wT, w, q)
        pq = 0.0
        for i in range(m):
            for j in range(n):
                pq += p[i, j] * q[i, j]
        if not pq > 0.0:
            break
        alpha = rz / pq
        for i in range(m):
            for j in range(n):
                y[i, j] += alpha * p[i, j]
                t[i, j] += alpha * w[i, j]  # w = W^-1 D p from this iteration's product
                r[i, j] -= alpha * q[i, j]
        _solve_lines(r, gb, bcp, bip, z)
        rz_new = 0.0
        for i in range(m):
            for j in range(n):
                rz_new += r[i, j] * z[i, j]
        beta = rz_new / rz
        rz = rz_new
        for i in range(m):
            for j in range(n):
                p[i, j] = z[i, j] + beta * p[i, j]
    # The CG-tracked residual (it departs from the recomputed one by rounding only; the Newton
    # caller checks KCL on the full network independently before it accepts an answer).
    worst = 0.0
    for i in range(m):
        for j in range(n):
            e = abs(z[i, j])
            if not e <= worst:
                worst = e if e == e else np.inf
    # WL voltages: x = W^-1 (D y + f_w), from the carried W^-1 D y (no third WL solve)
    for i in range(m):
        for j in range(n):
            x[i, j] = t[i, j] + fw[i, j]
    return worst / scale, z0 / scale, it



@jit_parallel(error_model="numpy")
def _batch(d, c, v_in, y, x, gw, gw_lo, gw_hi, gb, gb_lo, gb_hi, vend, dw, db, tol, eta, margin, max_it, res, res0, iters):
    """:func:`_one` for every vector of the batch, over the threads."""
    for b in prange(d.shape[0]):
        res[b], res0[b], iters[b] = _one(d[b], c[b], v_in[b], y[b], x[b], gw, gw_lo, gw_hi, gb, gb_lo, gb_hi,
                                         vend, dw, db, tol, eta[b], margin, max_it)


@jit(error_model="numpy")
def _batch_serial(d, c, v_in, y, x, gw, gw_lo, gw_hi, gb, gb_lo, gb_hi, vend, dw, db, tol, eta, margin, max_it, res, res0, iters):
    """:func:`_batch` on one thread (a batch of one, or a caller that runs its own threads)."""
    for b in range(d.shape[0]):
        res[b], res0[b], iters[b] = _one(d[b], c[b], v_in[b], y[b], x[b], gw, gw_lo, gw_hi, gb, gb_lo, gb_hi,
                                         vend, dw, db, tol, eta[b], margin, max_it)


def solve_stamps(wires: Wires, d, c, v_in, y0, tol: float, eta=0.0, *, max_iterations: int = MAX_CG,
                 parallel: bool = True):
    """Node voltages of every vector for its own symmetric stamp.

    Parameters
    ----------
    wires : Wires
        The network's wires (:meth:`Wires.of`).
    d : ndarray, (B, M, N), S
        Each vector's cell stamp ``dI/dV >= 0``.
    c : ndarray, (B, M, N), A
        Each vector's stamp offset: ``I_cell = d (v_wl - v_bl) + c``.
    v_in : ndarray, (B, M), V
        Word-line sources.
    y0 : ndarray, (B, M, N), V
        Start for the bit-line voltages (the previous Newton iterate); not modified.
    tol : float
        Relative residual to reach (see the module docstring).
    eta : float or ndarray (B,)
        Forcing term of an inexact Newton step: CG may also stop once the residual has fallen
        by this factor from the start's (0: solve to ``tol``).

    Returns
    -------
    v_wl, v_bl : ndarray, (B, M, N), V
    residual : ndarray, (B,)
        Recomputed relative residual of each vector.
    start_residual : ndarray, (B,)
        Relative residual of the start ``y0``.
    iterations : ndarray of int, (B,)
    """
    nb = d.shape[0]
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    y = np.array(y0, dtype=np.float64, order="C")
    x = np.empty_like(y)
    eta_b = np.ascontiguousarray(np.broadcast_to(np.asarray(eta, dtype=np.float64), (nb,)))
    res, res0, iters = np.empty(nb), np.empty(nb), np.empty(nb, np.int64)
    kernel = _batch if parallel and d.size >= PARALLEL_MIN_NODES else _batch_serial
    kernel(f64(d), f64(c), f64(v_in), y, x, wires.gw, wires.gw_lo, wires.gw_hi, wires.gb, wires.gb_lo,
           wires.gb_hi, wires.vend, wires.dw, wires.db, float(tol), eta_b, MARGIN, int(max_iterations), res,
           res0, iters)
    return x, y, res, res0, iters


@jit_parallel(error_model="numpy")
def _measures(i, g, vw, vb, vw_n, vb_n, i_n, g_n, out):
    """:func:`_measures_one` of every vector, over the threads."""
    for b in prange(i.shape[0]):
        _measures_one(b, i, g, vw, vb, vw_n, vb_n, i_n, g_n, out)


@jit(error_model="numpy")
def _measures_serial(i, g, vw, vb, vw_n, vb_n, i_n, g_n, out):
    """:func:`_measures_one` of every vector on one thread."""
    for b in range(i.shape[0]):
        _measures_one(b, i, g, vw, vb, vw_n, vb_n, i_n, g_n, out)


@jit(error_model="numpy")
def _measures_one(b, i, g, vw, vb, vw_n, vb_n, i_n, g_n, out):
    """Vector ``b``: ``|i_n - i_lin|``, ``|dv|``, ``|v|`` and ``|i_n|`` maxima, and 1.0 when
    every value is finite and ``g_n >= 0`` (a NaN linearisation error counts as infinite)."""
    _, m, n = i.shape
    res = dv = sv = im = 0.0
    ok = 1.0
    for r in range(m):
        for j in range(n):
            dw = vw_n[b, r, j] - vw[b, r, j]
            db = vb_n[b, r, j] - vb[b, r, j]
            e = abs(i_n[b, r, j] - (i[b, r, j] + g[b, r, j] * (dw - db)))
            if not e <= res:
                res = e if e == e else np.inf
            dv = max(dv, abs(dw), abs(db))
            sv = max(sv, abs(vw_n[b, r, j]), abs(vb_n[b, r, j]))
            im = max(im, abs(i_n[b, r, j]))
            if not (g_n[b, r, j] >= 0.0 and abs(i_n[b, r, j]) < np.inf and abs(dw) < np.inf and abs(db) < np.inf):
                ok = 0.0
    out[b, 0], out[b, 1], out[b, 2], out[b, 3], out[b, 4] = res, dv, sv, im, ok


def newton_measures(i, g, vw, vb, vw_n, vb_n, i_n, g_n) -> np.ndarray:
    """``(B, 5)``: the largest linearisation error (A), update (V), node voltage (V) and cell
    current (A) of each vector's Newton step, and whether it is usable (1.0) -- one pass over
    the ``(B, M, N)`` arrays (a stamp ``I = i + g (dv_wl - dv_bl)`` with ``a == b == g``)."""
    out = np.empty((i.shape[0], 5))
    kernel = _measures if i.size >= PARALLEL_MIN_NODES else _measures_serial
    kernel(i, g, vw, vb, vw_n, vb_n, i_n, g_n, out)
    return out


@jit_parallel(error_model="numpy")
def _kcl(v_in, vw, vb, i_cell, g, gw, gw_lo, gw_hi, gb, gb_lo, gb_hi, vend, atol, rtol, vntol, rtol_solve, out):
    """:func:`_kcl_one` of every vector, over the threads."""
    for b in prange(vw.shape[0]):
        out[b] = _kcl_one(b, v_in, vw, vb, i_cell, g, gw, gw_lo, gw_hi, gb, gb_lo, gb_hi, vend, atol, rtol, vntol,
                          rtol_solve)


@jit(error_model="numpy")
def _kcl_serial(v_in, vw, vb, i_cell, g, gw, gw_lo, gw_hi, gb, gb_lo, gb_hi, vend, atol, rtol, vntol, rtol_solve,
                out):
    """:func:`_kcl_one` of every vector on one thread."""
    for b in range(vw.shape[0]):
        out[b] = _kcl_one(b, v_in, vw, vb, i_cell, g, gw, gw_lo, gw_hi, gb, gb_lo, gb_hi, vend, atol, rtol, vntol,
                          rtol_solve)


@jit(error_model="numpy")
def _kcl_one(b, v_in, vw, vb, i_cell, g, gw, gw_lo, gw_hi, gb, gb_lo, gb_hi, vend, atol, rtol, vntol, rtol_solve):
    """Largest KCL imbalance less its allowance over every node of vector ``b`` (see
    :func:`kcl_excess`); ``gw`` is the transposed ``(N, M)`` array of :class:`Wires`."""
    _, m, n = vw.shape
    imax = 0.0
    vs = 0.0
    for r in range(m):
        vs = max(vs, abs(v_in[b, r]))
        for j in range(n):
            imax = max(imax, abs(i_cell[b, r, j]))
            vs = max(vs, abs(vw[b, r, j]), abs(vb[b, r, j]))
    base = atol + rtol * imax
    tol_v = vntol + rtol_solve * vs
    worst = -np.inf
    for r in range(m):
        for j in range(n):
            cell = 2.0 * abs(g[b, r, j])
            # word-line node (r, j)
            x = vw[b, r]
            tot = i_cell[b, r, j]
            row = cell
            gl = gw[j, r] if j > 0 else gw_lo[r]
            xl = x[j - 1] if j > 0 else v_in[b, r]
            tot += gl * (x[j] - xl)
            row += gl
            gr = gw[j + 1, r] if j < n - 1 else gw_hi[r]
            xr = x[j + 1] if j < n - 1 else v_in[b, r]
            tot += gr * (x[j] - xr)
            row += gr
            e = abs(tot) - base - tol_v * row
            if not e <= worst:
                worst = e if e == e else np.inf
            # bit-line node (r, j)
            y = vb[b]
            tot = -i_cell[b, r, j]
            row = cell
            gu = gb[r, j] if r > 0 else gb_lo[j]
            yu = y[r - 1, j] if r > 0 else vend[j]
            tot += gu * (y[r, j] - yu)
            row += gu
            gd = gb[r + 1, j] if r < m - 1 else gb_hi[j]
            yd = y[r + 1, j] if r < m - 1 else vend[j]
            tot += gd * (y[r, j] - yd)
            row += gd
            e = abs(tot) - base - tol_v * row
            if not e <= worst:
                worst = e if e == e else np.inf
    return worst


def kcl_excess(wires: Wires, v_in, v_wl, v_bl, i_cell, g, *, atol, rtol, vntol, rtol_solve) -> np.ndarray:
    """:func:`cimphys.circuits.newton.network_kcl_excess` of every vector at once, ``(B,)`` A,
    for a network of :class:`Wires` (no merged or fixed node) and a symmetric stamp ``g``."""
    out = np.empty(v_wl.shape[0])
    kernel = _kcl if v_wl.size >= PARALLEL_MIN_NODES else _kcl_serial
    kernel(v_in, v_wl, v_bl, i_cell, g, wires.gw, wires.gw_lo, wires.gw_hi, wires.gb, wires.gb_lo, wires.gb_hi,
         wires.vend, float(atol), float(rtol), float(vntol), float(rtol_solve), out)
    return out
