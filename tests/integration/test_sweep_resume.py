"""A sweep process SIGKILLed (or interrupted with SIGINT) mid-way resumes from its Zarr store:
nothing finished is recomputed, and the result is bit-identical to an uninterrupted run with a
different worker count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import zarr

from cimphys.store import open_sweep
from cimphys.sweep import sweep

N_A, N_B = 8, 6  # 48 points
KILL_AFTER = 12  # finished points in the store before the kill
TIMEOUT_S = 60.0

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import xarray as xr
    import cimphys

    def point(a, b, rng):
        with open(os.environ["SWEEP_LOG"], "a") as log:  # one line per call, appended
            log.write(f"{a * 100 + round(2 * b)}\\n")
        time.sleep(float(os.environ["SWEEP_SLEEP"]))
        x = rng.standard_normal(5) * (a + 1) + b
        return xr.Dataset({"x": (("k",), x, {"units": "V", "long_name": "noisy output"}),
                           "m": ((), x.mean(), {"units": "V", "long_name": "mean output"})})

    AXES = {"a": list(range(%d)), "b": [0.5 * j for j in range(%d)]}

    if __name__ == "__main__":
        from resume_script_h7 import point  # the importable name: the store's fingerprint uses it
        store, workers, scheduler = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        cimphys.sweep(point, store=store, seed=11, workers=workers, scheduler=scheduler, progress=False, **AXES)
    """
    % (N_A, N_B)
)


def _run(script, store, workers, scheduler, log, sleep, **popen):
    env = {**os.environ, "SWEEP_LOG": str(log), "SWEEP_SLEEP": str(sleep)}
    return subprocess.Popen([sys.executable, str(script), str(store), str(workers), scheduler], env=env, **popen)


def _done(store) -> np.ndarray:
    try:
        return np.asarray(zarr.open_group(store, mode="r")["_done"][:], dtype=bool)
    except (FileNotFoundError, KeyError, ValueError):
        return np.zeros(N_A * N_B, dtype=bool)


def _calls(log) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize(("how", "scheduler"), [("SIGKILL", "processes"), ("SIGINT", "processes"),
                                                ("SIGKILL", "dask")])
def test_killed_sweep_resumes_bit_identical(tmp_path, monkeypatch, how, scheduler):
    """Points travel several to a task (0.05 s points: up to 10) and are written a task at a
    time into chunks shared by several tasks; the kill lands between any two of those writes."""
    script = tmp_path / "resume_script_h7.py"
    script.write_text(SCRIPT)
    store = tmp_path / "sweep.zarr"

    victim = _run(script, store, 2, scheduler, tmp_path / "log1", 0.05, start_new_session=True)
    deadline = time.monotonic() + TIMEOUT_S
    while _done(store).sum() < KILL_AFTER:
        assert victim.poll() is None, "sweep ended before it could be interrupted"
        assert time.monotonic() < deadline, "sweep made no progress"
        time.sleep(0.02)
    if how == "SIGKILL":  # the whole process group: the parent and its pool workers die at once
        os.killpg(victim.pid, signal.SIGKILL)
    else:  # Ctrl-C at a terminal signals the foreground group the same way
        os.killpg(victim.pid, signal.SIGINT)
    victim.wait(timeout=TIMEOUT_S)
    assert victim.returncode != 0

    done_before = _done(store)
    assert zarr.open_group(store, mode="r")["m"].chunks == (N_A, N_B)  # every task rewrote this chunk
    n_done = int(done_before.sum())
    assert KILL_AFTER <= n_done < N_A * N_B
    finished = {a * 100 + b for a, b in zip(*np.unravel_index(np.flatnonzero(done_before), (N_A, N_B)))}

    # Resume in this process, serially (another worker count), importing the same function.
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SWEEP_LOG", str(tmp_path / "log2"))
    monkeypatch.setenv("SWEEP_SLEEP", "0")
    monkeypatch.delitem(sys.modules, "resume_script_h7", raising=False)
    module = __import__("resume_script_h7")
    resumed = sweep(module.point, store=store, seed=11, scheduler="serial", **module.AXES)
    recomputed = _calls(tmp_path / "log2")
    assert len(recomputed) == N_A * N_B - n_done  # each unfinished point once, nothing else
    assert finished.isdisjoint(recomputed)

    clean = sweep(module.point, seed=11, scheduler="serial", **module.AXES)  # uninterrupted, in memory
    for name in ("x", "m"):
        assert resumed[name].values.tobytes() == clean[name].values.tobytes()
    assert open_sweep(store).x.values.tobytes() == clean.x.values.tobytes()
