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
