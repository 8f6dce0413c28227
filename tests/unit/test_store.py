"""cimphys.store: streaming points into Zarr, resuming, fingerprints, overwrite protection."""

from __future__ import annotations

import sys

import cloudpickle
import numpy as np
import pytest
import xarray as xr

from cimphys.errors import InputError
from cimphys.store import ZarrStore, fingerprint, open_sweep
from cimphys.sweep import sweep

# Functions of this module travel to worker processes by value: workers need not import it.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CALLS: list[int] = []


def counted(a, b, rng):
    """Records each call; raises KeyboardInterrupt at a = 2, b = 1 while ``STOP`` is set."""
    CALLS.append(a * 10 + b)
    if STOP and (a, b) == (2, 1):
        raise KeyboardInterrupt
    return xr.Dataset({"y": ((), a + rng.random(), {"units": "V", "long_name": "output"})})


STOP = False
AXES = {"a": [0, 1, 2, 3], "b": [0, 1, 2]}


def test_store_round_trip_matches_memory(tmp_path):
    memory = sweep(counted, seed=2, scheduler="serial", **AXES)
    stored = sweep(counted, seed=2, scheduler="serial", store=tmp_path / "s.zarr", **AXES)
    xr.testing.assert_identical(memory, stored)
    xr.testing.assert_identical(memory, open_sweep(tmp_path / "s.zarr"))
    plain = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)  # any Zarr reader sees the labels
    assert plain.y.attrs["units"] == "V"
    np.testing.assert_array_equal(plain.y.values, memory.y.values)


def test_interrupted_sweep_resumes_without_recomputing(tmp_path):
    global STOP
    path = tmp_path / "s.zarr"
    CALLS.clear()
    STOP = True
    try:
        with pytest.raises(KeyboardInterrupt):
            sweep(counted, seed=2, scheduler="serial", store=path, **AXES)
    finally:
        STOP = False
    partial = open_sweep(path, partial=True)
    done_before = int(partial.done.sum())
    assert done_before == 7  # points 0..6 in C order finished before (2, 1)
    with pytest.raises(InputError, match="incomplete: 7 of 12"):
        open_sweep(path)
    CALLS.clear()
    resumed = sweep(counted, seed=2, scheduler="serial", store=path, **AXES)
    assert len(CALLS) == 12 - done_before
    assert set(CALLS).isdisjoint({a * 10 + b for a in range(4) for b in range(3) if a * 3 + b < 7})
    xr.testing.assert_identical(resumed, sweep(counted, seed=2, scheduler="serial", **AXES))


def test_store_of_another_sweep_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    sweep(counted, seed=2, scheduler="serial", store=path, **AXES)
    with pytest.raises(InputError, match=r"another sweep.*seed"):
        sweep(counted, seed=3, scheduler="serial", store=path, **AXES)
    with pytest.raises(InputError, match=r"another sweep.*axes"):
        sweep(counted, seed=2, scheduler="serial", store=path, a=[0, 1], b=[0])
    with pytest.raises(InputError, match=r"another sweep.*function"):
        sweep(lambda a, b: {"y": 1.0}, seed=2, scheduler="serial", store=path, **AXES)
    fresh = sweep(counted, seed=3, scheduler="serial", store=path, overwrite=True, **AXES)
    assert fresh.attrs["sweep_seed"] == 3


def test_foreign_paths_are_refused(tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("do not delete")
    fp = fingerprint("f", 0, {"a": np.array([1.0])})
    with pytest.raises(InputError, match="not a Zarr store"):
        ZarrStore(other, fp, overwrite=True)
    assert (other / "thesis.tex").exists()
    with pytest.raises(InputError, match="NetCDF"):
        ZarrStore(tmp_path / "x.nc", fp)
    with pytest.raises(InputError, match="no such sweep store"):
        open_sweep(tmp_path / "missing.zarr")


def test_fingerprint_is_stable_and_sensitive():
    a = fingerprint("m.f", 1, {"x": np.array([1.0, 2.0]), "s": np.array(["p", "q"])})
    b = fingerprint("m.f", 1, {"x": [1.0, 2.0], "s": ["p", "q"]})
    assert a == b
    assert fingerprint("m.f", 1, {"x": [1.0, 2.5], "s": ["p", "q"]})["sha256"] != a["sha256"]


def dies_at(a, b, rng, flag):
    """Kills its own worker process at (2, 1) while the file ``flag`` exists."""
    import os

    if (a, b) == (2, 1) and os.path.exists(flag):
        os._exit(3)
    return counted(a, b, rng)


def test_killed_worker_keeps_finished_points_and_resumes(tmp_path):
    flag = tmp_path / "die"
    flag.touch()
    path = tmp_path / "s.zarr"
    fn = lambda a, b, rng: dies_at(a, b, rng, str(flag))  # noqa: E731 - carries the flag by value
    with pytest.raises(RuntimeError, match="worker process died.*resume"):
        sweep(fn, seed=2, workers=2, store=path, **AXES)
    done = open_sweep(path, partial=True).done.values
    assert not done[2, 1]
    flag.unlink()
    resumed = sweep(fn, seed=2, workers=2, store=path, **AXES)
    np.testing.assert_array_equal(resumed.y.values, sweep(counted, seed=2, scheduler="serial", **AXES).y.values)


def test_run_killed_while_creating_arrays_resumes(tmp_path):
    """Regression: arrays created but the schema not yet recorded (a kill inside the first write)."""
    path = tmp_path / "s.zarr"
    fp = fingerprint("tests.counted", 2, {k: np.asarray(v) for k, v in AXES.items()})
    store = ZarrStore(path, fp)
    store._group.create_array("y", shape=(4, 3), dtype="float64", chunks=(1, 1))  # half-made schema
    reopened = ZarrStore(path, fp)
    assert reopened.schema is None and not reopened.done_mask().any()
    record = {"vars": {"y": ((), np.float64(1.5), {"units": "V", "long_name": "output"})}, "coords": {}}
    reopened.write_point(0, record)
    assert ZarrStore(path, fp).to_dataset(partial=True).y.values[0, 0] == 1.5


# -- chunks of several points, written a task at a time ---------------------------------------
def test_point_chunks_hold_runs_of_consecutive_points():
    from cimphys.store import _point_chunks, _points_per_chunk

    assert _point_chunks((8, 5, 5), 64) == (2, 5, 5)
    assert _point_chunks((8, 5, 5), 12) == (1, 2, 5)
    assert _point_chunks((200,), 64) == (64,)
    assert _point_chunks((3, 4), 1) == (1, 1)
    assert _point_chunks((3, 4), 100) == (3, 4)
    for shape, n in (((8, 5, 5), 12), ((7, 3, 4), 10), ((2, 9), 5), ((4, 4), 16)):
        chunks = _point_chunks(shape, n)
        where = np.unravel_index(np.arange(np.prod(shape)), shape)  # every point, in flat order
        grid = tuple(-(-size // c) for size, c in zip(shape, chunks))
        ids = np.ravel_multi_index(tuple(w // c for w, c in zip(where, chunks)), grid)
        starts = ids[np.r_[True, ids[1:] != ids[:-1]]]
        assert len(starts) == len(set(starts.tolist())), (shape, chunks)  # no chunk is entered twice
        assert np.bincount(ids).max() <= n
    assert _points_per_chunk(8) == 64  # scalars: the point cap
    assert _points_per_chunk(8 * 4096) == 32  # 32 kB points: 1 MiB chunks
    assert _points_per_chunk(8 * 256 * 256) == 2
    assert _points_per_chunk(8 * 1024 * 1024) == 1  # larger than a chunk: one point each


def _records(n, seed=0):
    rng = np.random.default_rng(seed)
    return [{"vars": {"s": ((), rng.random(), {"units": "V", "long_name": "scalar"}),
                      "w": (("k",), rng.random(3), {"units": "A", "long_name": "vector"}),
                      "n": ((), np.int64(i), {"units": "1", "long_name": "count"}),
                      "big": (("j",), np.full(150_000, float(i)), {"units": "1", "long_name": "large"})},
             "coords": {}} for i in range(n)]


def test_tasks_written_together_match_points_written_one_by_one(tmp_path):
    """Batches out of order, across chunk boundaries, one point to a chunk for the large variable."""
    fp = fingerprint("tests.batches", 0, {"a": np.arange(7), "b": np.arange(5)})
    records = _records(35)
    one = ZarrStore(tmp_path / "one.zarr", fp)
    for i, record in enumerate(records):
        one.write_point(i, record)
    many = ZarrStore(tmp_path / "many.zarr", fp)
    for lo, hi in ((10, 23), (0, 1), (1, 10), (30, 35), (23, 30)):
        many.write_points([(i, records[i]) for i in range(lo, hi)])
    assert many._arrays["s"].chunks == (7, 5)  # all 35 scalar points in one chunk
    assert many._arrays["big"].chunks == (1, 1, 150_000)  # 1.2 MB points: a chunk each
    xr.testing.assert_identical(ZarrStore(tmp_path / "one.zarr", fp).to_dataset(),
                                ZarrStore(tmp_path / "many.zarr", fp).to_dataset())
    np.testing.assert_array_equal(many.to_dataset().n.values.ravel(), np.arange(35))


def test_kill_between_data_and_marks_keeps_earlier_points_of_a_shared_chunk(tmp_path):
    """A task's data rewrite a chunk that holds finished points; killed before its marks, the
    finished points are intact and the task's points are recomputed (not trusted)."""
    fp = fingerprint("tests.batches", 0, {"a": np.arange(4), "b": np.arange(3)})
    records = _records(12)
    store = ZarrStore(tmp_path / "s.zarr", fp)
    store.write_points([(i, records[i]) for i in range(5)])
    later = [(i, records[i]) for i in range(5, 9)]
    where = np.unravel_index(np.array([i for i, _ in later]), store.shape)
    for name in ("s", "w"):  # what write_points does before the marks, then "SIGKILL"
        store._put(name, where, np.stack([np.asarray(r["vars"][name][1]) for _, r in later]))
    reopened = ZarrStore(tmp_path / "s.zarr", fp)
    np.testing.assert_array_equal(reopened.done_mask(), np.arange(12) < 5)
    partial = reopened.to_dataset(partial=True)
    expected = np.array([r["vars"]["s"][1] for r in records[:5]])
    np.testing.assert_array_equal(partial.s.values.ravel()[:5], expected)
