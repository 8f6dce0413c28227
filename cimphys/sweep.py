"""Parameter sweeps: a function over the Cartesian product of named axes, in parallel, resumable.

``sweep(fn, a=[...], b=[...])`` calls ``fn(a=..., b=...)`` once per point and returns one
``xarray.Dataset`` whose coordinates are the axes.  Points run in local processes by default
(``concurrent.futures.ProcessPoolExecutor``), on a local Dask cluster (``scheduler="dask"``), or
on any Dask distributed cluster (``scheduler="tcp://host:8786"`` or a ``distributed.Client``);
``scheduler="serial"`` runs them in this process.  With ``store=`` the points stream into a
Zarr store as they finish (:mod:`cimphys.store`), and running the same sweep again resumes it.

Randomness: point ``i`` (flat C-order index over the axes) gets its own stream,
``numpy.random.SeedSequence(seed, spawn_key=(i,))`` -- the ``i``-th child of
``SeedSequence(seed).spawn`` -- so a point's numbers depend on ``(seed, i)`` only, never on the
worker count, the order of completion or an interruption.  ``fn`` receives it as ``rng`` (a
``numpy.random.Generator``) and/or ``seed`` (a 64-bit int drawn from that sequence) when its
signature names those parameters.

What ``fn`` returns: an ``xarray.Dataset`` (dims, coordinates and ``units``/``long_name``
attributes are kept), or a dict of numbers/arrays/``xarray.DataArray``; plain arrays get dims
``<name>_dim0, ...`` and ``units = "unknown"`` (return a Dataset to label them).  Values must be
finite numbers or booleans.

Tasks and resume: points travel to workers in tasks of consecutive points, one point each until
the first tasks come back, then as many as fill about 0.5 s at the measured time per point (at
most 64, and fewer at the end so that no worker idles while another finishes), and a task's
points are written to the store together.  A killed sweep loses at most the tasks running at that
moment; a Ctrl-C in ``scheduler="serial"`` first writes the points already finished.

Performance (``benchmarks/bench_sweep.py``: 200 points of the 256x256 crossbar + ADC chain on a
local Dask cluster, 2-core machine shared with other jobs, 2026-11-25).  Overhead per point
(trivial function): Dask 2 workers 0.4-0.9 ms, local processes 0.14-0.34 ms, with a Zarr store
1.1-2.2 ms (budget 50 ms).  Scaling 1 -> 2 workers, wall: 1.76x at load 2.3, 1.68x at load
1.5; 1.13x and 1.08x in runs where other jobs took the cores (load 1.1-2.3 and rising), when the
same points in two plain processes scaled 1.99x and 1.56x in the same runs.  What the sweep
itself costs is read better from CPU time: on one worker a point costs what it costs in a plain
process (42.4-42.7 vs 43.5-44.5 ms); on two, 48.5-53.9 ms each, where two plain processes took
44.8-53.3 ms (a 256x256 solve's ~37 MB of temporaries exceed the shared 32 MB L3, so two points
at once slow each other, more so under other jobs); the client, scheduler and nannies take
0.8-1.6 ms per point.  CPU-bound limit of the scaling on two free cores: 1.54-1.79x.  Before (one task per point,
Dask's defaults; same-run A/B at load 4-7): client 10-15 ms CPU per point, worker 100-120 ms
with 22 ms of it in the kernel for 7700 page faults; after: 3-4 ms and 57-67 ms (0.3 ms, 30-60
faults); 1.55x in the last wall measurement before.

Dask workers started by ``sweep`` (:func:`local_cluster`) run without Dask's
``MALLOC_TRIM_THRESHOLD_``, keep freed memory for the next point, and skip the dashboard's
profiler and fast monitors.  On a cluster of your own, start the workers with
``--preload cimphys.sweep`` for the same allocator setting.

Examples
--------
>>> import cimphys
>>> def power(v, r):
...     return {"p": v * v / r}
>>> ds = cimphys.sweep(power, v=[1.0, 2.0], r=[10.0, 100.0], scheduler="serial")
>>> float(ds.p.sel(v=2.0, r=10.0))
0.4
"""

from __future__ import annotations

import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import contextlib
import difflib
import functools
import inspect
import multiprocessing
import os
import sys
import time
import types
from collections.abc import Iterator, Mapping

import numpy as np
import xarray as xr

from .errors import InputError
from .progress import Progress
from .store import MemoryStore, ZarrStore, fingerprint

__all__ = ["local_cluster", "point_seed", "sweep"]

_RESERVED = ("rng", "seed")
_FORKSERVER_PRELOAD = ("__main__", "cloudpickle", "numpy", "xarray", "cimphys.sweep", "cimphys.store")
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


def sweep(fn, *, store=None, seed=0, scheduler=None, workers=None, progress=None, overwrite=False,
          **axes) -> xr.Dataset:
    """Run ``fn`` over the Cartesian product of ``axes`` and return the labelled results.

    Parameters
    ----------
    fn : callable
        ``fn(**point) -> Dataset | dict``; may also take ``rng`` and/or ``seed`` (see module doc).
        It must be picklable by cloudpickle for process or Dask execution.
    store : str or Path, optional
        Zarr directory to stream points into; an existing store of the same sweep is resumed.
    seed : int
        Root seed (>= 0) of the per-point streams.
    scheduler : None, "processes", "serial", "dask", "tcp://host:port" or distributed.Client
        Where points run; None means "processes".
    workers : int, optional
        Number of local processes or local Dask workers (default: CPU count).
    progress : bool, optional
        Draw a progress bar on stderr (default: only when stderr is a terminal).
    overwrite : bool
        Delete an existing ``store`` instead of resuming it.
    **axes : sequence of numbers or strings
        One keyword per axis, each a non-empty 1-D sequence without repeats.

    Returns
    -------
    xarray.Dataset
        Variables with dims ``(*axes, *their own dims)``; the axes as coordinates.

    Raises
    ------
    InputError
        Unknown axis name, bad axis values, a store of another sweep, bad ``fn`` results.
    """
    checked = _check_axes(fn, axes)
    seed = _check_seed(seed)
    fp = fingerprint(_identity(fn, store), seed, checked)
    sink = MemoryStore(fp) if store is None else ZarrStore(store, fp, overwrite=overwrite)
    pending = np.flatnonzero(~sink.done_mask())
    tasks = [(int(i), _point(checked, sink.shape, int(i))) for i in pending]
    call = _Call(fn, seed)
    results = _execute(call, tasks, scheduler, workers)
    with Progress(sink.n_points, label="sweep", enabled=progress) as bar, contextlib.closing(results):
        bar.advance(sink.n_points - len(tasks))
        for finished in results:  # the points of one task: written together, data before marks
            sink.write_points(finished)
            bar.advance(len(finished))
    return sink.to_dataset()


def point_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of point ``index`` of a sweep with root ``seed``."""
    return np.random.SeedSequence(int(seed), spawn_key=(int(index),))


# -- checking -------------------------------------------------------------------------------
def _check_axes(fn, axes: Mapping) -> dict[str, np.ndarray]:
    if not callable(fn):
        raise InputError(f"fn: expected a callable, got {fn!r:.80}")
    if not axes:
        raise InputError("axes: give at least one axis, e.g. sweep(fn, v=[0.1, 0.2])")
    params = _parameters(fn)
    out = {}
    for name, values in axes.items():
        if name in _RESERVED:
            raise InputError(f"axis {name!r}: the name is reserved for the per-point random stream")
        if params is not None and name not in params:
            close = difflib.get_close_matches(name, [p for p in params if p not in _RESERVED], n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise InputError(f"axis {name!r}: {_qualname(fn)} has no parameter {name!r}{hint}")
        out[name] = _check_axis(name, values)
    return out


def _check_axis(name: str, values) -> np.ndarray:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise InputError(f"axis {name!r}: expected a sequence of values, got {values!r:.80}")
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"axis {name!r}: expected a non-empty 1-D sequence, got shape {arr.shape}")
    if arr.dtype.kind in "UO":
        if not all(isinstance(v, str) for v in values):
            raise InputError(f"axis {name!r}: mix numbers and strings in one axis is not allowed")
        arr = arr.astype(str)
    elif arr.dtype.kind in "iu" or arr.dtype == bool:
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InputError(f"axis {name!r}: expected finite values, got {arr[~np.isfinite(arr)][0]!r}")
        arr = arr.astype(np.float64)
    else:
        raise InputError(f"axis {name!r}: expected numbers or strings, got dtype {arr.dtype}")
    if len(np.unique(arr)) != arr.size:
        raise InputError(f"axis {name!r}: values repeat ({arr.tolist()!r:.80})")
    return arr


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: expected an int >= 0, got {seed!r}")
    return int(seed)


def _parameters(fn) -> set[str] | None:
    """Names ``fn`` accepts as keywords, or None when it takes ``**kwargs``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = {p.kind for p in sig.parameters.values()}
    if inspect.Parameter.VAR_KEYWORD in kinds:
        return None
    return {n for n, p in sig.parameters.items() if p.kind is not inspect.Parameter.POSITIONAL_ONLY}


def _identity(fn, store) -> str:
    """``fn``'s name for the store's fingerprint: its qualified name and, for a
    ``functools.partial``, a digest of the arguments it binds (so a store computed with other
    bound values is refused, not resumed)."""
    name = _qualname(fn)
    if not isinstance(fn, functools.partial) or not (fn.args or fn.keywords):
        return name
    from .cache import cache_key

    try:
        return f"{name}[{cache_key(list(fn.args), dict(fn.keywords))[:16]}]"
    except (TypeError, OSError) as exc:
        if store is None:
            return name  # nothing is resumed without a store
        raise InputError(f"store: the arguments fn binds cannot be fingerprinted ({exc}); bind numbers, "
                         "strings, arrays or dataclasses (e.g. cards), or pass them as axes") from None


def _qualname(fn) -> str:
    target = getattr(fn, "func", fn)  # functools.partial
    module = getattr(target, "__module__", None) or type(target).__module__
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}"


def _point(axes: dict[str, np.ndarray], shape: tuple[int, ...], index: int) -> dict:
    where = np.unravel_index(index, shape)
    return {name: values[i].item() for (name, values), i in zip(axes.items(), where)}


# -- one point ------------------------------------------------------------------------------
class _Call:
    """``fn`` with the calling convention resolved once; picklable when ``fn`` is."""

    def __init__(self, fn, seed: int):
        params = _parameters(fn) or set()
        self.fn, self.seed = fn, seed
        self.wants_rng, self.wants_seed = "rng" in params, "seed" in params

    def __call__(self, index: int, point: dict) -> tuple[int, dict]:
        kwargs = dict(point)
        sequence = point_seed(self.seed, index)
        if self.wants_rng:
            kwargs["rng"] = np.random.default_rng(sequence)
        if self.wants_seed:
            kwargs["seed"] = int(sequence.generate_state(1, np.uint64)[0])
        return index, _record(self.fn(**kwargs), index, point)


def _record(result, index: int, point: dict) -> dict:
    """Normalise what ``fn`` returned to ``{"vars": {...}, "coords": {...}}`` of plain arrays."""
    if isinstance(result, xr.DataArray):
        result = result.to_dataset(name=result.name or "value")
    if isinstance(result, xr.Dataset):
        items = result.data_vars.items()
        coords = {n: (c.dims, np.asarray(c.values), dict(c.attrs)) for n, c in result.coords.items()}
    elif isinstance(result, Mapping):
        items = result.items()
        coords = {}
    else:
        raise InputError(f"point {point}: fn must return a Dataset or a dict, got {type(result).__name__}")
    out = {}
    for name, value in items:
        if isinstance(value, xr.DataArray):
            dims, values, attrs = value.dims, np.asarray(value.values), dict(value.attrs)
            coords.update({n: (c.dims, np.asarray(c.values), dict(c.attrs)) for n, c in value.coords.items()})
        else:
            values = np.asarray(value)
            dims = tuple(f"{name}_dim{k}" for k in range(values.ndim))
            attrs = {"units": "unknown", "long_name": str(name)}
        if values.dtype.kind not in "biuf":
            raise InputError(f"point {point}: {name!r} is not numeric (dtype {values.dtype})")
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise InputError(f"point {point}: fn returned non-finite values in {name!r}")
        attrs.setdefault("units", "unknown")
        attrs.setdefault("long_name", str(name))
        out[str(name)] = (tuple(dims), values, attrs)
    return {"vars": out, "coords": {n: c for n, c in coords.items() if n not in point}}


# -- execution ------------------------------------------------------------------------------
def _execute(call: _Call, tasks, scheduler, workers) -> Iterator[list[tuple[int, dict]]]:
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
    """Dask preload hook of the workers of :func:`local_cluster` (``preload=["cimphys.sweep"]``):
    glibc keeps freed memory for the next point (see ``_MMAP_THRESHOLD``)."""
    global _WORKER_TUNED
    _WORKER_TUNED = _keep_freed_memory()


def _run_batch(call: _Call, batch: list) -> tuple[list, float]:
    """Runs in a worker: the points of one task, and the seconds they took."""
    start = time.perf_counter()
    finished = [call(index, point) for index, point in batch]
    return finished, time.perf_counter() - start


def _run_serial(call: _Call, tasks):
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


def _run_processes(call: _Call, tasks, workers: int):
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


def _run_dask(call: _Call, tasks, scheduler, workers: int):
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


class _CallableModule(types.ModuleType):
    """Importing ``cimphys.sweep`` (the module) replaces the lazy ``cimphys.sweep`` (the
    function) on the package; calling the module calls the function, so both spellings work."""

    def __call__(self, fn, **kwargs):
        return sweep(fn, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
