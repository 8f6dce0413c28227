"""Where a sweep's points run: in this process, in local processes, or on a Dask cluster.

:func:`execute` hands tasks of consecutive points (:class:`_Batches` sizes them to about
``_TASK_SECONDS`` each) to the scheduler ``sweep`` chose and yields the finished records one
task at a time, so that :func:`cimphys.sweep.sweep` writes them as they come.  Workers run one
point per core (:data:`WORKER_ENV`), keep freed memory for the next point
(:func:`dask_setup`), and die with their parent.  The overhead per point and the scaling over
workers: ``benchmarks/bench_sweep.py``.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from .errors import InputError

__all__ = ["WORKER_ENV", "dask_setup", "execute", "local_cluster"]

_FORKSERVER_PRELOAD = ("__main__", "cloudpickle", "numpy", "xarray", "cimphys.sweep", "cimphys.sweep_workers", "cimphys.store")
# One point per core: a point's own threads (Numba, OpenBLAS/OpenMP) would only oversubscribe.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Points travel in tasks of consecutive points (see _Batches): one task per point cost the client
# and scheduler ~6 ms of CPU and the worker ~5 ms more, 13 % of an 82 ms crossbar point, taken
# from the same two cores that the two workers need.
_TASK_SECONDS = 0.5  # aimed-at duration of a task: per-task costs below 2 %, little lost on a kill
_MAX_POINTS_PER_TASK = 64  # however fast the points: a killed sweep loses at most this many per worker
_IN_FLIGHT_PER_WORKER = 2  # one task running, one waiting: no idle gap between tasks
# Dask settings of the clusters that sweep starts (local_cluster).  The nannies' default
# MALLOC_TRIM_THRESHOLD_=65536 switches off glibc's dynamic mmap threshold, so every array above
# 128 kB is mmapped and unmapped afresh: a 256x256 crossbar point took 7300 page faults and 17 ms
# of system time instead of 2000-4000 and 5-12 ms (an 82 ms point; worse with 2 workers, which
# fault in parallel).  The monitoring feeds a dashboard that these clusters do not serve: idle,
# client + scheduler + nannies 39 -> 12 ms CPU/s, each worker 28 -> 6 ms CPU/s (2 workers).
_DASK_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,  # None: not set at all
    "distributed.worker.profile.enabled": False,  # stack sampling every 10 ms, for the dashboard
    "distributed.admin.tick.interval": "1s",  # event-loop watchdog (20 ms); still warns at 3 s
    "distributed.admin.system-monitor.interval": "5s",  # psutil CPU/net/disk history (500 ms)
}
# glibc malloc in a sweep worker: memory a point freed is kept for the next point instead of being
# returned to the OS and faulted in again (zeroed by the kernel, one page at a time).  Arrays up
# to 32 MiB (glibc's own ceiling for its dynamic mmap threshold) come from the heap, and up to
# 1 GiB of free heap top is kept: a worker's resident memory stays at its largest point's peak.
# Measured, 256x256 crossbar point in a plain process: 4450 page faults and 9.5 ms system time
# -> 0 and 0, user time unchanged, peak RSS 254 -> 257 MB.
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 1 << 30


def execute(call, tasks, scheduler, workers) -> Iterator[list[tuple[int, dict]]]:
    """Run the points; yields the finished ``(index, record)`` pairs one task at a time."""
    workers = _check_workers(workers)
    if not tasks or scheduler == "serial":
        return _run_serial(call, tasks)
    if scheduler is None or scheduler == "processes":
        return _run_processes(call, tasks, workers)
    if scheduler == "dask" or _is_client(scheduler) or (isinstance(scheduler, str) and "://" in scheduler):
        return _run_dask(call, tasks, scheduler, workers)
    raise InputError(
        f"scheduler: expected None, 'processes', 'serial', 'dask', 'tcp://host:port' or a "
        f"distributed.Client, got {scheduler!r:.80}"
    )


def _check_workers(workers) -> int:
    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InputError(f"workers: expected an int >= 1, got {workers!r}")
    return int(workers)


class _Batches:
    """Cuts the pending points into tasks of consecutive points, sized from measured time.

    The first tasks hold one point each.  Once tasks come back (:meth:`record`), a task gets
    as many points as fill ``target_s`` at the measured mean seconds per point, but at most
    ``cap`` (what a killed sweep can lose per worker) and at most the points not yet handed
    out divided by ``2 * n_workers``, so that the last tasks shrink to single points and no
    worker idles at the end while another finishes a long task.  Which worker runs a task is
    left to the scheduler; the points and their seeds do not depend on the cut.
    """

    def __init__(self, tasks, n_workers: int, target_s: float = _TASK_SECONDS,
                 cap: int = _MAX_POINTS_PER_TASK):
        self._tasks = list(tasks)
        self._next = 0
        self._n_workers, self._target_s, self._cap = max(int(n_workers), 1), float(target_s), int(cap)
        self._points, self._seconds = 0, 0.0

    def record(self, n_points: int, seconds: float) -> None:
        """A task of ``n_points`` points took ``seconds`` on its worker."""
        self._points += int(n_points)
        self._seconds += max(float(seconds), 0.0)

    def size(self) -> int:
        """Points in the next task (0 when every point has been handed out)."""
        remaining = len(self._tasks) - self._next
        if remaining <= 0:
            return 0
        if self._points == 0:
            return 1
        per_point = self._seconds / self._points
        size = self._cap if per_point <= 0.0 else round(self._target_s / per_point)
        tail = -(-remaining // (2 * self._n_workers))
        return max(1, min(size, self._cap, tail))

    def take(self) -> list[tuple[int, dict]]:
        """The next task's ``(index, point)`` pairs; empty when none are left."""
        n = self.size()
        batch = self._tasks[self._next:self._next + n]
        self._next += n
        return batch


def _keep_freed_memory() -> bool:
    """Set this process's glibc malloc to keep freed memory (``_MMAP_THRESHOLD``,
    ``_TRIM_THRESHOLD``); False, and nothing changed, where the C library has no ``mallopt``."""
    import ctypes

    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(m_mmap_threshold, _MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, _TRIM_THRESHOLD))


_WORKER_TUNED = False


def dask_setup(worker=None) -> None:
    """Dask preload hook of the workers of :func:`local_cluster` (``preload=[this module]``;
    ``--preload cimphys.sweep`` reaches it too): glibc keeps freed memory for the next point
    (see ``_MMAP_THRESHOLD``)."""
    global _WORKER_TUNED
    _WORKER_TUNED = _keep_freed_memory()


def _run_batch(call, batch: list) -> tuple[list, float]:
    """Runs in a worker: the points of one task, and the seconds they took."""
    start = time.perf_counter()
    finished = [call(index, point) for index, point in batch]
    return finished, time.perf_counter() - start


def _run_serial(call, tasks):
    """The points in this process, handed on in the same groups as a pool's tasks; an exception
    (Ctrl-C included) first hands on the points of the group that finished before it."""
    batches = _Batches(tasks, 1)
    while batch := batches.take():
        finished, start = [], time.perf_counter()
        try:
            for index, point in batch:
                finished.append(call(index, point))
        except BaseException:
            if finished:
                yield finished
            raise
        batches.record(len(finished), time.perf_counter() - start)
        yield finished


_WORKER_CALL = None


def _init_worker(payload: bytes) -> None:
    import cloudpickle

    global _WORKER_CALL
    _die_with_parent()
    dask_setup()
    # One point per core: a point's own parallel kernels would only oversubscribe the cores.
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(1)
    else:
        os.environ["NUMBA_NUM_THREADS"] = "1"
    _WORKER_CALL = cloudpickle.loads(payload)


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this worker when the process that started it dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``), so a killed sweep leaves no worker computing points nobody
    will store.  Under forkserver the parent is the fork server, which exits with the main
    process.  Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no prctl: nothing to set
        return
    if os.getppid() == 1:  # the parent died before the call above: nobody to work for
        os._exit(1)


def _mp_context():
    """fork while no Numba/OpenMP thread pool runs in this process (fast start, nothing to
    re-import); otherwise forkserver, because forking a process whose OpenMP threads have run is
    unsafe (spawn where forkserver does not exist)."""
    methods = multiprocessing.get_all_start_methods()
    pool = sys.modules.get("numba.np.ufunc.parallel")
    if "fork" in methods and (pool is None or not pool._is_initialized):
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Imported once by the server (before its first fork), not by every worker it forks.
    context.set_forkserver_preload(list(_FORKSERVER_PRELOAD))
    return context


def _in_worker(batch: list):
    return _run_batch(_WORKER_CALL, batch)


def _run_processes(call, tasks, workers: int):
    import cloudpickle

    payload = cloudpickle.dumps(call)  # lambdas and local functions travel too
    batches = _Batches(tasks, workers)
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=_init_worker,
                                initargs=(payload,)) as pool:
        running = set()
        try:
            while True:
                while len(running) < workers * _IN_FLIGHT_PER_WORKER and (batch := batches.take()):
                    running.add(pool.submit(_in_worker, batch))
                if not running:
                    return
                finished, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    records, seconds = future.result()
                    batches.record(len(records), seconds)
                    yield records
        except BrokenProcessPool as exc:
            pool.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError(
                "a sweep worker process died (killed, out of memory or crashed); every point finished "
                "before it is kept in the store: run the same sweep again to resume"
            ) from exc
        except BaseException:
            for future in running:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _is_client(obj) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def local_cluster(workers: int):
    """The local Dask cluster that ``scheduler="dask"`` starts: ``workers`` processes of one
    thread each, single-threaded BLAS/Numba (:data:`WORKER_ENV`), glibc keeping freed memory
    (:func:`dask_setup`), no dashboard and none of the monitoring that only feeds one
    (``_DASK_CONFIG``).

    Returns a ``distributed.LocalCluster``; the caller closes it.
    """
    import dask
    from distributed import LocalCluster

    workers = _check_workers(workers)
    with dask.config.set(_DASK_CONFIG):  # the scheduler reads it here, the nannies pass it on
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=None, env=WORKER_ENV, preload=[__name__])


def _run_dask(call, tasks, scheduler, workers: int):
    from distributed import Client, as_completed

    own = []
    if _is_client(scheduler):
        client = scheduler
    elif scheduler == "dask":
        cluster = local_cluster(workers)
        client = Client(cluster)
        own = [client, cluster]
    else:
        client = Client(scheduler)
        own = [client]
    try:
        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        batches = _Batches(tasks, n_workers)
        # hash=False: a unique key per sweep, so that two sweeps (or clients) sharing a scheduler never
        # release each other's copy of the scattered function ("lost dependencies").
        [call_future] = client.scatter([call], broadcast=True, hash=False)

        def submit(batch):
            return client.submit(_run_batch, call_future, batch, pure=False)

        first = []
        while len(first) < n_workers * _IN_FLIGHT_PER_WORKER and (batch := batches.take()):
            first.append(submit(batch))
        stream = as_completed(first, with_results=True)  # results gathered on the client's IO loop
        for future, (records, seconds) in stream:
            future.release()
            batches.record(len(records), seconds)
            if batch := batches.take():  # the next task goes out before this one is written
                stream.add(submit(batch))
            yield records
    finally:
        for obj in own:
            obj.close()
