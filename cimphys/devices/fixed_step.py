"""Fixed-step explicit integration of the state of many cells on one time grid.

:func:`cimphys.devices.dynamics.integrate` with ``method="euler"``, ``"heun"`` or ``"rk4"``
comes here.  Every cell advances on the same grid, as a circuit simulator does with a fixed
maximum step: the waveform's own sample times, each interval cut into ``substeps`` equal steps.
Step ``n`` from ``t_n`` to ``t_n + h`` is the explicit Runge-Kutta method of the tableau
(forward Euler; Heun's trapezoidal predictor-corrector, order 2; the classical 4th-order
method [1]_), with the applied voltage evaluated exactly at each stage time (knots of a
piecewise-linear waveform are not steps: a knot inside a step lowers the local order there).

Bounds: the state of each stage is clipped into ``state_bounds`` before its rate is taken, and
the state after each step is clipped again (branch-free ``min``/``max``), as the adaptive path
keeps the state in its bounds.  A rate that is not finite stops the run with the cell and time.

Layout (for speed): the cells are cut in blocks of ``BLOCK`` cells; each block runs through all
time steps before the next starts (its state and stage rates stay in the L1/L2 caches), the
cells of the block innermost in plain loops that LLVM vectorises.  With ``parallel=True`` the
blocks are spread over Numba's threads (each block is independent: results do not depend on
it).  For VTEAM and Yakopcic cells that share thresholds, exponents and window shape (rate
constants may vary per cell) and one voltage scale, the voltage factor of the rate law is
computed once per stage for all cells (``laws.dispatch.split_drive``), integer window exponents
by repeated multiplication (``laws.kernel_math.int_power``), and steps where no cell can move are
skipped.  Other models, or per-cell voltage scales, call the full rate law ``laws.dispatch.model_rate``
per cell (a call that does not vectorise); the cost per cell and step of each: ``benchmarks/bench_devices.py``.

Examples
--------
>>> import numpy as np
>>> from cimphys.cards import load_device
>>> from cimphys.devices import VTEAM, integrate, pulse_train
>>> model = VTEAM.from_card(load_device("kvatinsky2015_vteam_pickett"))
>>> wave = pulse_train(0.5, 1e-9, 3, rise=1e-10, fall=1e-10)
>>> wave = wave.with_times(np.linspace(0.0, wave.t[-1], 601))
>>> ds = integrate(model, wave, np.full(4, 1e-9), method="rk4", record="final")
>>> ds.attrs["method"], ds.attrs["steps"], bool(np.all(ds.state.values > 1e-9))
('rk4', 600, True)

References
----------
.. [1] E. Hairer, S. P. Norsett, G. Wanner, "Solving Ordinary Differential Equations I", 2nd
   ed., Springer (1993), sec. II.1 (explicit Runge-Kutta methods, Euler, Heun, RK4).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, jit_parallel, prange
from .laws.dispatch import model_rate, split_drive, split_rate, split_shape

__all__ = ["BLOCK", "FIXED_METHODS", "ORDER", "run_fixed", "stage_drive", "step_grid"]

# The digest of the laws this file's kernels inline (cimphys.devices.laws.sources_digest: Numba
# renews its cache of a file only when that file changes).
KERNEL_SOURCES = "d697dae7ffb16a26"

# Cells per block: large enough that the per-block cost of each stage (a call, array views)
# is small against the cells, small enough that a block's state, rates and rate constants
# (32 KiB each) stay in the L2 cache through all the steps.  Measured on the pulse-train
# benchmark (CPU time per cell-step): 256 cells 0.64 ns, 1024 0.53 ns, 4096 0.50 ns; with
# FMA contraction (below), one thread, best of 15, load 0.6: 1024 cells 11.5-12.1 ms,
# 2048 11.0-11.2 ms, 4096 10.5-10.9 ms for the 65,536-cell, 1000-step benchmark.
BLOCK = 4096


# Each method as rows (a, b, c) per stage: the stage state is x + a h k_prev (the stage before),
# its rate k enters the step with weight b, at time t + c h.  Euler, Heun and the classical
# RK4 all have this form (each stage uses only the one before it).
FIXED_METHODS = {
    "euler": np.array([[0.0, 1.0, 0.0]]),
    "heun": np.array([[0.0, 0.5, 0.0], [1.0, 0.5, 1.0]]),
    "rk4": np.array([[0.0, 1 / 6, 0.0], [0.5, 1 / 3, 0.5], [0.5, 1 / 3, 0.5], [1.0, 1 / 6, 1.0]]),
}
ORDER = {"euler": 1, "heun": 2, "rk4": 4}  # global order of accuracy (smooth rate law)


@jit
def _split_drives(mid, P, v, out):
    """(side, factor) of every stage voltage v[g, s] into out[g, s, 1:3] (column 0 parameters)."""
    for g in range(v.shape[0]):
        for s in range(v.shape[1]):
            side, fac = split_drive(mid, v[g, s], P)
            out[g, s, 0] = v[g, s]
            out[g, s, 1] = side
            out[g, s, 2] = fac


def stage_drive(mid: int, P: np.ndarray, v: np.ndarray, split: bool) -> np.ndarray:
    """``(steps, stages, 3)``: voltage, side and voltage factor of each stage (see laws.dispatch)."""
    out = np.zeros(v.shape + (3,))
    if split:
        _split_drives(int(mid), P, np.ascontiguousarray(v), out)
    else:
        out[:, :, 0] = v
    return out


@jit(fastmath={"reassoc", "contract"}, error_model="numpy")
def _split_stage(mid, kind, n2p, side, fac, q, kb, x, kprev, kout, acc, ha, first, last, m):
    """One stage for m cells sharing the step's voltage factor (see :func:`_full_stage`).

    The rate law is linear in the factor, so ``fac`` here is the voltage factor times ``h b``
    and the rate evaluated is already the stage's increment (one product per cell less).
    Rates that are not finite are found by the sum of ``r - r`` (0, or NaN once one is not
    finite), which LLVM vectorises only if allowed to reassociate the sum: hence the
    ``reassoc`` fast-math flag here (never ``nnan``/``ninf``, see cimphys._numba); measured
    11 % less time per cell-step than counting the cells in the loop.  ``contract`` lets LLVM
    fuse the window's products and sums into FMA instructions (one rounding instead of two:
    the result stays within 1e-14 of the NumPy loop); measured 13.3 -> 11.5 ms on one thread
    for the benchmark's pulse train (1024-cell blocks, interleaved, load 0.6)."""
    lo = q[0]
    hi = q[1]
    chk = 0.0
    for j in range(m):
        xj = x[j]
        xs = xj if first else min(max(xj + ha * kprev[j], lo), hi)
        r = split_rate(mid, kind, n2p, side, fac, xs, q, kb[j])  # h b k: fac carries h b
        d = r if first else acc[j] + r
        kout[j] = r
        if last:
            x[j] = min(max(xj + d, lo), hi)
        else:
            acc[j] = d
        chk += r - r  # 0, or NaN once any rate is not finite
    return 0 if chk == 0.0 else 1


@jit(inline="always")
def _split_stages(mid, side, fac, q, kb, x, kprev, kout, acc, ha, first, last, m):
    """:func:`_split_stage` with the model and window kind as constants of each compiled copy.

    A quiet stage (side 0) is a zero rate: the factor 0 with no window."""
    kind = q[2]
    if side == 0.0:
        return _split_stage(2, 0, -1, 1.0, 0.0, q, kb[1], x, kprev, kout, acc, ha, first, last, m)
    kr = kb[1] if side > 0.0 else kb[0]
    if mid == 3:
        return _split_stage(3, 0, -1, side, fac, q, kr, x, kprev, kout, acc, ha, first, last, m)
    if kind == 0:
        return _split_stage(2, 0, -1, side, fac, q, kr, x, kprev, kout, acc, ha, first, last, m)
    if kind == 1:
        return _split_stage(2, 1, -1, side, fac, q, kr, x, kprev, kout, acc, ha, first, last, m)
    if q[3] == 20.0:  # p = 10: the default and the published Pickett fit; the power folds
        return _split_stage(2, 2, 20, side, fac, q, kr, x, kprev, kout, acc, ha, first, last, m)
    return _split_stage(2, 2, -1, side, fac, q, kr, x, kprev, kout, acc, ha, first, last, m)


@jit(error_model="numpy")
def _full_stage(mid, v, P, vscale, c0, x, kprev, kout, acc, ha, hw, first, last, m):
    """One stage for cells c0 .. c0+m-1 by the full rate law; return the count not finite.

    The stage state is ``x + ha kprev`` (clipped; ``x`` at the first stage), its increment
    ``h b k`` (``hw = h b``, ``k`` the rate) goes to ``kout`` and adds up in ``acc``; the last
    stage replaces ``x`` by the clipped new state ``x + acc``.  Stored increments make the next
    stage's ``ha = a / b_prev`` (the tableau's b are all nonzero).  The stage flags are the same for every cell,
    so their branches do not stop the loop from vectorising where the rate law allows.
    """
    nk = P.shape[1]
    ns = vscale.size
    bad = 0
    for j in range(m):
        c = c0 + j
        # no integer modulo in the common cases (one set / one scale, or one per cell): it
        # costs more than the rate law
        k = 0 if nk == 1 else (c if c < nk else c % nk)
        lo = P[0, k]
        hi = P[1, k]
        xj = x[j]
        xs = xj if first else min(max(xj + ha * kprev[j], lo), hi)
        r = hw * model_rate(mid, v * vscale[0 if ns == 1 else (c if c < ns else c % ns)], xs, P, k)
        d = r if first else acc[j] + r
        kout[j] = r
        if last:
            x[j] = min(max(xj + d, lo), hi)
        else:
            acc[j] = d
        bad += 0 if r - r == 0.0 else 1
    return bad


@jit(inline="always")
def _first_not_finite(r, m):
    for j in range(m):
        if not (r[j] - r[j] == 0.0):
            return j
    return 0


@jit(inline="always")
def _blocks(split, mid, P, tab, tgrid, drive, vscale, rec, x0, xrec, fail, b0, b1):
    """Integrate blocks b0 .. b1-1 of BLOCK cells over the grid; fill xrec[:, cells].

    ``fail[b] = (cell, step)`` of the first rate found not finite in block b, else (-1, -1).
    """
    n = x0.size
    nk = P.shape[1]
    s = tab.shape[0]
    q = split_shape(mid, P)
    xb = np.empty(BLOCK)
    acc = np.zeros(BLOCK)
    K = np.zeros((s, BLOCK))
    zero = np.zeros(BLOCK)
    kb = np.empty((2, BLOCK))
    rows = (0, 1)  # rate constant rows of side -1, +1 (laws.dispatch.SPLIT_RATE_ROWS)
    if mid == 2:
        rows = (4, 5)
    elif mid == 3:
        rows = (8, 7)
    for b in range(b0, b1):
        c0 = b * BLOCK
        m = min(BLOCK, n - c0)
        for j in range(m):
            k = (c0 + j) % nk
            xb[j] = min(max(x0[c0 + j], P[0, k]), P[1, k])
            kb[0, j] = P[rows[0], k]
            kb[1, j] = P[rows[1], k]
        if rec[0] >= 0:
            for j in range(m):
                xrec[rec[0], c0 + j] = xb[j]
        for g in range(tgrid.size - 1):
            h = tgrid[g + 1] - tgrid[g]
            moving = not split
            for st in range(s):
                moving = moving or drive[g, st, 1] != 0.0
            for st in range(s if moving else 0):
                kprev = K[st - 1] if st > 0 else zero  # not read at the first stage
                ha = tab[st, 0] / tab[st - 1, 1] if st > 0 else 0.0  # kprev holds h b_prev k_prev
                hw = h * tab[st, 1]
                first = st == 0
                last = st == s - 1
                if split:
                    bad = _split_stages(mid, drive[g, st, 1], hw * drive[g, st, 2], q, kb, xb, kprev, K[st],
                                        acc, ha, first, last, m)
                else:
                    bad = _full_stage(mid, drive[g, st, 0], P, vscale, c0, xb, kprev, K[st], acc, ha, hw,
                                      first, last, m)
                if bad:
                    fail[b, 0] = c0 + _first_not_finite(K[st], m)
                    fail[b, 1] = g
                    break
            if fail[b, 0] >= 0:
                break
            r = rec[g + 1]
            if r >= 0:
                for j in range(m):
                    xrec[r, c0 + j] = xb[j]


@jit
def _fixed_split(mid, P, tab, tgrid, drive, vscale, rec, x0, xrec, fail, b0, b1):
    """Blocks b0 .. b1-1, cells sharing the voltage factor (``laws.dispatch.split_eligible``)."""
    _blocks(True, mid, P, tab, tgrid, drive, vscale, rec, x0, xrec, fail, b0, b1)


@jit
def _fixed_full(mid, P, tab, tgrid, drive, vscale, rec, x0, xrec, fail, b0, b1):
    """Blocks b0 .. b1-1 by the full rate law of every cell (any dynamic model)."""
    _blocks(False, mid, P, tab, tgrid, drive, vscale, rec, x0, xrec, fail, b0, b1)


@jit_parallel
def _fixed_split_parallel(mid, P, tab, tgrid, drive, vscale, rec, x0, xrec, fail, b0, b1):
    """As :func:`_fixed_split`, the blocks spread over Numba's threads."""
    for b in prange(b0, b1):
        _fixed_split(mid, P, tab, tgrid, drive, vscale, rec, x0, xrec, fail, b, b + 1)


@jit_parallel
def _fixed_full_parallel(mid, P, tab, tgrid, drive, vscale, rec, x0, xrec, fail, b0, b1):
    """As :func:`_fixed_full`, the blocks spread over Numba's threads."""
    for b in prange(b0, b1):
        _fixed_full(mid, P, tab, tgrid, drive, vscale, rec, x0, xrec, fail, b, b + 1)


KERNELS = {(True, False): _fixed_split, (True, True): _fixed_split_parallel,
           (False, False): _fixed_full, (False, True): _fixed_full_parallel}


def step_grid(t: np.ndarray, substeps: int) -> np.ndarray:
    """The sample times ``t`` with each interval cut into ``substeps`` equal steps."""
    if substeps == 1:
        return np.ascontiguousarray(t, dtype=np.float64)
    frac = np.arange(substeps) / substeps
    inner = (t[:-1, None] + np.diff(t)[:, None] * frac).reshape(-1)
    return np.ascontiguousarray(np.append(inner, t[-1]))


def run_fixed(model, waveform, x0, vs, rows, method, substeps, parallel):
    """Integrate on the fixed grid; return ``(xrec, fail_cell, fail_step, grid)``.

    ``xrec[i]`` is the state at report time ``waveform.t[rows[i]]``; ``fail_cell`` is -1 unless
    a rate was not finite (then at grid step ``fail_step``).
    """
    from .laws.dispatch import split_eligible

    mid = int(model.model_id)
    P = model._P
    grid = step_grid(waveform.t, substeps)
    tab = FIXED_METHODS[method]
    h = np.diff(grid)
    t_stage = grid[:-1, None] + h[:, None] * tab[None, :, 2]
    t_stage[:, tab[:, 2] == 1.0] = grid[1:, None]  # the end of a step is the next grid time
    split = split_eligible(mid, P, vs.size)
    v = waveform(t_stage.reshape(-1)).reshape(t_stage.shape)
    drive = stage_drive(mid, P, v * vs[0] if split else v, split)
    rec = np.full(grid.size, -1, dtype=np.int64)
    rec[np.asarray(rows) * substeps] = np.arange(len(rows))
    xrec = np.empty((len(rows), x0.size))
    nblocks = -(-x0.size // BLOCK)
    fail = np.full((nblocks, 2), -1, dtype=np.int64)
    KERNELS[split, parallel](mid, P, tab, grid, drive, vs, rec, x0, xrec, fail, 0, nblocks)
    bad = np.flatnonzero(fail[:, 0] >= 0)
    if bad.size:
        return xrec, int(fail[bad[0], 0]), int(fail[bad[0], 1]), grid
    return xrec, -1, -1, grid
