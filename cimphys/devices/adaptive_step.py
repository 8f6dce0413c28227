"""Adaptive-step integration kernels: embedded Runge-Kutta pairs with error control, per cell.

The kernels behind :func:`cimphys.devices.dynamics.integrate` for ``method="rk45"`` (Dormand-
Prince 5(4) [1]_) and ``"rk23"`` (Bogacki-Shampine 3(2) [2]_), with the step-size control of
[3]_: each cell independently, the step never crossing a knot of the waveform, a report time or
a threshold crossing of the cell voltage, the state kept in its bounds (see the method section of
:mod:`cimphys.devices.dynamics`).  The laws come from :mod:`cimphys.devices.laws.dispatch`.

References
----------
.. [1] J. R. Dormand, P. J. Prince, "A family of embedded Runge-Kutta formulae",
   J. Comput. Appl. Math. 6, 19 (1980). doi:10.1016/0771-050X(80)90013-3
.. [2] P. Bogacki, L. F. Shampine, "A 3(2) pair of Runge-Kutta formulas", Appl. Math. Lett. 2,
   321 (1989). doi:10.1016/0893-9659(89)90079-7
.. [3] E. Hairer, S. P. Norsett, G. Wanner, "Solving Ordinary Differential Equations I", 2nd ed.,
   Springer (1993), sec. II.4 (automatic step size control).
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit, jit_parallel, prange
from .laws.dispatch import model_iv, model_quiet, model_rate, model_thresholds

__all__ = ["METHODS", "STATUS", "chord_table", "integrate_cells", "integrate_cells_parallel"]

# The digest of the laws this file's kernels inline (cimphys.devices.laws.sources_digest: Numba
# renews its cache of a file only when that file changes).
KERNEL_SOURCES = "d697dae7ffb16a26"

#: What a non-zero status of :func:`integrate_cells` means.
STATUS = {1: "step size fell below its minimum", 2: "too many steps", 3: "rate is not finite"}


def _tableau(a, b, b_low, c):
    s = len(b)
    tab = np.zeros((s + 3, s))
    for i, row in enumerate(a):
        tab[i, : len(row)] = row
    tab[s] = b
    tab[s + 1] = np.asarray(b) - np.asarray(b_low)
    tab[s + 2] = c
    return tab


# Dormand-Prince 5(4): the 5th-order solution is propagated; FSAL (last stage = next first).
_DP45 = _tableau(
    [[], [1 / 5], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9],
     [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
     [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
     [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0],
    [5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40],
    [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1],
)
# Bogacki-Shampine 3(2), FSAL.
_BS23 = _tableau(
    [[], [1 / 2], [0, 3 / 4], [2 / 9, 1 / 3, 4 / 9]],
    [2 / 9, 1 / 3, 4 / 9, 0],
    [7 / 24, 1 / 4, 1 / 3, 1 / 8],
    [0, 1 / 2, 3 / 4, 1],
)
METHODS = {"rk45": (_DP45, 4), "rk23": (_BS23, 2)}  # tableau, order of the error estimator


@jit(inline="always")
def _volt(wave, ta, va, sl, t):
    """Applied voltage at time t on the grid interval from ta (voltage va, slope sl V/s)."""
    if wave[0] == 0.0:
        return va + sl * (t - ta)
    return wave[4] + wave[1] * math.sin(wave[2] * t + wave[3])


@jit(inline="always")
def _crossing(wave, ta, va, sl, scale, th, t0, t1):
    """Time in (t0, t1) where scale*v(t) crosses th, or -1.0 if the ends do not bracket it."""
    f0 = scale * _volt(wave, ta, va, sl, t0) - th
    f1 = scale * _volt(wave, ta, va, sl, t1) - th
    if f0 == 0.0 or f1 == 0.0 or (f0 > 0.0) == (f1 > 0.0):
        return -1.0
    if wave[0] == 0.0:
        return t0 + (t1 - t0) * f0 / (f0 - f1)
    lo, hi = t0, t1
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        fm = scale * _volt(wave, ta, va, sl, mid) - th
        if (fm > 0.0) == (f0 > 0.0):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * abs(hi) + 1e-300:
            break
    return 0.5 * (lo + hi)


@jit(inline="always")
def _prate(mid, v, x, P, k, lo, hi):
    """Rate projected onto the bounds: a state at a bound is not pushed beyond it."""
    xc = min(max(x, lo), hi)
    r = model_rate(mid, v, xc, P, k)
    if (xc >= hi and r > 0.0) or (xc <= lo and r < 0.0):
        return 0.0
    return r


@jit
def _arrival_time(mid, P, k, wave, ta, va, sl, scale, t, hs, x, r0, lo, hi):
    """Time for the state, moving with the sign of r0, to reach its bound; inf if it may not.

    ``T = integral dx / r(x)`` by composite Gauss-Legendre quadrature (8 panels of 4 points)
    at the voltages of both ends of the step, taking the slower.  The rate must keep its sign on
    the way and still push outwards at the bound (so that the bound then holds the state); a
    bound where the rate vanishes (a closing window) is never reached in finite time.
    """
    inf = math.inf
    if r0 == 0.0:
        return inf
    bound = hi if r0 > 0.0 else lo
    dist = bound - x
    nodes = (0.0694318442029737, 0.3300094782075719, 0.6699905217924281, 0.9305681557970263)
    weights = (0.1739274225687269, 0.3260725774312731, 0.3260725774312731, 0.1739274225687269)
    slowest = 0.0
    for e in range(2):
        v = scale * _volt(wave, ta, va, sl, t + e * hs)
        rb = model_rate(mid, v, bound, P, k)
        if rb == 0.0 or (rb > 0.0) != (r0 > 0.0):
            return inf
        total = 0.0
        for panel in range(8):
            for q in range(4):
                r = model_rate(mid, v, x + (panel + nodes[q]) * dist / 8.0, P, k)
                if r == 0.0 or (r > 0.0) != (r0 > 0.0):
                    return inf
                total += weights[q] / r
        slowest = max(slowest, total * dist / 8.0)
    return slowest


@jit(inline="always")
def _piece(mid, P, k, wave, ta, va, sl, scale, t0, t1, x, h, tab, opts, stage):
    """Integrate one smooth piece [t0, t1]; return (x, h, steps, status)."""
    lo = P[0, k]
    hi = P[1, k]
    rtol = opts[0]
    atol = opts[1] * (hi - lo)
    h_min = opts[2]
    expo = opts[3]
    s = tab.shape[1]
    steps = 0
    t = t0
    vm = scale * _volt(wave, ta, va, sl, 0.5 * (t0 + t1))
    if wave[0] == 0.0 and model_quiet(mid, scale * _volt(wave, ta, va, sl, t0), P, k) \
            and model_quiet(mid, vm, P, k) and model_quiet(mid, scale * _volt(wave, ta, va, sl, t1), P, k):
        return x, h, 0, 0  # linear voltage, quiet at both ends and the middle: no motion
    have_first = False
    while t < t1:
        span = t1 - t
        last = h >= span * (1.0 - 1e-12)
        hs = span if last else h
        if not have_first:
            stage[0] = _prate(mid, scale * _volt(wave, ta, va, sl, t), x, P, k, lo, hi)
        for i in range(1, s):
            xs = x
            for j in range(i):
                xs += hs * tab[i, j] * stage[j]
            ti = t + tab[s + 2, i] * hs
            stage[i] = _prate(mid, scale * _volt(wave, ta, va, sl, ti), xs, P, k, lo, hi)
        xn = x
        err = 0.0
        for j in range(s):
            xn += hs * tab[s, j] * stage[j]
            err += hs * tab[s + 1, j] * stage[j]
        steps += 1
        if not (math.isfinite(xn) and math.isfinite(err)):
            return x, h, steps, 3
        sc = atol + rtol * max(abs(x), abs(xn))
        en = abs(err) / sc
        outside = xn > hi + atol or xn < lo - atol
        arrival = math.inf
        if outside or en > 1.0:
            arrival = _arrival_time(mid, P, k, wave, ta, va, sl, scale, t, hs, x, stage[0], lo, hi)
        if 2.0 * arrival <= max(hs, 1e5 * h_min):
            # event: the state reaches its bound within [t, t + 2T] and is held there; jump to
            # the end of that window (or of the step) with the state at the bound
            jump = max(hs, 2.0 * arrival)
            t = t1 if jump >= span * (1.0 - 1e-12) else t + jump
            x = hi if stage[0] > 0.0 else lo
            have_first = False
        elif outside:
            bound = hi if xn > hi else lo
            frac = (bound - x) / (xn - x)
            h = hs * min(0.9, max(0.05, frac))  # land just short of the bound
            have_first = True
        elif en <= 1.0:
            t = t1 if last else t + hs
            x = min(max(xn, lo), hi)
            grow = 5.0 if en == 0.0 else min(5.0, max(0.2, 0.9 * en ** (-expo)))
            h = max(hs * grow, h) if last else hs * grow
            stage[0] = stage[s - 1]  # FSAL: last stage is the next step's first
            have_first = opts[5] != 0.0 and x == xn
        else:
            h = hs * max(0.2, 0.9 * en ** (-expo))
            have_first = True
        if h < h_min and not (en <= 1.0 and xn <= hi + atol and xn >= lo - atol):
            return x, h, steps, 1  # a rejected step cannot shrink any further
        if steps > opts[4]:
            return x, h, steps, 2
    return x, h, steps, 0


@jit
def integrate_cells(mid, P, wave, tgrid, vgrid, rec, x0, vscale, tab, opts, xrec, status, nsteps, c0, c1):
    """Integrate cells c0 .. c1-1 over the grid; fill xrec[:, c], status[c], nsteps[c]."""
    nk = P.shape[1]
    ns = vscale.size
    s = tab.shape[1]
    stage = np.empty(s)
    for c in range(c0, c1):
        k = c % nk
        scale = vscale[c % ns]
        x = min(max(x0[c], P[0, k]), P[1, k])  # within 1e-9 of the range: onto the bound
        h = tgrid[-1] - tgrid[0]
        count = 0
        if rec[0] >= 0:
            xrec[rec[0], c] = x
        nth, th_a, th_b = model_thresholds(mid, P, k)
        for g in range(tgrid.size - 1):
            ta = tgrid[g]
            tb = tgrid[g + 1]
            va = vgrid[g]
            vb = vgrid[g + 1]
            sl = (vb - va) / (tb - ta)  # grid times strictly increase
            if wave[0] == 0.0 and model_quiet(mid, scale * va, P, k) and model_quiet(mid, scale * vb, P, k):
                # linear voltage, quiet at both ends: quiet throughout (each model's quiet set
                # is an interval of voltage), so the state is constant; no crossings, no stages
                if rec[g + 1] >= 0:
                    xrec[rec[g + 1], c] = x
                continue
            # split [ta, tb] where the cell voltage crosses a threshold
            c1 = -1.0
            c2 = -1.0
            if nth > 0:
                c1 = _crossing(wave, ta, va, sl, scale, th_a, ta, tb)
                c2 = _crossing(wave, ta, va, sl, scale, th_b, ta, tb)
                if c1 > c2:
                    c1, c2 = c2, c1
            b1 = c1 if ta < c1 < tb else tb
            b2 = c2 if ta < c2 < tb else tb
            if b1 > b2:
                b1, b2 = b2, b1
            t0 = ta
            for piece in range(3):
                t1 = b1 if piece == 0 else (b2 if piece == 1 else tb)
                if t1 <= t0:
                    continue
                x, h, used, st = _piece(mid, P, k, wave, ta, va, sl, scale, t0, t1, x, h, tab, opts, stage)
                count += used
                if st == 0 and count > opts[4]:
                    st = 2
                if st != 0:
                    status[c] = st
                    break
                t0 = t1
            if status[c] != 0:
                break
            if rec[g + 1] >= 0:
                xrec[rec[g + 1], c] = x
        nsteps[c] = count


@jit_parallel
def integrate_cells_parallel(mid, P, wave, tgrid, vgrid, rec, x0, vscale, tab, opts, xrec, status, nsteps, c0, c1):
    """As :func:`integrate_cells`, the cells split in blocks over Numba's threads."""
    blocks = 64
    n = c1 - c0
    for b in prange(blocks):
        integrate_cells(mid, P, wave, tgrid, vgrid, rec, x0, vscale, tab, opts, xrec, status, nsteps,
                   c0 + b * n // blocks, c0 + (b + 1) * n // blocks)


@jit
def chord_table(mid, v, x, P, vscale, i, g):
    """Current and chord conductance I/V (dI/dV at V = 0) at recorded times x[time, cell]."""
    nt, nc = x.shape
    nk = P.shape[1]
    ns = vscale.size
    for c in range(nc):
        for t in range(nt):
            vc = v[t] * vscale[c % ns]
            cur, dg = model_iv(mid, vc, x[t, c], P, c % nk)
            i[t, c] = cur
            g[t, c] = dg if vc == 0.0 else cur / vc
