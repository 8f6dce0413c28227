"""The iterative path: block Gauss-Seidel over the lines, accelerated by BiCGSTAB (Numba sweeps).

The fixed point of the block Gauss-Seidel map ``y -> F(y) = H y + h`` of
:class:`~cimphys.circuits.lines.LineSolver` (exact WL sweeps, then exact BL sweeps) is the
network's solution for the BL voltages ``y``; BiCGSTAB [1]_ solves ``(I - H) y = h`` for every
batch member, any stamp (``a != b`` included).  Memory is linear in the cells.  The relative
residual is the BL-voltage change of one more sweep over the voltage scale
(:func:`~cimphys.circuits.lines.fixed_point_residual`).

References
----------
.. [1] H. A. van der Vorst, "Bi-CGSTAB: a fast and smoothly converging variant of Bi-CG for the
   solution of nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 13, 631 (1992),
   doi:10.1137/0913035.
"""

from __future__ import annotations

import numpy as np

from .lines import LineSolver

__all__ = ["MAX_ITERATIONS", "solve_iterative"]


#: BiCGSTAB stops when its residual is this fraction of ``tol`` (margin for the final check).
_KRYLOV_MARGIN = 0.1
#: Iteration cap of the Krylov loop before falling back to the direct path.
MAX_ITERATIONS = 1000


def _dot(u, v):
    return np.einsum("bij,bij->b", u, v)


def _bicgstab(op: LineSolver, h: np.ndarray, scale: np.ndarray, tol: float):
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


def solve_iterative(network, a, b, c3, v2, tol):
    """Line-relaxation Krylov solve: ``(v_wl, v_bl, iterations, residual)``, or ``None`` when it
    cannot meet ``tol`` (the caller falls back).  Arguments as
    :func:`~cimphys.circuits.network.check_stamp` returns them."""
    op = LineSolver(network, a, b, c3, v2)
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
