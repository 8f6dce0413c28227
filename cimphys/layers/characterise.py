"""Tile characterisation (crossbar transfer matrices with wire resistance) and its disk cache.

A tile of linear cells maps word-line voltages to bit-line currents linearly, ``i = v @ Tᵀ``,
with ``T`` (cols, rows) the crossbar's transfer matrix including every wire, driver and sense
resistance (DESIGN.md, reference crossbar).  It is computed once per programmed tile
(:func:`tile_transfer`: the circuit layer's exact block factorisation,
:class:`cimphys.circuits.nodal.BlockFactor`, fused into one kernel, with
:func:`cimphys.circuits.nodal.transfer_matrix` as the fallback), the tiles of all of a model's
matrices on one pool of threads (:class:`TilePool`), and then reused at matmul speed.
Without wire resistance ``T = Gᵀ`` exactly and nothing is solved.

Disk cache
----------
Characterising a whole model takes tens of seconds, so what a characterised matrix needs
(the sensed transfer matrices ``T+ - T-`` and the row sums of the programmed conductances, for
the read energy) is stored as ``<cache_dir>/<key>.npz`` with ``key`` the
SHA-256 of the weights' bytes, the fields of the :class:`CimConfig` that decide the tiles
(:meth:`CimConfig.tile_identity`), the seed and a format version; the calibrated ADC ranges of a whole model are stored next to them
(``<key>.ranges.npz``, keyed by the configuration, seed, calibration tokens and all weights).
``cache_dir`` is, in order: the ``cache_dir`` argument, the environment variable
``CIMPHYS_CACHE_DIR``, or ``~/.cache/cimphys/tiles``.  Delete the folder to clear it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np

from .._numba import jit, jit_parallel, prange
from ..errors import InputError
from .config import CimConfig

__all__ = ["CACHE_ENV", "PendingTransfers", "TilePool", "cache_key", "default_cache_dir", "load_cached", "load_ranges",
           "save_cached", "save_ranges", "tile_transfer", "tile_transfers"]

CACHE_ENV = "CIMPHYS_CACHE_DIR"
#: Agreement of :func:`tile_transfer` with the circuit layer's transfer matrix, relative to its
#: largest entry.  Both are exact direct solves differing in rounding only; the information in
#: T sits ~1e-5 below the entries of the BL Schur blocks (wire conductance 0.4 S against cells
#: of 1e-5 S), so rounding shows at ~1e-11 of max |T| (measured 8.7e-12 on a 128 x 128 tile of
#: the default card), far below the float32 the cache stores (6e-8) and an ADC LSB (4e-3).
RTOL_TRANSFER = 1e-9
CACHE_VERSION = "h6-tiles-2"


def tile_transfer(g: np.ndarray, cfg: CimConfig) -> np.ndarray:
    """``Tᵀ`` (rows, cols): bit-line currents per volt on each word line, S.

    What :meth:`cimphys.circuits.crossbar.Crossbar.transfer_matrix` returns for these cells and
    wires: the exact block factorisation of :class:`cimphys.circuits.nodal.BlockFactor` with its
    Cholesky recursion, run by :func:`_transfer_spd` (fused and reordered for speed: 1.35x on
    a 128 x 128 tile; equal to Crossbar's within :data:`RTOL_TRANSFER`, tested), or
    :func:`cimphys.circuits.nodal.transfer_matrix` itself where that fast path does not apply
    (a block not positive definite, sensing at row 0, a network too large).
    Crossbar is not called: its ``functools.cached_property`` lock (Python <= 3.11) would
    serialise the tiles of a :class:`TilePool`.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.full((4, 3), 1e-5)
    >>> np.array_equal(tile_transfer(g, CimConfig()), g)   # no wires: T = G exactly
    True
    """
    if not cfg.has_wires:
        return np.array(g, dtype=np.float64)
    from ..circuits.nodal import Network, transfer_matrix

    g = np.ascontiguousarray(g, dtype=np.float64)
    net = Network.build(g.shape, r_wl=cfg.r_wl, r_bl=cfg.r_bl, r_driver=cfg.r_driver, r_sense=cfg.r_sense)
    t = _fused_transfer(net, g)
    if t is None:
        t = transfer_matrix(net, g, g)
    return np.ascontiguousarray(t.T)


def _fused_transfer(net, g: np.ndarray):
    """``T (N, M)`` by :func:`_transfer_spd`, or None where the fused path does not apply."""
    from ..circuits.nodal import _Family, block_fits

    if net.sense_at != "last" or not block_fits(net) or not (np.isfinite(g).all() and (g >= 0).all()):
        return None
    m, n = g.shape
    wl, bl = net.wl_chains(), net.bl_chains()
    # BL couplings and end conductances, as BlockFactor sets them up
    gc = np.zeros((m, n))
    gc[1:] = 1.0 / bl.r_seg.T
    g_lo, g_hi = 1.0 / bl.r_lo, 1.0 / bl.r_hi
    diag = np.zeros((m, n))
    diag[1:] += gc[1:]
    diag[:-1] += gc[1:]
    diag[0] += g_lo
    diag[-1] += g_hi
    wlf = _Family(wl, g)
    # WL voltages per volt at each WL source with the BLs held at 0 V (BlockFactor.transfer)
    xi = wlf.sweep(np.empty((1, m, n)), np.zeros((1, n, m)), g, np.zeros((1, m, n)), -1.0, np.ones((1, m)))[0]
    z = np.ascontiguousarray(g * xi)
    # N x N LAPACK calls on one BLAS thread, whoever calls: a multi-threaded OpenBLAS wakes its
    # threads for every small call (measured: 6 tiles of 24 x 16 took 2.1 s instead of 2 ms
    # on the loaded 2-core machine with OPENBLAS_NUM_THREADS=2)
    limit = _blas_thread_limiter()
    before = limit(1) if limit is not None else None
    try:
        bad = _transfer_spd(g, g, wlf.gid, wlf.low, wlf.cp, wlf.ipiv, wlf.r_lo, wlf.r_hi, diag, gc, z,
                            np.empty((n, n)), np.empty((n, n)), np.empty((n, n)), _DPOTRF, _DPOTRI)
    finally:
        if limit is not None:
            limit(before)
    if bad:
        return None
    t = np.where(net.bl_floating, 0.0, g_hi)[:, None] * z.T
    return np.ascontiguousarray(t) if np.isfinite(t).all() else None


def tile_transfers(g: np.ndarray, cfg: CimConfig, *, max_workers: int | None = None) -> np.ndarray:
    """:func:`tile_transfer` of every tile of ``g (..., rows, cols)``, in parallel across cores.

    One :class:`TilePool` for this call (see there for the threads, BLAS and Numba settings).
    The result is bit-for-bit the serial one (each tile's arithmetic does not depend on which
    thread runs it).  Returns ``(..., rows, cols)`` float64, S.
    """
    g = np.asarray(g, dtype=np.float64)
    if g.ndim < 2:
        raise InputError(f"g: expected (..., rows, cols) conductances, got shape {g.shape}")
    pool = TilePool(cfg, max_workers=max_workers, tiles=int(np.prod(g.shape[:-2])))
    try:
        return pool.submit(g).result()
    finally:
        pool.close()


class TilePool:
    """Characterises the tiles of many matrices on one pool of threads, in submission order.

    :meth:`submit` queues every tile of a conductance stack at once and returns a
    :class:`PendingTransfers` at once; the layer adapter submits all of a model's matrices
    before its calibration pass and collects each one when the pass first needs it, so the
    cores stay busy across matrices (no pool start, warm-up tile or tail per matrix) and the
    main thread's calibration arithmetic overlaps the characterisation of later matrices.

    Tiles are independent, so they run on ``max_workers`` threads (default ``os.cpu_count()``
    when each worker can limit SciPy's OpenBLAS to one thread for itself, or
    ``OPENBLAS_NUM_THREADS=1`` is set, else 1: a multi-threaded BLAS under the pool
    oversubscribes the cores): every heavy step releases the GIL (LAPACK/BLAS called from
    Numba kernels compiled with ``nogil=True``).  Each worker runs Numba's parallel kernels on
    ``NUMBA_NUM_THREADS // max_workers`` threads and SciPy's OpenBLAS on one thread (both
    settings are per thread).  Threads are used only with a thread-safe Numba threading layer
    (``omp``, ``tbb``); with ``workqueue``, which aborts on concurrent launches, tiles are
    characterised serially in :meth:`PendingTransfers.result`.  ``tiles`` (optional) caps the
    workers at the number of tiles there will be.

    Examples
    --------
    >>> import numpy as np
    >>> cfg = CimConfig(r_wl=1.0, r_bl=1.0)
    >>> pool = TilePool(cfg)
    >>> pending = pool.submit(np.full((2, 4, 3), 1e-5))   # two 4 x 3 tiles
    >>> pending.result().shape
    (2, 4, 3)
    >>> pool.close()
    """

    def __init__(self, cfg: CimConfig, *, max_workers: int | None = None, tiles: int | None = None):
        self.cfg = cfg
        self._limit_blas = _blas_thread_limiter()
        if max_workers is None:
            single = self._limit_blas is not None or _blas_single_threaded()
            workers = (os.cpu_count() or 1) if single else 1
        else:
            workers = max_workers
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise InputError(f"max_workers: expected an integer >= 1, got {max_workers!r}")
        workers = int(workers)
        if tiles is not None:
            workers = min(workers, max(1, tiles))
        self._pool = None
        if workers > 1 and cfg.has_wires:
            _warm_up(cfg)  # compiles (or loads) the kernels once, on this thread
            if _threadsafe_numba():
                from concurrent.futures import ThreadPoolExecutor

                import numba

                per_thread = max(1, numba.config.NUMBA_NUM_THREADS // workers)
                self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cimphys-tile",
                                                initializer=self._init_worker, initargs=(per_thread,))
        self.workers = workers if self._pool is not None else 1

    def _init_worker(self, per_thread: int) -> None:
        import numba

        numba.set_num_threads(per_thread)
        if self._limit_blas is not None:
            self._limit_blas(1)  # this worker thread's BLAS calls run on it alone

    def submit(self, g: np.ndarray) -> PendingTransfers:
        """Queue every tile of ``g (..., rows, cols)`` (S); the result comes from ``.result()``."""
        g = np.asarray(g, dtype=np.float64)
        if g.ndim < 2:
            raise InputError(f"g: expected (..., rows, cols) conductances, got shape {g.shape}")
        flat = g.reshape((-1,) + g.shape[-2:])
        pending = PendingTransfers(self.cfg, flat, g.shape)
        if self._pool is not None and self.cfg.has_wires:
            pending.futures = [self._pool.submit(pending.run, k) for k in range(flat.shape[0])]
        return pending

    def close(self, cancel: bool = False) -> None:
        """Stop the worker threads (after the queued tiles, or dropping them with ``cancel``)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None


class PendingTransfers:
    """The transfer matrices of one conductance stack, being computed by a :class:`TilePool`."""

    def __init__(self, cfg: CimConfig, flat: np.ndarray, shape: tuple):
        self.cfg, self.flat, self.shape = cfg, flat, shape
        self.out = np.empty(flat.shape)
        self.futures = None

    def run(self, k: int) -> None:
        self.out[k] = tile_transfer(self.flat[k], self.cfg)

    def result(self) -> np.ndarray:
        """``(..., rows, cols)`` float64, S: waits for the pool (or computes here, serially)."""
        if not self.cfg.has_wires:
            self.out[...] = self.flat
        elif self.futures is None:
            for k in range(self.flat.shape[0]):
                self.run(k)
        else:
            for f in self.futures:
                f.result()  # re-raises a worker's exception
        return self.out.reshape(self.shape)


def _warm_up(cfg: CimConfig) -> None:
    """One 2 x 2 tile: compiles (or loads) the solver's kernels on this thread before threads
    share them."""
    tile_transfer(np.full((2, 2), 1e-5), cfg)


@functools.lru_cache(maxsize=1)
def _blas_thread_limiter():
    """``openblas_set_num_threads_local`` of SciPy's bundled OpenBLAS (the BLAS that the
    Numba kernels of the crossbar solver call), or None where SciPy links another BLAS.

    The setting is per thread (OpenBLAS >= 0.3.27), so each pool worker limits itself to one
    BLAS thread without touching the rest of the process; it returns the thread's previous
    setting.
    """
    import ctypes
    import glob

    try:
        import scipy

        paths = sorted(glob.glob(os.path.join(os.path.dirname(scipy.__file__), os.pardir, "scipy.libs",
                                              "libscipy_openblas*.so*")))
        fn = ctypes.CDLL(paths[0]).openblas_set_num_threads_local
    except (ImportError, OSError, AttributeError, IndexError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


def _blas_single_threaded() -> bool:
    """Whether the environment limits OpenBLAS to one thread (read when NumPy loads it).

    Under a tile pool a multi-threaded BLAS oversubscribes the cores: measured on 2 shared
    cores, 128 x 128 tiles took 81 ms each with 2 workers against 62 ms serially, while with
    ``OPENBLAS_NUM_THREADS=1`` 2 workers take 28 ms a tile against 47 ms serially.
    """
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if var in os.environ:
            return os.environ[var].strip() == "1"
    return False


def _threadsafe_numba() -> bool:
    """Whether Numba's threading layer allows parallel kernels launched from several threads.

    The layer is chosen at the first parallel launch; the tile kernels themselves may launch
    none (they are serial below the circuit layer's size thresholds), so one tiny parallel
    kernel is launched here first to make the choice.
    """
    try:
        import numba

        try:
            layer = numba.threading_layer()
        except ValueError:  # no parallel kernel launched yet
            _start_threads(np.empty(4))
            layer = numba.threading_layer()
        return layer in ("omp", "tbb")
    except (ImportError, ValueError):
        return False


@jit_parallel
def _start_threads(out):
    """A trivial parallel kernel: its first launch starts Numba's threading layer."""
    for i in prange(out.size):
        out[i] = i


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The tile cache folder: argument, else $CIMPHYS_CACHE_DIR, else ~/.cache/cimphys/tiles."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "cimphys" / "tiles"


def cache_key(w: np.ndarray, cfg: CimConfig, seed) -> str:
    """SHA-256 of the weights, the configuration and the seed."""
    h = hashlib.sha256()
    h.update(CACHE_VERSION.encode())
    h.update(repr(cfg.tile_identity()).encode())
    h.update(repr(seed).encode())
    w = np.ascontiguousarray(w, dtype=np.float32)
    h.update(repr(w.shape).encode())
    h.update(w.tobytes())
    return h.hexdigest()


def load_cached(folder: Path, key: str):
    """``(sensed, row_g)`` of :attr:`AnalogMatrix.characterised` from the cache, or None."""
    path = folder / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return data["sensed"], data["row_g"]
    except (OSError, KeyError, ValueError):  # a damaged entry is recomputed, never trusted
        return None


def save_cached(folder: Path, key: str, sensed: np.ndarray, row_g: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.npz"
    tmp = folder / f"{key}.{os.getpid()}.part.npz"
    np.savez(tmp, sensed=sensed, row_g=row_g)
    tmp.replace(path)
    return path


def save_ranges(folder: Path, key: str, ranges: dict) -> Path:
    """Store calibrations ``{(op, layer): AnalogMatrix.calibration}`` as ``<key>.ranges.npz``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.ranges.npz"
    tmp = folder / f"{key}.{os.getpid()}.part.npz"
    np.savez(tmp, **{f"{op}@{layer}": fs for (op, layer), fs in ranges.items()})
    tmp.replace(path)
    return path


def load_ranges(folder: Path, key: str):
    """``{(op, layer): calibration}`` stored by :func:`save_ranges`, or None."""
    path = folder / f"{key}.ranges.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return {(k.split("@")[0], int(k.split("@")[1])): data[k] for k in data.files}
    except (OSError, KeyError, ValueError):
        return None


# -- one tile's transfer matrix: the block path of cimphys.circuits.nodal, fused row by row --------

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

    The arithmetic of :func:`cimphys.circuits.nodal._schur_blocks` element for element (the
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


@jit(error_model="numpy")
def _transfer_spd(a, b, gid, low, cp, ipiv, rlo, rhi, diag_bl, gc, z, s_prev, s_cur, inv, potrf, potri):
    """Sense-end BL voltages ``(M, N)`` per volt at each WL source, for ``a == b`` (SPD blocks).

    :class:`cimphys.circuits.nodal.BlockFactor` (Cholesky recursion) followed by its
    ``transfer`` forward sweep, fused into one pass over the rows: row ``t``'s block is built
    (:func:`_wl_block`), reduced by the previous row's inverse, inverted by Cholesky
    (``dpotrf`` then ``dpotri``) and applied at once to the inputs above it, so only two
    N x N inverses live at a time (L2-resident) instead of all M of them (16 MiB for a
    128 x 128 tile, which two threads then stream from the shared L3).  ``dpotri`` (``dtrtri``
    + ``dlauum``) measured 1.2x faster here than BlockFactor's ``dtrtri`` + ``dsyrk`` at
    N = 64, 128 and 256 (OpenBLAS of SciPy 1.x, AMD EPYC); the inverse is the same up to
    rounding.  ``z (M, N)`` holds the BL injection of input k at row k and is overwritten.
    ``potrf, potri`` are :data:`_DPOTRF`, :data:`_DPOTRI`.  Returns 0, or the row + 1 whose
    block is not positive definite (the caller falls back).
    """
    m, n = a.shape
    ch = np.empty(1, np.uint8)
    ch[0] = 76  # "L": the upper triangle of a C-ordered block
    iv = np.empty(3, np.int32)  # n, lda, info
    iv[0], iv[1], iv[2] = n, n, 0
    for t in range(m):
        cur = s_cur
        _wl_block(t, a, b, gid, low, cp, ipiv, rlo, rhi, diag_bl, inv, cur)
        if t > 0:  # S_t - G_t S_{t-1}^-1 G_t, upper triangle
            prev = s_prev
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
        # the forward sweep of BlockFactor.transfer: inputs 0..t reach row t + 1 through the BL
        if t < m - 1:
            w = z[: t + 1] @ cur.T
            for k in range(t + 1):
                z[k] = w[k] * gc[t + 1]
        else:
            z[:] = z @ cur.T
        s_prev, s_cur = cur, s_prev
    return 0
