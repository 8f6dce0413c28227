"""cimphys.sweep: Cartesian product, labels, per-point seeds, schedulers, bad input."""

from __future__ import annotations

import os
import sys

import cloudpickle
import numpy as np
import pytest
import xarray as xr

import cimphys
from cimphys.errors import InputError
from cimphys.store import open_sweep
from cimphys.sweep import point_seed, sweep

# Functions of this module travel to worker processes by value: workers need not import it.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def ohm(v, r):
    return {"i": v / r}


def noisy(a, b, rng):
    return {"x": rng.normal(size=4), "ab": a * 10 + b}


def labelled(v, n):
    """A Dataset with its own dim, coordinate and units, as a physics model returns it."""
    col = np.arange(n)
    return xr.Dataset(
        {"i_out": (("col",), v * (col + 1.0), {"units": "A", "long_name": "column current"})},
        coords={"col": col},
    ).isel(col=slice(0, 2))


def test_grid_matches_closed_form():
    v, r = [0.1, 0.2, 0.3], [1e3, 2e3]
    ds = sweep(ohm, v=v, r=r, scheduler="serial")
    assert ds.i.dims == ("v", "r")
    np.testing.assert_array_equal(ds.i.values, np.divide.outer(v, r))
    np.testing.assert_array_equal(ds.v.values, v)


def test_public_name_calls_sweep():
    """``cimphys.sweep`` may be the function or (once the module is imported) the module."""
    ds = cimphys.sweep(ohm, v=[2.0], r=[4.0], scheduler="serial")
    assert ds.i.item() == 0.5


def test_dataset_dims_coords_and_units_kept():
    ds = sweep(labelled, v=[1.0, 2.0], n=[3, 4], scheduler="serial")
    assert ds.i_out.dims == ("v", "n", "col")
    assert ds.i_out.attrs["units"] == "A"
    np.testing.assert_array_equal(ds.col.values, [0, 1])
    assert float(ds.i_out.sel(v=2.0, n=3, col=1)) == 4.0


def test_string_axis_and_int_axis():
    ds = sweep(lambda name, k: {"len": len(name) * k}, name=["a", "bcd"], k=[1, 2], scheduler="serial")
    assert ds.len.sel(name="bcd", k=2).item() == 6
    assert ds.len.dtype == np.int64


def test_point_streams_follow_seed_sequence_spawn():
    ds = sweep(noisy, a=[0, 1, 2], b=[0, 1], seed=5, scheduler="serial")
    children = np.random.SeedSequence(5).spawn(6)
    for index in range(6):
        ia, ib = np.unravel_index(index, (3, 2))
        expected = np.random.default_rng(children[index]).normal(size=4)
        np.testing.assert_array_equal(ds.x.values[ia, ib], expected)
        assert point_seed(5, index).spawn_key == children[index].spawn_key


def test_same_seed_same_bits_for_any_worker_count():
    serial = sweep(noisy, a=[0, 1, 2], b=[0, 1, 2, 3], seed=3, scheduler="serial")
    pooled = sweep(noisy, a=[0, 1, 2], b=[0, 1, 2, 3], seed=3, workers=2)
    xr.testing.assert_identical(serial, pooled)
    other = sweep(noisy, a=[0, 1, 2], b=[0, 1, 2, 3], seed=4, scheduler="serial")
    assert not np.array_equal(serial.x.values, other.x.values)


def test_seed_keyword_receives_an_int():
    ds = sweep(lambda k, seed: {"s": seed % 1000}, k=[0, 1], seed=1, scheduler="serial")
    expected = [point_seed(1, i).generate_state(1, np.uint64)[0] % 1000 for i in range(2)]
    np.testing.assert_array_equal(ds.s.values, expected)


def test_dask_client_matches_serial():
    """A distributed.Client (in-process workers here; a tcp:// scheduler takes the same path)."""
    from distributed import Client

    serial = sweep(noisy, a=[0, 1], b=[0, 1, 2], seed=9, scheduler="serial")
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as client:
        dask = sweep(noisy, a=[0, 1], b=[0, 1, 2], seed=9, scheduler=client)
        address = client.scheduler.address  # "inproc://..."; "tcp://host:port" in a real cluster
        by_address = sweep(noisy, a=[0, 1], b=[0, 1, 2], seed=9, scheduler=address)
    xr.testing.assert_identical(serial, dask)
    xr.testing.assert_identical(serial, by_address)


@pytest.mark.parametrize(
    ("axes", "match"),
    [
        ({"vv": [1.0]}, r"axis 'vv'.*did you mean 'v'"),
        ({"v": [1.0], "r": []}, "non-empty"),
        ({"v": [1.0, np.nan], "r": [1.0]}, "finite"),
        ({"v": [1.0, 1.0], "r": [1.0]}, "repeat"),
        ({"v": 1.0, "r": [1.0]}, "sequence"),
        ({"v": [[1.0]], "r": [1.0]}, "1-D"),
        ({"v": [1.0], "r": [1.0], "rng": [1]}, "reserved"),
        ({}, "at least one axis"),
    ],
)
def test_bad_axes_rejected(axes, match):
    with pytest.raises(InputError, match=match):
        sweep(ohm, scheduler="serial", **axes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"workers": 0}, "workers"),
     ({"scheduler": "threads"}, "scheduler")],
)
def test_bad_options_rejected(kwargs, match):
    with pytest.raises(InputError, match=match):
        sweep(ohm, v=[1.0], r=[1.0], **kwargs)


def test_bad_results_rejected():
    with pytest.raises(InputError, match="non-finite"):
        sweep(lambda v: {"x": v / 0.0 if v else np.nan}, v=[0.0], scheduler="serial")
    with pytest.raises(InputError, match="Dataset or a dict"):
        sweep(lambda v: v, v=[0.0], scheduler="serial")
    with pytest.raises(InputError, match="variables"):
        sweep(lambda v: {"a": 1.0} if v else {"b": 1.0}, v=[0, 1], scheduler="serial")
    with pytest.raises(InputError, match="shape"):
        sweep(lambda v: {"a": np.zeros(v + 1)}, v=[0, 1], scheduler="serial")


# -- tasks of several points -----------------------------------------------------------------
def test_batches_sized_from_measured_time_capped_and_shrinking_at_the_end():
    from cimphys.sweep_workers import _Batches

    tasks = [(i, {"k": i}) for i in range(100)]
    batches = _Batches(tasks, n_workers=2, target_s=0.5, cap=8)
    sizes, seen = [], []
    while batch := batches.take():
        sizes.append(len(batch))
        seen += batch
        batches.record(len(batch), 0.1 * len(batch))  # 0.1 s per point: 5 points fill 0.5 s
    assert seen == tasks  # every point once, in order
    assert sizes[0] == 1  # nothing measured yet
    assert sizes[1] == 5  # 0.5 s / 0.1 s
    assert sizes[-3:] == [1, 1, 1]  # the tail shrinks: no worker waits on a long last task
    fast = _Batches(tasks, n_workers=2, target_s=0.5, cap=8)
    fast.take()
    fast.record(1, 1e-6)
    assert fast.size() == 8  # however fast the points, at most `cap` per task
    fast.record(1, 0.0)
    assert fast.size() == 8


def test_dask_tasks_of_many_points_bit_identical_to_serial(tmp_path):
    """Fast points travel many to a task; the store and the result do not depend on the cut."""
    from distributed import Client

    axes = {"a": list(range(12)), "b": [0, 1, 2, 3, 4]}
    serial = sweep(noisy, seed=4, scheduler="serial", **axes)
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as client:
        dask = sweep(noisy, seed=4, scheduler=client, store=tmp_path / "s.zarr", **axes)
    xr.testing.assert_identical(serial, dask)
    assert open_sweep(tmp_path / "s.zarr").x.values.tobytes() == serial.x.values.tobytes()


def test_local_cluster_workers_run_without_dask_malloc_trim(monkeypatch):
    """The root cause of the slow Dask worker: Dask's MALLOC_TRIM_THRESHOLD_ (every large array
    mmapped afresh).  sweep's own clusters spawn their workers without it and without the
    dashboard's profiler."""
    import dask
    from distributed import Client

    from cimphys.sweep import local_cluster

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with local_cluster(1) as cluster, Client(cluster) as client:
        [(env, profile, numba_threads, tuned)] = client.run(
            lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                     dask.config.get("distributed.worker.profile.enabled"),
                     os.environ.get("NUMBA_NUM_THREADS"),
                     sys.modules["cimphys.sweep_workers"]._WORKER_TUNED)).values()
    assert env is None
    assert profile is False
    assert numba_threads == "1"
    assert tuned is sys.platform.startswith("linux")  # the preload ran: glibc keeps freed memory
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # nor is this process's environment changed
    pooled = sweep(lambda k: {"tuned": sys.modules["cimphys.sweep_workers"]._WORKER_TUNED}, k=[0, 1], workers=2)
    assert pooled.tuned.values.tolist() == [sys.platform.startswith("linux")] * 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_kept_freed_memory_spares_page_faults():
    """What the worker tuning is for: a point's large temporaries, freed and allocated again,
    no longer fault their pages in afresh each time."""
    import subprocess

    code = (
        "import resource, sys, numpy as np\n"
        "from cimphys.sweep_workers import _keep_freed_memory\n"
        "if sys.argv[1] == 'keep': assert _keep_freed_memory()\n"
        "def point(): return sum(float(a[-1]) for a in [np.ones(1 << 19) for _ in range(10)])\n"
        "point()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(10): point()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    faults = {mode: int(subprocess.run([sys.executable, "-c", code, mode], env=env, capture_output=True,
                                       text=True, check=True).stdout) for mode in ("default", "keep")}
    # A "point" holds 10 arrays of 4 MB at once; freed, the 40 MB heap top exceeds glibc's
    # default trim threshold (twice the largest array) and goes back to the OS (measured: ~5000
    # page faults per point by default, none kept).
    assert faults["default"] > 10 * 2000, faults
    assert faults["keep"] < faults["default"] / 100, faults


def _scaled(v, scale=1.0):
    return {"y": v * scale}


def test_partial_bound_values_enter_the_fingerprint(tmp_path):
    """Regression (issue 18.3): the fingerprint held only the function's name, so a store
    computed with functools.partial(f, scale=2) was resumed for scale=3 and mixed old and new
    points (checked failing before: the second run returned the scale=2 numbers)."""
    import functools

    store = tmp_path / "s.zarr"
    first = sweep(functools.partial(_scaled, scale=2.0), store=store, scheduler="serial", v=[1.0, 2.0])
    assert first.y.values.tolist() == [2.0, 4.0]
    again = sweep(functools.partial(_scaled, scale=2.0), store=store, scheduler="serial", v=[1.0, 2.0])
    assert again.y.values.tolist() == [2.0, 4.0]
    with pytest.raises(InputError, match="another sweep"):
        sweep(functools.partial(_scaled, scale=3.0), store=store, scheduler="serial", v=[1.0, 2.0])
    with pytest.raises(InputError, match="cannot be fingerprinted"):
        sweep(functools.partial(_scaled, scale=object()), store=tmp_path / "t.zarr", scheduler="serial", v=[1.0])
