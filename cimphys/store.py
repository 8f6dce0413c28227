"""Where a sweep's points go as they finish: memory, or a Zarr store that a stopped run resumes.

A sweep over axes ``a`` (length 3) and ``b`` (length 4) has 12 points, numbered in C order
(``index = ia * 4 + ib``).  Each point yields a *record*: ``{name: (dims, values, attrs)}`` for
its variables, plus the coordinates of their own dims (not the sweep axes).  The first record
fixes the *schema* (names, dims, shapes, dtypes, units); every later record must match it.

:class:`ZarrStore` lays the sweep out as a Zarr (v3) group that ``xarray.open_zarr`` reads
directly: each variable has dims ``(*axes, *its own dims)`` and chunks of up to 64 points that are
consecutive in the flat index (at most 1 MiB; a larger point gets a chunk of its own), the axes
are coordinate arrays, and a flat ``_done`` array (one byte per point) marks the points whose data
are complete.  The points of one sweep task are written together: their data first, then their
``_done`` bytes in one write.  Zarr's local store replaces each chunk file atomically (write to a
temporary file, then rename), and a chunk shared with earlier points is read, updated and
rewritten whole, so a run killed at any instant leaves every point either complete and marked, or
unmarked and recomputed on resume: nothing finished is lost and nothing unfinished is trusted.

The group's attributes hold the sweep's *fingerprint* (axes with their values, the function's
qualified name, the seed); reopening a store whose fingerprint differs raises
:class:`~cimphys.errors.InputError` instead of mixing two campaigns, and an existing store is
only deleted with ``overwrite=True``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import InputError

__all__ = ["MemoryStore", "ZarrStore", "fingerprint", "open_sweep"]

FORMAT_VERSION = 1
_DONE = "_done"
_DONE_CHUNK = 4096  # points per chunk of the done mask: 4 kB rewritten per finished task
# Data chunks hold several consecutive points, so that the points of one sweep task (which are
# consecutive) land in one or two chunk files per variable instead of one file each: Zarr costs
# ~1 ms CPU per chunk written, which was 4.7 ms per point for 4 scalar variables.
_CHUNK_POINTS = 64
_CHUNK_BYTES = 1 << 20  # per chunk; a point larger than this gets a chunk to itself


def fingerprint(function: str, seed: int, axes: Mapping[str, np.ndarray]) -> dict:
    """The identity of a sweep: function name, seed, axis names and values, and their hash."""
    body = {
        "function": str(function),
        "seed": int(seed),
        "axes": {name: [_plain(v) for v in values] for name, values in axes.items()},
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {**body, "sha256": digest}


def _plain(value):
    """A JSON value for an axis entry (numpy scalars to Python numbers/strings)."""
    return value.item() if isinstance(value, np.generic) else value


class MemoryStore:
    """Keeps the records of a sweep in memory and assembles the Dataset at the end."""

    def __init__(self, fp: dict):
        self.fingerprint = fp
        self.axes = {name: _axis_array(values) for name, values in fp["axes"].items()}
        self.shape = tuple(len(v) for v in self.axes.values())
        self.n_points = int(np.prod(self.shape, dtype=np.int64))
        self.schema: dict | None = None
        self._data: dict[str, np.ndarray] = {}
        self._done = np.zeros(self.n_points, dtype=bool)

    # -- schema ---------------------------------------------------------------------------
    def _set_schema(self, record: dict) -> None:
        clash = set(self.axes) & {d for dims, _, _ in record["vars"].values() for d in dims}
        if clash:
            raise InputError(f"fn returned variables with a sweep axis as their own dim: {sorted(clash)}")
        self.schema = {
            "vars": {
                name: {"dims": list(dims), "shape": list(np.shape(values)), "dtype": _kind(values).str,
                       "attrs": dict(attrs)}
                for name, (dims, values, attrs) in record["vars"].items()
            },
            "coords": {
                name: {"dims": list(dims), "values": np.asarray(values).tolist(), "attrs": dict(attrs)}
                for name, (dims, values, attrs) in record["coords"].items()
            },
        }

    def _check(self, index: int, record: dict) -> None:
        want = self.schema["vars"]
        got = record["vars"]
        if set(got) != set(want):
            raise InputError(
                f"point {index}: fn returned variables {sorted(got)}, earlier points {sorted(want)}"
            )
        for name, (dims, values, _) in got.items():
            spec = want[name]
            if list(dims) != spec["dims"] or list(np.shape(values)) != spec["shape"]:
                raise InputError(
                    f"point {index}: variable {name!r} has dims {tuple(dims)} shape {np.shape(values)}, "
                    f"earlier points {tuple(spec['dims'])} shape {tuple(spec['shape'])}"
                )
            if _kind(values).kind != np.dtype(spec["dtype"]).kind:
                raise InputError(
                    f"point {index}: variable {name!r} changed type to {_kind(values)} from {spec['dtype']}"
                )

    # -- writing --------------------------------------------------------------------------
    def done_mask(self) -> np.ndarray:
        """Boolean mask over the flat point index: True where the point is complete."""
        return self._done.copy()

    def write_point(self, index: int, record: dict) -> None:
        """Store one finished point (a record as built by ``cimphys.sweep``)."""
        self.write_points([(index, record)])

    def write_points(self, items) -> None:
        """Store finished points, ``[(index, record), ...]``: every point's data first, then all
        their done marks in one write."""
        items = list(items)
        if not items:
            return
        if self.schema is None:
            self._set_schema(items[0][1])
            self._create()
        for index, record in items:
            self._check(index, record)
        indices = np.array([index for index, _ in items], dtype=np.int64)
        where = np.unravel_index(indices, self.shape)
        for name in self.schema["vars"]:
            values = np.stack([np.asarray(record["vars"][name][1]) for _, record in items])
            self._put(name, where, values)
        self._mark_done(indices)

    def _create(self) -> None:
        for name, spec in self.schema["vars"].items():
            dtype = np.dtype(spec["dtype"])
            self._data[name] = np.full(self.shape + tuple(spec["shape"]), _fill(dtype), dtype=dtype)

    def _put(self, name, where, values) -> None:
        """``values[k]`` goes to the point at ``tuple(w[k] for w in where)``."""
        self._data[name][where] = values

    def _mark_done(self, indices: np.ndarray) -> None:
        self._done[indices] = True

    def _array(self, name: str) -> np.ndarray:
        return self._data[name]

    # -- reading --------------------------------------------------------------------------
    def to_dataset(self, partial: bool = False) -> xr.Dataset:
        """The sweep as a Dataset with the axes as coordinates.

        Raises :class:`InputError` if points are missing, unless ``partial=True`` (then a
        boolean ``done`` variable marks the complete points and the others hold NaN/0).
        """
        done = self.done_mask()
        if not partial and not done.all():
            raise InputError(f"sweep incomplete: {int(done.sum())} of {self.n_points} points done")
        if self.schema is None:
            raise InputError("sweep has no finished points yet")
        axes = tuple(self.axes)
        coords = {name: (name, values) for name, values in self.axes.items()}
        for name, spec in self.schema["coords"].items():
            coords[name] = xr.Variable(spec["dims"], np.asarray(spec["values"]), attrs=spec["attrs"])
        data = {
            name: xr.Variable(axes + tuple(spec["dims"]), self._array(name), attrs=spec["attrs"])
            for name, spec in self.schema["vars"].items()
        }
        if partial:
            data["done"] = xr.Variable(axes, done.reshape(self.shape),
                                       attrs={"units": "1", "long_name": "point finished"})
        fp = self.fingerprint
        attrs = {"sweep_function": fp["function"], "sweep_seed": fp["seed"], "sweep_sha256": fp["sha256"]}
        return xr.Dataset(data, coords=coords, attrs=attrs)


class ZarrStore(MemoryStore):
    """A sweep streamed into a Zarr group on disk, resumable after any interruption.

    Parameters
    ----------
    path : str or Path
        Directory of the Zarr group (by convention ending in ``.zarr``).
    fp : dict
        The sweep's :func:`fingerprint`.
    overwrite : bool
        Delete an existing store at ``path`` first.  Without it, an existing store with the
        same fingerprint is resumed and one with another fingerprint is refused.
    """

    def __init__(self, path, fp: dict, *, overwrite: bool = False):
        import zarr

        super().__init__(fp)
        self.path = Path(path)
        if self.path.suffix in (".nc", ".nc4", ".h5", ".netcdf"):
            raise InputError(
                f"store: {self.path} is a NetCDF name; a sweep streams into Zarr (a directory such as "
                f"'{self.path.with_suffix('.zarr')}'); save the finished Dataset with cimphys.save"
            )
        if self.path.exists() and overwrite:
            _remove_store(self.path)
        if self.path.exists():
            self._group = zarr.open_group(self.path, mode="r+")
            self._resume()
        else:
            self._group = zarr.open_group(self.path, mode="w-")
            self._write_axes()
            self._done_array = self._group.create_array(
                _DONE, shape=(self.n_points,), dtype="uint8", chunks=(min(self.n_points, _DONE_CHUNK),),
                fill_value=0, dimension_names=["point"])
            # The fingerprint goes in last: a store whose creation was cut short reads as foreign.
            self._group.attrs.update({"cimphys_format": FORMAT_VERSION, "cimphys_fingerprint": fp})

    def _write_axes(self) -> None:
        for name, values in self.axes.items():
            dtype = str if values.dtype.kind in "UO" else values.dtype
            arr = self._group.create_array(name, shape=values.shape, dtype=dtype, chunks=values.shape,
                                           dimension_names=[name])
            arr[:] = values

    def _resume(self) -> None:
        attrs = dict(self._group.attrs)
        theirs = attrs.get("cimphys_fingerprint")
        if attrs.get("cimphys_format") != FORMAT_VERSION or not isinstance(theirs, dict):
            raise InputError(f"store: {self.path} exists and is not a cimphys sweep store "
                             f"(pass overwrite=True to replace it)")
        if theirs.get("sha256") != self.fingerprint["sha256"]:
            diff = [k for k in ("function", "seed", "axes") if theirs.get(k) != self.fingerprint[k]]
            raise InputError(
                f"store: {self.path} was written by another sweep (differs in {', '.join(diff)}: "
                f"{ {k: theirs.get(k) for k in diff} }); use another path or overwrite=True"
            )
        self._done_array = self._group[_DONE]
        self.schema = attrs.get("cimphys_schema")
        if self.schema is not None:
            self._arrays = {name: self._group[name] for name in self.schema["vars"]}

    def done_mask(self) -> np.ndarray:
        return np.asarray(self._done_array[:], dtype=bool)

    def _create(self) -> None:
        self._arrays = {}
        for name, spec in self.schema["vars"].items():
            dtype = np.dtype(spec["dtype"])
            shape = self.shape + tuple(spec["shape"])
            own = tuple(max(n, 1) for n in spec["shape"])
            per_chunk = _points_per_chunk(dtype.itemsize * int(np.prod(own, dtype=np.int64)))
            self._arrays[name] = self._group.create_array(
                name, shape=shape, dtype=dtype, chunks=_point_chunks(self.shape, per_chunk) + own,
                fill_value=_fill(dtype), dimension_names=list(self.axes) + spec["dims"],
                attributes=spec["attrs"], overwrite=True,  # left over if a run died while creating
            )
        for name, spec in self.schema["coords"].items():
            values = np.asarray(spec["values"])
            dtype = str if values.dtype.kind in "UO" else values.dtype
            arr = self._group.create_array(name, shape=values.shape, dtype=dtype,
                                           chunks=tuple(max(n, 1) for n in values.shape) or None,
                                           dimension_names=spec["dims"], attributes=spec["attrs"],
                                           overwrite=True)
            arr[...] = values
        # The schema goes in last: a store killed before this point has no data yet.
        self._group.attrs["cimphys_schema"] = self.schema

    def _put(self, name, where, values) -> None:
        array = self._arrays[name]
        n_axes = len(self.shape)
        if np.prod(array.chunks[:n_axes]) == 1:  # one chunk per point: plain writes
            for k in range(len(values)):
                array[tuple(int(w[k]) for w in where)] = values[k]
            return
        # One coordinate selection: Zarr reads, updates and rewrites each touched chunk once.
        own = values.shape[1:]
        grid = np.indices(own, sparse=True) if own else ()
        shape = values.shape
        index = tuple(np.broadcast_to(w.reshape((-1,) + (1,) * len(own)), shape) for w in where)
        index += tuple(np.broadcast_to(g[None], shape) for g in grid)
        array.vindex[index] = values

    def _mark_done(self, indices: np.ndarray) -> None:
        self._done_array[np.sort(indices)] = 1

    def _array(self, name: str) -> np.ndarray:
        return np.asarray(self._arrays[name][...])


def open_sweep(path, partial: bool = False) -> xr.Dataset:
    """Open a sweep store written by ``cimphys.sweep`` as a Dataset (loaded into memory).

    Raises
    ------
    InputError
        If ``path`` is not a sweep store, or it is incomplete and ``partial`` is False.
    """
    import zarr

    path = Path(path)
    if not path.is_dir():
        raise InputError(f"store: {path}: no such sweep store")
    attrs = dict(zarr.open_group(path, mode="r").attrs)
    fp = attrs.get("cimphys_fingerprint")
    if not isinstance(fp, dict):
        raise InputError(f"store: {path} is not a cimphys sweep store")
    return ZarrStore(path, fp).to_dataset(partial=partial)


def _remove_store(path: Path) -> None:
    if path.is_dir() and not (path / "zarr.json").is_file() and any(path.iterdir()):
        raise InputError(f"store: refusing to delete {path}: not a Zarr store")
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _points_per_chunk(bytes_per_point: int) -> int:
    """Points sharing one chunk of a variable: up to ``_CHUNK_POINTS``, within ``_CHUNK_BYTES``."""
    return int(max(1, min(_CHUNK_POINTS, _CHUNK_BYTES // max(int(bytes_per_point), 1))))


def _point_chunks(shape: tuple[int, ...], n: int) -> tuple[int, ...]:
    """Chunk shape over the sweep axes holding at most ``n`` points that are consecutive in the
    flat (C-order) point index: whole trailing axes, then part of the next one, then ones."""
    chunks = []
    for length in reversed(shape):
        take = max(1, min(length, n))
        chunks.append(take)
        n = n // length if take == length else 1
    return tuple(reversed(chunks))


def _axis_array(values) -> np.ndarray:
    arr = np.asarray(values)
    return arr.astype(str) if arr.dtype.kind in "UO" else arr


def _kind(values) -> np.dtype:
    """The stored dtype of a value: bool, int64 or float64."""
    dtype = np.asarray(values).dtype
    if dtype == bool:
        return np.dtype(bool)
    if dtype.kind in "iu":
        return np.dtype(np.int64)
    return np.dtype(np.float64)


def _fill(dtype: np.dtype):
    return np.nan if dtype.kind == "f" else dtype.type(0)
