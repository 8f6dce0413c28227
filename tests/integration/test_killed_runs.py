"""Killed runs leave nothing behind: no orphaned sweep workers, no half-written file.

Part of the fault suite of issue 18.  Each test starts a real process, kills it with SIGKILL at
a moment when it is busy, and checks what it left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

TIMEOUT_S = 60.0

SWEEP = textwrap.dedent("""
    import os, sys, time
    import cimphys

    def point(a):
        with open(os.path.join(sys.argv[1], f"worker-{os.getpid()}"), "w"):
            pass
        time.sleep(60.0)
        return {"a": float(a)}

    if __name__ == "__main__":
        cimphys.sweep(point, a=[1.0, 2.0, 3.0, 4.0], workers=2, scheduler="processes", progress=False)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_sweep_workers_die_with_the_main_process(tmp_path):
    """Regression (issue 18.10): SIGKILL of the main sweep process (not its process group) left
    its worker processes running their points (checked failing before: both workers alive
    after 10 s)."""
    script = tmp_path / "sweep_script.py"
    script.write_text(SWEEP)
    main = subprocess.Popen([sys.executable, str(script), str(tmp_path)], start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(list(tmp_path.glob("worker-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
        assert len(workers) == 2, "the workers never started"
        main.kill()  # the main process only: its workers are not signalled
        main.wait()
        deadline = time.monotonic() + 10.0
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(main.pid, signal.SIGKILL)  # whatever is left, however the test ended


@pytest.mark.slow
def test_killed_cimphys_run_leaves_only_whole_files(tmp_path):
    """SIGKILL ``cimphys run`` (tiny BERT, wired tiles, its own tile cache) while it
    characterises and calibrates: every cache entry left loads without a warning (whole,
    hash-checked), the output folder holds no partial result, and a rerun on the same cache
    finishes without meeting a damaged entry."""
    import numpy as np

    from cimphys.cache import EntryCache
    from cimphys.errors import CacheWarning
    from cimphys.layers.tiny import write_tiny_bert
    from cimphys.layers.weights import default_model_dir

    model = write_tiny_bert(tmp_path / "m", seed=1, positions=128, tokenizer_from=default_model_dir())
    cache, out = tmp_path / "cache", tmp_path / "out"
    argv = [sys.executable, "-c", "import sys; from cimphys.cli import main; sys.exit(main())", "run",
            "--model", str(model), "--sentences", "4", "--wire-r", "1", "--no-plots",
            "--cache-dir", str(cache), "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(list(cache.glob("*.npz"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(float(np.random.default_rng(18).uniform(0.0, 0.5)))  # seeded: a mid-run moment
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # a half-written entry would warn
        for path in cache.glob("*.npz"):
            # every entry kind with its own suffix: ADC ranges, device statistics, tiles
            suffix = next((s for s in (".ranges.npz", ".stats.npz") if path.name.endswith(s)), ".npz")
            assert EntryCache(cache, suffix).load(path.name[: -len(suffix)]) is not None, path.name
    assert not [p for p in out.glob("*") if p.suffix == ".nc" and not p.stat().st_size]
    again = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S * 3)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "cache entry" not in again.stderr and "embedding cosine to fp32" in again.stdout
