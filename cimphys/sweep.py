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
moment; a Ctrl-C in ``scheduler="serial"`` first writes the points already finished.  The
overhead per point and the scaling over workers: ``benchmarks/bench_sweep.py``.

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

import contextlib
import difflib
import functools
import inspect
import sys
import types
from collections.abc import Mapping

import numpy as np
import xarray as xr

from .errors import InputError
from .progress import Progress
from .store import MemoryStore, ZarrStore, fingerprint
from .sweep_workers import WORKER_ENV, dask_setup, execute, local_cluster

__all__ = ["WORKER_ENV", "dask_setup", "local_cluster", "point_seed", "qualname", "sweep"]

_RESERVED = ("rng", "seed")


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
    results = execute(call, tasks, scheduler, workers)
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
            raise InputError(f"axis {name!r}: {qualname(fn)} has no parameter {name!r}{hint}")
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
    name = qualname(fn)
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


def qualname(fn) -> str:
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


class _CallableModule(types.ModuleType):
    """Importing ``cimphys.sweep`` (the module) replaces the lazy ``cimphys.sweep`` (the
    function) on the package; calling the module calls the function, so both spellings work."""

    def __call__(self, fn, **kwargs):
        return sweep(fn, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
