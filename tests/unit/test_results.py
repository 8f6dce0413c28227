"""Results: labelled Datasets survive a NetCDF round trip with their units."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import cimphys
from cimphys.errors import InputError
from cimphys.results import variable


def labelled(rng) -> xr.Dataset:
    return xr.Dataset(
        {
            "i_out": variable(("batch", "col"), rng.normal(size=(3, 4)) * 1e-6, "A", "bit-line output current"),
            "code": variable(("batch", "col"), rng.integers(0, 255, size=(3, 4)), "1", "ADC code"),
            "stuck": variable(("row",), np.array([True, False]), "1", "stuck-at-on fault"),
        },
        coords={"col": np.arange(4), "batch": np.arange(3), "row": np.arange(2)},
        attrs={"card": "isaac", "seed": 7},
    )


@pytest.mark.parametrize("engine", ["default", "scipy"])
def test_round_trip_keeps_values_units_and_dtypes(tmp_path, rng, monkeypatch, engine):
    if engine == "scipy":  # the no-C-library path: scipy's NetCDF-3 writer
        monkeypatch.setattr(cimphys.results, "_engine", lambda: "scipy")
    ds = labelled(rng)
    path = cimphys.save(ds, tmp_path / "sub" / "result.nc")
    back = cimphys.open(path)
    xr.testing.assert_identical(back.drop_attrs(deep=True), ds.drop_attrs(deep=True))
    for name in ds.data_vars:
        assert back[name].attrs["units"] == ds[name].attrs["units"]
        assert back[name].attrs["long_name"] == ds[name].attrs["long_name"]
    assert back["stuck"].dtype == bool
    assert back.attrs["card"] == "isaac"
    assert not (tmp_path / "sub" / "result.nc.part").exists()


def test_save_refuses_unlabelled_variables(tmp_path):
    ds = xr.Dataset({"v": (("row",), np.zeros(2))})
    with pytest.raises(InputError, match=r"v \(units, long_name\)"):
        cimphys.save(ds, tmp_path / "x.nc")
    assert not (tmp_path / "x.nc").exists()


def test_open_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such result file"):
        cimphys.open(tmp_path / "absent.nc")


def test_concurrent_writers_never_share_a_temporary(tmp_path, rng, monkeypatch):
    """Regression (issue 18.10): save wrote to the fixed name ``<path>.part``, so two writers
    of one result clobbered each other's temporary (checked failing before: FileNotFoundError
    from the second rename, or a file mixing both).  Now each has its own; the survivor is
    whole and equal to one of the two results."""
    import threading

    monkeypatch.setattr(cimphys.results, "_engine", lambda: "scipy")  # no HDF5 global lock in the way
    first, second = labelled(rng), labelled(rng)
    path = tmp_path / "r.nc"
    errors = []

    def write(ds):
        try:
            for _ in range(15):
                cimphys.save(ds, path)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(ds,)) for ds in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    back = cimphys.open(path)
    assert any(np.array_equal(back.i_out.values, ds.i_out.values) for ds in (first, second))
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]


def test_failed_write_leaves_the_old_result(tmp_path, rng, monkeypatch):
    ds = labelled(rng)
    path = cimphys.save(ds, tmp_path / "r.nc")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(OSError, match="disk full"):
        cimphys.save(ds, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["r.nc"]
