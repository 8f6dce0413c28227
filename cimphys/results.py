"""Labelled results: xarray Datasets with units, saved to and opened from NetCDF.

Every variable of a result carries ``attrs["units"]`` (SI, ``"1"`` for dimensionless) and
``attrs["long_name"]``.  :func:`save` refuses a Dataset that lacks them, so that every file
cimphys writes labels itself in any NetCDF reader.  NetCDF-4 through h5netcdf is used when it
is installed; otherwise scipy's NetCDF-3 writer, which needs no C library.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import InputError

__all__ = ["check_labelled", "open", "replacing", "save", "variable"]

_BOOL_FLAG = "cimphys_dtype"


def variable(dims, data, units: str, long_name: str, **attrs) -> xr.Variable:
    """An ``xarray.Variable`` with its ``units`` and ``long_name``."""
    return xr.Variable(dims, np.asarray(data), attrs={"units": units, "long_name": long_name, **attrs})


def check_labelled(ds: xr.Dataset) -> None:
    """Raise :class:`InputError` naming every data variable without ``units``/``long_name``."""
    missing = [
        f"{name} ({', '.join(a for a in ('units', 'long_name') if a not in var.attrs)})"
        for name, var in ds.data_vars.items()
        if "units" not in var.attrs or "long_name" not in var.attrs
    ]
    if missing:
        raise InputError(f"dataset variables lack attributes: {'; '.join(missing)}")


def _engine() -> str:
    has_hdf5 = all(importlib.util.find_spec(m) for m in ("h5netcdf", "h5py"))
    return "h5netcdf" if has_hdf5 else "scipy"


def _netcdf3_safe(ds: xr.Dataset) -> xr.Dataset:
    """Recast what NetCDF-3 cannot store: booleans as int8, int64 as int32 when it fits."""
    out = ds.copy()
    for name, var in {**out.data_vars, **out.coords}.items():
        if var.dtype == bool:
            out[name] = var.astype(np.int8).assign_attrs({**var.attrs, _BOOL_FLAG: "bool"})
        elif var.dtype.kind in "iu" and var.dtype.itemsize == 8:
            values = np.asarray(var)
            if values.size and (values.min() < np.iinfo(np.int32).min or values.max() > np.iinfo(np.int32).max):
                out[name] = var.astype(np.float64)
            else:
                out[name] = var.astype(np.int32)
    for key, value in list(out.attrs.items()):
        if isinstance(value, bool):
            out.attrs[key] = int(value)
        elif isinstance(value, Mapping) or value is None:
            out.attrs[key] = str(value)
    return out


def save(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a labelled Dataset to NetCDF and return the path written.

    Raises
    ------
    InputError
        If a data variable lacks ``units`` or ``long_name``.
    """
    check_labelled(ds)
    path = Path(path)
    engine = _engine()
    out = _netcdf3_safe(ds) if engine == "scipy" else ds
    with replacing(path) as tmp:
        out.to_netcdf(tmp, engine=engine)
    return path


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` on success.

    The temporary file has a unique name in the same folder (``tempfile.mkstemp``, so two
    writers never share one), is ``fsync``-ed and then renamed (atomic on POSIX): a reader sees
    the old file or the new one, never half of one, and a writer that fails or is killed leaves
    at most its own ``.part`` file.  Used for results and figures alike.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> with replacing(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        tmp.replace(path)  # never leave a half-written result under the final name
    finally:
        tmp.unlink(missing_ok=True)


def open(path: str | Path) -> xr.Dataset:  # noqa: A001 - mirrors xarray.open_dataset
    """Open a result written by :func:`save` (fully loaded into memory, file closed)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such result file")
    with xr.open_dataset(path, engine=_engine_for(path)) as ds:
        loaded = ds.load()
    for name, var in {**loaded.data_vars, **loaded.coords}.items():
        if var.attrs.get(_BOOL_FLAG) == "bool":
            attrs = {k: v for k, v in var.attrs.items() if k != _BOOL_FLAG}
            loaded[name] = var.astype(bool).assign_attrs(attrs)
    return loaded


def _engine_for(path: Path) -> str:
    with path.open("rb") as handle:
        magic = handle.read(4)
    return "scipy" if magic[:3] == b"CDF" else "h5netcdf"
