"""Tile characterisation (crossbar transfer matrices with wire resistance) and its disk cache.

A tile of linear cells maps word-line voltages to bit-line currents linearly, ``i = v @ Tᵀ``,
with ``T`` (cols, rows) the crossbar's transfer matrix including every wire, driver and sense
resistance (DESIGN.md, reference crossbar).  It is computed once per programmed tile
(:func:`tile_transfer`: the circuit layer's exact transfer matrix,
:func:`cimphys.circuits.transfer.transfer_matrix`), the tiles of all of a model's
matrices on one pool of threads (:class:`TilePool`), and then reused at matmul speed.
Without wire resistance ``T = Gᵀ`` exactly and nothing is solved.

Disk cache
----------
Characterising a whole model takes tens of seconds, so what a characterised matrix needs
(the sensed transfer matrices ``T+ - T-`` and the row sums of the programmed conductances, for
the read energy) is stored as an entry of :mod:`cimphys.cache` (``<cache_dir>/<key>.npz``: key
over every input, content hash checked on read, atomic writes; a damaged entry is recomputed).
:func:`cache_key` covers the weights (dtype, shape, bytes), the whole :class:`CimConfig`
(every field: a field that does not decide the tiles costs a recomputation, never a stale
result), the contents of the device card that ``pcm`` and ``write_verify`` programming read
(:func:`cimphys.cards.card_digest`), the seed and :data:`CACHE_VERSION`.  The calibrated ADC
ranges of a whole model are stored next to them (``<key>.ranges.npz``, keyed by the caller:
the configuration, seed, calibration tokens and all weights).
``cache_dir`` is, in order: the ``cache_dir`` argument, the environment variable
``CIMPHYS_CACHE_DIR``, or ``~/.cache/cimphys/tiles``.  Delete the folder to clear it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from .._numba import jit_parallel, prange
from ..cache import EntryCache
from ..cache import cache_key as _entry_key
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
CACHE_VERSION = "h6-tiles-3"


def tile_transfer(g: np.ndarray, cfg: CimConfig) -> np.ndarray:
    """``Tᵀ`` (rows, cols): bit-line currents per volt on each word line, S.

    What :meth:`cimphys.circuits.crossbar.Crossbar.transfer_matrix` returns for these cells and
    wires (equal within :data:`RTOL_TRANSFER`, tested), by
    :func:`cimphys.circuits.transfer.transfer_matrix` on one BLAS thread: its one-pass Cholesky
    kernel, which keeps no factor.  Crossbar is not called: its ``functools.cached_property`` lock (Python <= 3.11) would
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
    from ..circuits.nodal import Network
    from ..circuits.transfer import transfer_matrix

    g = np.ascontiguousarray(g, dtype=np.float64)
    net = Network.build(g.shape, r_wl=cfg.r_wl, r_bl=cfg.r_bl, r_driver=cfg.r_driver, r_sense=cfg.r_sense)
    # N x N LAPACK calls on one BLAS thread, whoever calls: a multi-threaded OpenBLAS wakes its
    # threads for every small call (measured: 6 tiles of 24 x 16 took 2.1 s instead of 2 ms
    # on the loaded 2-core machine with OPENBLAS_NUM_THREADS=2)
    limit = _blas_thread_limiter()
    before = limit(1) if limit is not None else None
    try:
        t = transfer_matrix(net, g, g)
    finally:
        if limit is not None:
            limit(before)
    return np.ascontiguousarray(t.T)


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
    """Key of the tile entry of weights ``w`` under ``cfg`` and ``seed`` (see the module doc).

    Every input of the characterisation enters it: the weights as float32 (what the mapping
    reads), every field of ``cfg``, the device card's contents where the programming reads one,
    and the seed.
    """
    w = np.ascontiguousarray(w, dtype=np.float32)
    return _entry_key("tiles", CACHE_VERSION, cfg, _device_card_digest(cfg), seed, w)


def _device_card_digest(cfg: CimConfig) -> str | None:
    """Digest of the device card the programming reads (None where it reads none)."""
    if cfg.programming not in ("pcm", "write_verify"):
        return None
    from ..cards import card_digest

    # the default of cimphys.layers.analog (pcm programming without a card)
    return card_digest(cfg.device_card or "nandakumar2019_pcm", "device")


def load_cached(folder: Path, key: str):
    """``(sensed, row_g)`` of :attr:`AnalogMatrix.characterised` from the cache, or None.

    A damaged or edited entry is named in a :class:`~cimphys.errors.CacheWarning`, deleted and
    reported as a miss (:class:`cimphys.cache.EntryCache`).
    """
    data = EntryCache(folder).load(key, ("sensed", "row_g"))
    return None if data is None else (data["sensed"], data["row_g"])


def save_cached(folder: Path, key: str, sensed: np.ndarray, row_g: np.ndarray) -> Path | None:
    """Store ``(sensed, row_g)`` as entry ``key``; None where the folder cannot be written."""
    return EntryCache(folder).save(key, {"sensed": sensed, "row_g": row_g})


def save_ranges(folder: Path, key: str, ranges: dict) -> Path | None:
    """Store calibrations ``{(op, layer): AnalogMatrix.calibration}`` as ``<key>.ranges.npz``."""
    return EntryCache(folder, ".ranges.npz").save(key, {f"{op}@{layer}": fs for (op, layer), fs in ranges.items()})


def load_ranges(folder: Path, key: str):
    """``{(op, layer): calibration}`` stored by :func:`save_ranges`, or None (checked like
    every entry, :class:`cimphys.cache.EntryCache`)."""
    data = EntryCache(folder, ".ranges.npz").load(key)
    if data is None:
        return None
    return {(k.split("@")[0], int(k.split("@")[1])): v for k, v in data.items()}
