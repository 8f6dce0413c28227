"""Tile characterisation (crossbar transfer matrices with wire resistance) and its disk cache.

A tile of linear cells maps word-line voltages to bit-line currents linearly, ``i = v @ Tᵀ``,
with ``T`` (cols, rows) the crossbar's transfer matrix including every wire, driver and sense
resistance (DESIGN.md, reference crossbar).  It is computed once per programmed tile by the
circuit layer (:func:`cimphys.circuits.nodal.transfer_matrix`, what
:meth:`cimphys.circuits.crossbar.Crossbar.transfer_matrix` returns, bit for bit: an exact block
factorisation, residual-checked, with a fallback to unit solves), the tiles of a matrix in
parallel across the cores (:func:`tile_transfers`), and then reused at matmul speed.
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

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .config import CimConfig

__all__ = ["CACHE_ENV", "cache_key", "default_cache_dir", "load_cached", "load_ranges", "save_cached", "save_ranges",
           "tile_transfer", "tile_transfers"]

CACHE_ENV = "CIMPHYS_CACHE_DIR"
CACHE_VERSION = "h6-tiles-2"


def tile_transfer(g: np.ndarray, cfg: CimConfig) -> np.ndarray:
    """``Tᵀ`` (rows, cols): bit-line currents per volt on each word line, S.

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

    # What Crossbar(g, ...).transfer_matrix() computes (the same call, bit for bit: tested), but
    # without Crossbar's functools.cached_property, whose class-wide lock (Python <= 3.11)
    # would serialise the tiles of tile_transfers' thread pool.
    g = np.asarray(g, dtype=np.float64)
    net = Network.build(g.shape, r_wl=cfg.r_wl, r_bl=cfg.r_bl, r_driver=cfg.r_driver, r_sense=cfg.r_sense)
    return np.ascontiguousarray(transfer_matrix(net, g, g).T)


def tile_transfers(g: np.ndarray, cfg: CimConfig, *, max_workers: int | None = None) -> np.ndarray:
    """:func:`tile_transfer` of every tile of ``g (..., rows, cols)``, in parallel across cores.

    Tiles are independent, so they are characterised by a pool of ``max_workers`` threads
    (default ``os.cpu_count()`` when each worker can limit SciPy's OpenBLAS to one thread for
    itself, or ``OPENBLAS_NUM_THREADS=1`` is set, else 1: a multi-threaded BLAS under the pool
    oversubscribes the cores): every heavy step releases the GIL (LAPACK/BLAS in NumPy and
    SciPy, Numba kernels compiled with ``nogil=True``).  Each worker thread runs Numba's
    parallel kernels on ``NUMBA_NUM_THREADS // max_workers`` threads (Numba's setting is
    per thread) so the cores are not oversubscribed.  The result is bit-for-bit the serial one
    (each tile's arithmetic does not depend on which thread runs it).  Threads are used only
    with a thread-safe Numba threading layer (``omp``, ``tbb``); with ``workqueue``, which
    aborts on concurrent launches, the tiles run serially.  BLAS threads are left to the
    environment (``OPENBLAS_NUM_THREADS``).

    Returns ``(..., rows, cols)`` float64, S.
    """
    g = np.asarray(g, dtype=np.float64)
    if g.ndim < 2:
        raise InputError(f"g: expected (..., rows, cols) conductances, got shape {g.shape}")
    lead = g.shape[:-2]
    flat = g.reshape((-1,) + g.shape[-2:])
    out = np.empty(flat.shape)
    if not cfg.has_wires or flat.shape[0] == 0:
        out[...] = flat
        return out.reshape(g.shape)
    limit_blas = _blas_thread_limiter()
    if max_workers is None:
        workers = (os.cpu_count() or 1) if (limit_blas is not None or _blas_single_threaded()) else 1
    else:
        workers = int(max_workers)
    if workers < 1:
        raise InputError(f"max_workers: expected >= 1, got {max_workers}")
    out[0] = tile_transfer(flat[0], cfg)  # compiles and starts Numba's threading layer
    workers = min(workers, flat.shape[0] - 1)
    if workers <= 1 or not _threadsafe_numba():
        for k in range(1, flat.shape[0]):
            out[k] = tile_transfer(flat[k], cfg)
        return out.reshape(lead + g.shape[-2:])
    import numba
    from concurrent.futures import ThreadPoolExecutor

    per_thread = max(1, numba.config.NUMBA_NUM_THREADS // workers)

    def one(k: int) -> None:
        numba.set_num_threads(per_thread)
        if limit_blas is not None:
            limit_blas(1)  # this worker thread's BLAS calls run on it alone
        out[k] = tile_transfer(flat[k], cfg)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(one, range(1, flat.shape[0])):  # re-raises a worker's exception
            pass
    return out.reshape(lead + g.shape[-2:])


def _blas_thread_limiter():
    """``openblas_set_num_threads_local`` of SciPy's bundled OpenBLAS (the BLAS that the
    Numba kernels of the crossbar solver call), or None where SciPy links another BLAS.

    The setting is per thread (OpenBLAS >= 0.3.27), so each pool worker limits itself to one
    BLAS thread without touching the rest of the process.
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
    try:
        import numba

        return numba.threading_layer() in ("omp", "tbb")
    except (ImportError, ValueError):  # ValueError: no parallel kernel launched yet
        return False


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
