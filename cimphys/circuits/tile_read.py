"""The hot part of a tile read: the array's product per tile, then cell noise and sensing in one pass.

:class:`~cimphys.circuits.tile.TileStack` reads many tiles at once.  Two steps dominate its
time, and both live here:

1. **The array's product**, ``i = v S T^T`` per tile (:func:`per_tile_product`): one 2-D BLAS
   product per tile, in ``PRODUCT_DTYPE`` (float32: half the time of float64).  Bound of the
   float32 error: the conductances and read voltages are rounded to float32 (relative
   ``u = 2**-24`` each) and the ``M``-term sums accumulate at most ``M u`` relative error of
   ``sum_m |v_m| |(S T)_cm|`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM 2002, eq. 3.5), so
   ``|i32 - i64| <= (M + 2) u sum_m |v_m| |(S T)_cm|``: for a 128-row tile 7.7e-6 of the current a
   full column of ``g_max`` cells would carry, three orders of magnitude below the half LSB of a
   12-bit ADC over that full scale (1.2e-4) and below the cells' read noise.  The currents are
   returned in float64.  Each tile's product runs on one BLAS thread (the tiles spread over a
   thread per core), so the sums do not depend on the number of threads or cores.
2. **Cell noise, sense amplifier and clipping** (:func:`sense_reads`): one Numba pass over the
   reads that adds each channel's cell current noise ``sqrt(var) z`` (``z`` the standard normal
   of read ``b`` and channel ``c`` under the tile's key for this call, computed in place by
   :func:`cimphys.circuits.counter_normals.normal_at`, so no normal array is made), applies the amplifier's transfer (TIA:
   ``R_t i - (offset + noise) beta^-1``; integrator and load resistor: ``R_t i + offset + noise``),
   clips at the swing, and lays the outputs out as ``(batch, tiles, channels)``.  Its twin,
   :func:`sense_reads_numpy`, is the amplifier's own ``output`` method on NumPy arrays; both do
   the same float64 operations in the same order, so they agree bit for bit (tested).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._numba import jit_parallel, prange
from .counter_normals import ZIGGURAT, counter_normals, normal_at
from .sense import TIA

__all__ = ["PRODUCT_DTYPE", "cell_noise_draws", "per_tile_product", "sense_reads", "sense_reads_numpy"]

#: Precision of the digital reads' array product: float32, whose error (bound in the module
#: docstring, tested) is three orders of magnitude below a 12-bit ADC's half LSB and below the
#: cells' read noise; sums of noise and sensing stay float64 (:func:`sense_reads`).
PRODUCT_DTYPE = np.float32


@functools.cache
def _blas_threads_local():
    """``openblas_set_num_threads_local`` of NumPy's bundled OpenBLAS (per calling thread; it
    returns the thread's previous setting), or None where NumPy links another BLAS."""
    import ctypes
    import glob

    paths = sorted(glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                          "libscipy_openblas*.so*")))
    try:
        fn = ctypes.CDLL(paths[0]).openblas_set_num_threads_local
    except (OSError, AttributeError, IndexError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


@functools.cache
def _product_pool(workers: int, pid: int) -> ThreadPoolExecutor | None:
    """Threads that each run one tile's product on one BLAS thread (None: one worker, or no way
    to limit NumPy's BLAS per thread).  One pool per process ``pid``: a forked child has none of
    its parent's threads, so it makes its own."""
    limit = _blas_threads_local()
    if workers < 2 or limit is None:
        return None
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cimphys-product", initializer=limit,
                              initargs=(1,))


def per_tile_product(v: np.ndarray, a: np.ndarray, tiles: int, dtype=PRODUCT_DTYPE, *,
                     workers: int | None = None) -> np.ndarray:
    """``v[k] @ a[k].T`` for every tile, ``(tiles, batch, C)`` in ``dtype``.

    ``v`` is ``(1 | tiles, batch, M)`` (one drive for every tile, or one per tile) and ``a``
    ``(tiles, C, M)``.  One 2-D BLAS product per tile into a preallocated result in ``dtype``
    (a broadcast batched ``matmul`` over a contiguous right operand ran about 3x slower on one
    core), each on **one** BLAS thread, the tiles spread over ``workers`` threads (default: the
    cores).  A multi-threaded OpenBLAS splits a product differently with its thread count, and
    the float32 sums changed in their last bits with it; one thread per product gives the same
    numbers for any number of workers or cores, and spends no CPU on BLAS threads that wait
    for work (``benchmarks/bench_layers.py`` measures the run).
    """
    vd = np.ascontiguousarray(v, dtype=dtype)
    ad = np.asarray(a, dtype=dtype)
    out = np.empty((tiles, v.shape[1], a.shape[1]), dtype=dtype)

    def product(k: int) -> None:
        np.matmul(vd[min(k, vd.shape[0] - 1)], ad[k].T, out=out[k])

    n = (os.cpu_count() or 1) if workers is None else int(workers)
    pool = _product_pool(n, os.getpid()) if tiles > 1 else None
    if pool is not None:
        for _ in pool.map(product, range(tiles)):
            pass
        return out
    limit = _blas_threads_local()
    before = limit(1) if limit is not None else None
    try:
        for k in range(tiles):
            product(k)
    finally:
        if limit is not None:
            limit(before)
    return out


def cell_noise_draws(v, noise, peak, gens, tiles: int, dtype=PRODUCT_DTYPE, combined=None):
    """Variance of each channel's cell current noise on each read, and its standard normals.

    ``v`` (1 | tiles, batch, M) word-line voltages (V); ``noise`` the folded coefficients
    ``(thermal (tiles, C) A**2, shot (tiles, M, C) A**2/V, flicker (tiles, M, C) A**2/V**2)``
    or None; ``peak`` the common drive level ``V`` when every drive is 0 or ``V`` (or ``V`` for a
    fraction ``v / V`` of the read, PWM: then ``|v|`` shot and ``v**2`` flicker are both ``v (shot +
    V flicker)``, one product instead of two), else None.  ``gens``: one generator per tile, each
    drawing its tile's 64-bit noise key for this call (the normals themselves are made by the
    read kernel from the key, the read and the channel).  Returns ``((var, thermal), keys)``: the
    drive-dependent variance (tiles, batch, C) and the thermal part (tiles, C), to be added to
    ``var`` (in float64) by :func:`sense_reads`, and the keys (tiles,) uint64; ``(None, None)``
    without noise.
    ``combined``, optional: ``(shot + peak flicker)`` transposed to (tiles, C, M), made before.
    """
    if noise is None:
        return None, None
    if peak is not None:
        a = (noise[1] + peak * noise[2]).transpose(0, 2, 1) if combined is None else combined
        var = per_tile_product(v, a, tiles, dtype)
    else:
        var = per_tile_product(np.abs(v), noise[1].transpose(0, 2, 1), tiles, dtype)
        var += per_tile_product(v * v, noise[2].transpose(0, 2, 1), tiles, dtype)
    keys = np.array([g.integers(0, 2**64, dtype=np.uint64) for g in gens], dtype=np.uint64)
    return (var, np.ascontiguousarray(noise[0], dtype=np.float64)), keys


@jit_parallel
def _sense_reads(i, var, thermal, keys, ki, wi, fi, transimpedance, offset, noise_gain, tia, sense_noise, swing,
                 i_out, v_out, sat):
    """Kernel of :func:`sense_reads`: ``i``, ``var`` (tiles, batch, C) (float32 or float64;
    ``var`` empty: no cell noise), ``keys`` (tiles,) uint64 and the ziggurat tables ``ki, wi, fi``
    of the cell noise's normals, ``thermal`` (tiles, C), per-channel ``offset`` and
    ``noise_gain`` (tiles * C,), ``sense_noise`` (batch, tiles * C) or empty; writes ``i_out``,
    ``v_out``, ``sat`` (batch, tiles, C).  Sums are taken in float64."""
    nt, nb, nc = i.shape
    noisy = var.size > 0
    snoisy = sense_noise.size > 0
    for b in prange(nb):
        for k in range(nt):
            for c in range(nc):
                x = np.float64(i[k, b, c])
                if noisy:
                    z = normal_at(b, c, keys[k], ki, wi, fi)
                    x = x + np.sqrt(np.float64(var[k, b, c]) + thermal[k, c]) * z
                i_out[b, k, c] = x
                ch = k * nc + c
                if tia:  # R_t i - (offset + noise) * beta^-1
                    e = offset[ch]
                    if snoisy:
                        e = e + sense_noise[b, ch]
                    v = transimpedance * x - e * noise_gain[ch]
                else:  # R_t i + offset + noise
                    v = transimpedance * x + offset[ch]
                    if snoisy:
                        v = v + sense_noise[b, ch]
                sat[b, k, c] = abs(v) > swing
                v_out[b, k, c] = min(max(v, -swing), swing)


def _channel_terms(sense, g_source: np.ndarray, channels: int):
    offset = np.ascontiguousarray(np.broadcast_to(np.asarray(sense.offset_v, dtype=np.float64), (channels,)))
    if isinstance(sense, TIA):
        gain = np.ascontiguousarray(np.broadcast_to(sense.noise_gain(g_source), (channels,)), dtype=np.float64)
    else:
        gain = np.ones(channels)
    return offset, gain


def sense_reads(i, var, keys, sense, g_source, sense_noise=None):
    """Add the cells' current noise to the array currents and sense them, in one pass.

    Parameters
    ----------
    i : ndarray (tiles, batch, C), A
        Sense-amplifier input currents of the noiseless array.
    var, keys : (ndarray (tiles, batch, C), ndarray (tiles, C)) and ndarray (tiles,) uint64, or None
        Variance (A**2) of each channel's cell current noise on each read, as its
        drive-dependent part and its thermal part (summed in float64), and each tile's 64-bit
        key of the standard normals that realise it (read ``b``, channel ``c``: the normal of
        counter ``(b, c)``, :mod:`cimphys.circuits.counter_normals`); None: no cell noise.
    sense : TIA, ChargeIntegrator or LoadResistor
        The amplifier (per-channel offsets of every tile, flattened ``(tiles * C,)``).
    g_source : ndarray (tiles * C,), S
        Norton conductance each amplifier sees (its offset/noise gain, TIA).
    sense_noise : ndarray (batch, tiles * C), V, optional
        The amplifiers' input-referred noise on each read.

    Returns
    -------
    (i_out, v_sense, saturated) : (batch, tiles, C) each: noisy currents (A), clipped outputs
    (V) and whether each output hit the swing.
    """
    nt, nb, nc = i.shape
    offset, gain = _channel_terms(sense, np.asarray(g_source, dtype=np.float64), nt * nc)
    i_out, v_out = np.empty((nb, nt, nc)), np.empty((nb, nt, nc))
    sat = np.empty((nb, nt, nc), dtype=np.bool_)
    dtype = np.float32 if i.dtype == np.float32 else np.float64
    var, thermal = (np.empty((0, 0, 0), dtype), np.empty((0, 0))) if var is None else var
    _sense_reads(np.ascontiguousarray(i, dtype=dtype), np.ascontiguousarray(var, dtype=dtype),
                 np.ascontiguousarray(thermal, dtype=np.float64),
                 np.zeros(nt, dtype=np.uint64) if keys is None else np.ascontiguousarray(keys, dtype=np.uint64),
                 *ZIGGURAT, float(sense.transimpedance), offset, gain, isinstance(sense, TIA),
                 np.empty((0, 0)) if sense_noise is None else np.ascontiguousarray(sense_noise, dtype=np.float64),
                 float(sense.v_swing), i_out, v_out, sat)
    return i_out, v_out, sat


def sense_reads_numpy(i, var, keys, sense, g_source, sense_noise=None):
    """The NumPy twin of :func:`sense_reads`: array operations, the normals of
    :func:`~cimphys.circuits.counter_normals.counter_normals` and the amplifier's ``output``."""
    nt, nb, nc = i.shape
    i = i.astype(np.float64)
    if var is not None:
        z = np.stack([counter_normals(key, nb, nc) for key in keys])
        i = i + np.sqrt(var[0].astype(np.float64) + var[1][:, None, :]) * z
    i = np.ascontiguousarray(i.transpose(1, 0, 2))
    flat = i.reshape(nb, nt * nc)
    v, sat = sense.output(flat, g_source=g_source, noise=sense_noise)
    shape = (nb, nt, nc)
    return i, np.broadcast_to(v, flat.shape).reshape(shape), np.broadcast_to(sat, flat.shape).reshape(shape)
