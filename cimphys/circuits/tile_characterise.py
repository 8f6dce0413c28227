"""Characterise tiles of linear cells: transfer matrix and input admittance, many tiles at once.

A tile of linear cells maps word-line voltages to sense currents and source currents linearly:
``i_out = T v`` (``T``: N x M, S) and ``i_src = Y v`` (``Y``: M x M, S, symmetric), with every
wire, driver and sense resistance of the reference crossbar (DESIGN.md) included.  ``T`` gives
the reads, ``Y`` the power the word-line sources deliver, ``v . Y v`` (everything the array
dissipates: cells, wires, drivers, sense inputs).  Both come from one exact factorisation of the
network (:class:`cimphys.circuits.transfer.BlockFactor`: ``T`` by its forward sweep, ``Y`` from
the node voltages of unit inputs, ``Y[k, i] = sum_j G[i, j] (v_wl - v_bl)[i, j]`` since all of
source ``i``'s current leaves through row ``i``'s cells); where the block path does not apply,
from unit solves of :func:`cimphys.circuits.linear.solve_with_report`.  Without any wire resistance
``T = G.T`` and ``Y = diag(G 1)`` exactly, and nothing is solved.

:class:`CharacterisationPool` runs the tiles of many conductance stacks on one pool of threads
(every heavy step releases the GIL: LAPACK and BLAS called from Numba kernels compiled with
``nogil=True``), in submission order, so a caller can queue a whole model's tiles and collect
each stack when it needs it.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

import numpy as np

from .._numba import jit_parallel, prange
from ..errors import InputError
from .linear import solve_with_report
from .network import Network
from .tile_check import tile_report
from .transfer import BlockFactor, block_fits, transfer_matrix

__all__ = ["PATHS", "CharacterisationPool", "Pending", "Wires", "characterisation_path", "characterise", "characterise_stack"]

#: Unit inputs solved together for ``Y``: bounds the node voltages held at once (2 x chunk x M x N).
UNIT_CHUNK = 32


@dataclass(frozen=True)
class Wires:
    """Resistances of the reference crossbar (ohm): WL and BL segments, driver, sense input."""

    r_wl: float = 0.0
    r_bl: float = 0.0
    r_driver: float = 0.0
    r_sense: float = 0.0

    @property
    def any(self) -> bool:
        return any(r > 0 for r in (self.r_wl, self.r_bl, self.r_driver, self.r_sense))

    def network(self, shape) -> Network:
        return Network.build(shape, r_wl=self.r_wl, r_bl=self.r_bl, r_driver=self.r_driver, r_sense=self.r_sense)


#: How :func:`characterise` obtains a tile's ``T`` (and ``Y``), as the solve report names it.
PATHS = {
    "closed_form": "no wire resistance: T = G.T, Y = diag(G 1), nothing solved",
    "sense_only": "sense resistance only: the closed form of one node per bit line",
    "transfer": "T by the block factor's one-pass forward sweep (no Y: binary drivers)",
    "reciprocity": "T from the transposed network's forward sweep (wider than tall; no Y)",
    "block": "T by the block factor's forward sweep, Y by its unit solves",
    "unit_solves": "T and Y from unit solves of solve_with_report (the dispatcher picks each path)",
}


def characterisation_path(shape, wires: Wires, admittance: bool = True) -> str:
    """Which exact path :func:`characterise` takes for a tile of ``shape`` (M, N): a key of :data:`PATHS`."""
    m, n = shape
    if not wires.any:
        return "closed_form"
    if wires.r_wl == wires.r_bl == wires.r_driver == 0.0:
        return "sense_only"
    if not admittance:
        return "reciprocity" if n > m else "transfer"
    return "block" if block_fits(wires.network(shape)) else "unit_solves"


def characterise(g: np.ndarray, wires: Wires, admittance: bool = True, *,
                 log: list | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(T (N, M), Y (M, M))`` in S of one tile of linear cells ``g (M, N)`` (S).

    ``admittance=False`` skips ``Y`` (None): binary word-line drivers (0 V or one level ``V``)
    need none, since then the sources deliver ``V sum_j i_out[j]`` exactly (every driven row is
    at ``V``, every other at 0 V, and all source current leaves through the sense nodes), and
    ``T`` alone comes from the faster one-pass kernel of
    :func:`cimphys.circuits.transfer.transfer_matrix`.  ``log``, a list, receives the
    :class:`~cimphys.circuits.linear.SolveReport` of every unit solve made.

    Examples
    --------
    >>> import numpy as np
    >>> t, y = characterise(np.full((4, 3), 1e-5), Wires())
    >>> np.array_equal(t, np.full((3, 4), 1e-5)), np.allclose(y, 3e-5 * np.eye(4))
    (True, True)
    """
    g = np.ascontiguousarray(g, dtype=np.float64)
    m, n = g.shape
    path = characterisation_path(g.shape, wires, admittance)
    if path == "closed_form":
        return np.ascontiguousarray(g.T), (np.diag(g.sum(axis=1)) if admittance else None)
    if path == "sense_only":
        return _sense_only(g, wires.r_sense, admittance)
    net = wires.network(g.shape)
    limit = _blas_thread_limiter()
    before = limit(1) if limit is not None else None  # N x N LAPACK calls on one BLAS thread
    try:
        if path == "reciprocity":  # wider than tall: the transposed network factorises in N M**3, not M N**3
            return _transfer_by_reciprocity(g, wires), None
        if path == "transfer":
            return np.ascontiguousarray(transfer_matrix(net, g, g)), None
        if path == "block":
            factor = BlockFactor(net, g, g)
            t = factor.transfer()
            y = np.empty((m, m))
            for k in range(0, m, UNIT_CHUNK):
                v_wl, v_bl = factor.solve(np.zeros((1, m, n)), np.eye(m)[k:k + UNIT_CHUNK])
                y[k:k + UNIT_CHUNK] = np.einsum("ij,kij->ki", g, v_wl - v_bl)
        else:
            t, y = np.empty((n, m)), np.empty((m, m))
            for k in range(0, m, UNIT_CHUNK):
                v_wl, v_bl, i_out, report = solve_with_report(net, g, g, np.zeros((m, n)),
                                                              np.eye(m)[k:k + UNIT_CHUNK])
                if log is not None:
                    log.append(report)
                t[:, k:k + UNIT_CHUNK] = i_out.T
                y[k:k + UNIT_CHUNK] = np.einsum("ij,kij->ki", g, v_wl - v_bl)
    finally:
        if limit is not None:
            limit(before)
    return np.ascontiguousarray(t), np.ascontiguousarray(0.5 * (y + y.T))  # Y is symmetric (reciprocity)


def _transfer_by_reciprocity(g: np.ndarray, wires: Wires) -> np.ndarray:
    """``T`` (N, M) of a tile from the transfer matrix of its transposed network.

    Exchange the roles of the lines: bit line ``j`` becomes word line ``N-1-j``, driven at its
    sense end (through ``r_sense`` and one ``r_bl`` segment, as the reference crossbar drives a
    word line through ``r_driver`` and one ``r_wl`` segment), and word line ``i`` becomes bit line
    ``M-1-i``, ending in its driver (one ``r_wl`` segment, then ``r_driver``, into a held node).
    That is a reference crossbar of ``N`` rows and ``M`` columns with the same cells, and the
    linear resistive network is reciprocal (its port admittance matrix is symmetric), so the
    short-circuit current into source ``k`` per volt at sense node ``j`` equals the current into
    sense node ``j`` per volt at source ``k``: ``T[j, k] = T'[M-1-k, N-1-j]``.  The block
    factorisation eliminates the word lines (``N x N`` blocks, ``M N**3`` flops); for ``N > M``
    the transposed network costs ``N M**3``, ``(N/M)**2`` times less (4x for HERMES's 256 x 512).
    """
    gt = np.ascontiguousarray(g[::-1, ::-1].T)  # gt[N-1-j, M-1-i] = g[i, j]
    twin = Wires(r_wl=wires.r_bl, r_bl=wires.r_wl, r_driver=wires.r_sense, r_sense=wires.r_driver)
    tt = transfer_matrix(twin.network(gt.shape), gt, gt)  # (M, N)
    return np.ascontiguousarray(tt[::-1, ::-1].T)


def _sense_only(g: np.ndarray, r_sense: float, admittance: bool):
    """No wire or driver resistance, only the sense input resistance ``r_s``: every word line is at
    its source and every bit line one node, ``v_bl[j] = sum_i G[i, j] v[i] / (c_j + 1 / r_s)`` with
    ``c_j = sum_i G[i, j]``, so ``T[j] = G[:, j] / (1 + r_s c_j)`` and
    ``Y = diag(G 1) - G diag(r_s / (1 + r_s c)) G.T`` exactly."""
    shrink = 1.0 / (1.0 + r_sense * g.sum(axis=0))
    t = np.ascontiguousarray((g * shrink).T)
    if not admittance:
        return t, None
    return t, np.diag(g.sum(axis=1)) - (g * (r_sense * shrink)) @ g.T


def characterise_stack(g: np.ndarray, wires: Wires, admittance: bool = True, *, max_workers: int | None = None):
    """:func:`characterise` of every tile of ``g (tiles, M, N)`` across the cores: ``(T, Y)``
    stacked ``(tiles, N, M)`` and ``(tiles, M, M)`` (or None); bit-for-bit the serial result."""
    g = np.asarray(g, dtype=np.float64)
    if g.ndim != 3:
        raise InputError(f"g: expected (tiles, rows, cols) conductances, got shape {g.shape}")
    pool = CharacterisationPool(wires, admittance, max_workers=max_workers, tiles=g.shape[0])
    try:
        return pool.submit(g).result()
    finally:
        pool.close()


class CharacterisationPool:
    """Characterises the tiles of many conductance stacks on one pool of threads.

    :meth:`submit` queues every tile of a stack and returns a :class:`Pending` at once.  Tiles run
    on ``max_workers`` threads (default ``os.cpu_count()`` when each worker can limit SciPy's
    OpenBLAS to one thread for itself, or ``OPENBLAS_NUM_THREADS=1`` is set, else 1: a
    multi-threaded BLAS under the pool oversubscribes the cores; measured on 2 cores, 128 x 128
    tiles took 81 ms each with 2 workers against 62 ms serially until BLAS was limited).  Each
    worker runs Numba's parallel kernels on ``NUMBA_NUM_THREADS // max_workers`` threads.
    Threads are used only with a thread-safe Numba threading layer (``omp``, ``tbb``);
    otherwise tiles are characterised serially in :meth:`Pending.result`.
    """

    def __init__(self, wires: Wires, admittance: bool = True, *, max_workers: int | None = None,
                 tiles: int | None = None):
        self.wires, self.admittance = wires, admittance
        self._limit_blas = _blas_thread_limiter()
        if max_workers is None:
            single = self._limit_blas is not None or _blas_single_threaded()
            workers = (os.cpu_count() or 1) if single else 1
        else:
            workers = max_workers
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise InputError(f"max_workers: expected an integer >= 1, got {max_workers!r}")
        workers = min(int(workers), max(1, tiles)) if tiles is not None else int(workers)
        self._pool = None
        if workers > 1 and wires.any:
            characterise(np.full((2, 2), 1e-5), wires)  # compiles (or loads) the kernels on this thread
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
            self._limit_blas(1)

    def submit(self, g: np.ndarray) -> Pending:
        """Queue every tile of ``g (tiles, M, N)`` (S); ``.result()`` gives ``(T, Y)``."""
        g = np.asarray(g, dtype=np.float64)
        if g.ndim != 3:
            raise InputError(f"g: expected (tiles, rows, cols) conductances, got shape {g.shape}")
        pending = Pending(self.wires, g, self.admittance)
        if self._pool is not None:
            pending.futures = [self._pool.submit(pending.run, k) for k in range(g.shape[0])]
        return pending

    def close(self, cancel: bool = False) -> None:
        """Stop the worker threads (after the queued tiles, or dropping them with ``cancel``)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None


class Pending:
    """The characterisation of one conductance stack, being computed by a pool."""

    def __init__(self, wires: Wires, g: np.ndarray, admittance: bool = True):
        self.wires, self.g, self.admittance = wires, g, admittance
        t, m, n = g.shape
        self.t, self.y = np.empty((t, n, m)), (np.empty((t, m, m)) if admittance else None)
        self.futures = None
        self.reports = [None] * t  # tile_check.TileReport per tile, once run

    def run(self, k: int) -> None:
        start, log = time.perf_counter(), []
        t, y = characterise(self.g[k], self.wires, self.admittance, log=log)
        path = characterisation_path(t.shape[::-1], self.wires, self.admittance)
        self.reports[k] = tile_report(path, self.g[k], self.wires, t, y, time.perf_counter() - start, log,
                                      sample=True)  # wired tiles checked on a seeded sample
        self.t[k] = t
        if y is not None:
            self.y[k] = y

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(T (tiles, N, M), Y (tiles, M, M) or None)``: waits for the pool (or computes here)."""
        if self.futures is None:
            for k in range(self.g.shape[0]):
                self.run(k)
            self.futures = []
        else:
            for f in self.futures:
                f.result()  # re-raises a worker's exception
        return self.t, self.y


@functools.lru_cache(maxsize=1)
def _blas_thread_limiter():
    """``openblas_set_num_threads_local`` of SciPy's bundled OpenBLAS (the BLAS the crossbar
    kernels call), or None where SciPy links another BLAS.  Per thread (OpenBLAS >= 0.3.27); it
    returns the thread's previous setting."""
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
    """Whether the environment limits OpenBLAS to one thread (read when NumPy loads it)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if var in os.environ:
            return os.environ[var].strip() == "1"
    return False


def _threadsafe_numba() -> bool:
    """Whether Numba's threading layer allows parallel kernels launched from several threads
    (chosen at the first parallel launch, so one tiny parallel kernel is launched first)."""
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
