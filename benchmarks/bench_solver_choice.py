"""The linear dispatcher's choice (``method="auto"``) against every path, shape by shape.

For each shape ``M x N`` and batch ``B`` of a grid (square and non-square arrays, one input to
many), a linear array of the reference geometry (``r_wl = r_bl = 1`` ohm, ``G`` uniform in
1..100 uS, inputs uniform in 0..0.5 V) is solved to the default ``tol = 1e-12`` by:

* ``auto``: :func:`cimphys.circuits.linear.solve_with_report` left to choose (the path the
  dispatcher chose, with every factorisation it needs); ``Crossbar(G).solve(V)`` on a fresh
  array is timed too (the notes), the same plus the array's own checks;
* each of cimphys's own paths, forced (``path=``) through the same dispatcher, so that each pays
  the same checks: ``direct`` (SuperLU on the merged nodal matrix, with the assembly and the
  residual check), ``symmetric_cg``
  (:mod:`cimphys.circuits.schur`), ``block`` (a :class:`~cimphys.circuits.block.BlockFactor`
  then its substitution), ``iterative`` (BiCGSTAB over the line sweeps);
* the peer, ``splu``: ``scipy.sparse.linalg.splu`` factorisation and solves of the same nodal
  matrix, assembled beforehand (not timed).

Targets, per case: ``auto`` no slower than ``splu`` (ratio splu / auto >= 1), and the path it
chose no slower than 1.5x the best of cimphys's own paths (ratio best / chosen >= 1/1.5, both
timed forced: timing ``auto`` against its own path forced would measure only the machine's
noise, which reached 2x between two identical calls at load 8).  Every time is the best of
``ROUNDS`` interleaved calls (all contenders see the same machine load); a path that takes over
``SLOW_S`` once is not repeated, and a path is skipped where it cannot run (the direct path
beyond ``MAX_DIRECT_NODES``, the block path beyond ``MAX_BLOCK_BYTES``) or where a case's
answers would not fit in ``MEMORY_BYTES``.  The notes give the path ``auto`` took, every
path's time and the load average.

``--quick`` runs the small grid (shapes up to 256 x 256, batches up to 64); the full grid goes
to 1024 x 1024 and batches of 1024 (hours on a loaded 2-core machine), cheapest cases first.
With ``CIMPHYS_BENCH_LOG=path`` every measured case is appended to ``path`` as one JSON line as
soon as it is measured, and a later run skips the cases already there: a stopped run keeps what
it measured and resumes; ``CIMPHYS_BENCH_CASES="64x512x256,512x512x64"`` runs only the listed
cases (``MxNxbatch``, comma-separated) of the grid.  The measured record is kept in
``benchmarks/records/solver_choice.jsonl`` (this log format; a run with ``CIMPHYS_BENCH_LOG``
pointing there prints its table without measuring again) and its printed table beside it in
``solver_choice.txt``.  The process's address space is capped at its size at start plus
``MEMORY_CAP_BYTES`` (``RLIMIT_AS``); a contender that runs out (SuperLU's fill-in on the
largest arrays) is recorded as failed, not allowed to take the machine's memory.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import numpy as np

try:
    from _common import Record, main
except ImportError:  # imported as benchmarks.bench_solver_choice
    from benchmarks._common import Record, main

SHAPES_QUICK = ((16, 16), (48, 64), (64, 64), (64, 512), (128, 128), (256, 256))
BATCHES_QUICK = (1, 8, 64)
SHAPES_FULL = ((16, 16), (48, 64), (64, 64), (64, 512), (128, 128), (256, 256), (512, 64), (512, 512),
               (1024, 1024))
BATCHES_FULL = (1, 8, 64, 256, 1024)
PATHS = ("direct", "symmetric_cg", "block", "iterative")
ROUNDS = 3
#: Address space the benchmark may add to what it holds at start (splu's fill-in on 512 x 512).
MEMORY_CAP_BYTES = 6 * 2**30
#: A contender that takes this long once is timed once (its best of one).
SLOW_S = 2.0
#: Largest memory the answers of one case may take (v_wl, v_bl and the work arrays: ~8 copies).
MEMORY_BYTES = 3 * 2**30
#: Target: auto within this factor of the best of cimphys's own paths.
BEST_FACTOR = 1.5


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "n/a"


def _problem(m: int, n: int, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.uniform(1e-6, 1e-4, (m, n)), rng.uniform(0.0, 0.5, (batch, m))


def _contenders(g: np.ndarray, v: np.ndarray) -> dict:
    """Callables for auto, every path that can run (all through the same dispatcher, so that each
    pays the same checks), the user's call ``Crossbar(G).solve`` and the splu peer."""
    from scipy.sparse.linalg import splu

    import cimphys
    from cimphys.circuits import schur
    from cimphys.circuits.block import MAX_BLOCK_BYTES, block_eligible
    from cimphys.circuits.direct import MAX_DIRECT_NODES, assemble
    from cimphys.circuits.linear import solve_with_report
    from cimphys.circuits.network import check_stamp

    m, n = g.shape
    net, zero = cimphys.Crossbar(g).network, np.zeros_like(g)
    out = {"auto": lambda: solve_with_report(net, g, g, zero, v),
           "crossbar": lambda: cimphys.Crossbar(g).solve(v)}
    paths = ["iterative"]
    if 2 * m * n <= MAX_DIRECT_NODES:
        a, b, c3, v2, _ = check_stamp(net, g, g, zero, v)
        k, rhs, _num = assemble(net, a, b, c3, v2)
        out["splu"] = lambda: splu(k.tocsc()).solve(np.ascontiguousarray(rhs.T))
        paths.append("direct")
    if schur.eligible(net, g, g):
        paths.append("symmetric_cg")
    if block_eligible(net) and 8 * m * n * n <= MAX_BLOCK_BYTES:
        paths.append("block")
    for path in paths:
        out[path] = lambda path=path: solve_with_report(net, g, g, zero, v, path=path)
    return out


def _time(fn) -> float:
    """Wall time of one call (s); infinity where it failed (out of the memory cap)."""
    start = time.perf_counter()
    try:
        fn()
    except MemoryError:
        return float("inf")
    return time.perf_counter() - start


def _cap_memory() -> None:
    """Cap the address space at its present size plus ``MEMORY_CAP_BYTES``."""
    status = Path("/proc/self/status").read_text()
    vm_kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmSize:")), None)
    if vm_kib is not None:
        limit = vm_kib * 1024 + MEMORY_CAP_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def measure(m: int, n: int, batch: int, rounds: int = ROUNDS) -> dict | None:
    """Best times (s) of every contender for one case, and the path auto took; None if skipped."""
    if 8 * 8 * m * n * batch > MEMORY_BYTES:
        return None
    g, v = _problem(m, n, batch)
    fns = _contenders(g, v)
    path = fns["auto"]()[3].path
    first = {key: _time(fn) for key, fn in fns.items()}  # the first call compiles: not counted
    best = {key: (_time(fn) if first[key] < 30 * SLOW_S else first[key]) for key, fn in fns.items()}
    for _ in range(rounds - 1):
        for key, fn in fns.items():
            if best[key] < SLOW_S:
                best[key] = min(best[key], _time(fn))
    return {"times": best, "path": path, "load": _load()}


def _records(m: int, n: int, batch: int, found: dict) -> list[Record]:
    t = found["times"]
    own = {p: t[p] for p in PATHS if p in t and np.isfinite(t[p])}
    fastest = min(own, key=own.get)
    times = ", ".join(f"{p} {own[p]:.3g}" for p in PATHS if p in own)
    notes = (f"auto took {found['path']}; fastest {fastest}; times (s): {times}; "
             f"Crossbar(G).solve {t['crossbar']:.3g}; splu {t.get('splu', float('nan')):.3g}; load {found['load']}")
    name = f"{m}x{n} batch {batch}"
    chosen = found["path"]
    # The choice is judged by the forced timings of the chosen path and of the fastest: timing
    # auto itself against the same path forced would only measure the machine's noise.
    out = [Record(f"{name}: chosen ({chosen}) vs best own path", t[chosen], f"best own ({fastest})",
                  own[fastest], "s", 1 / BEST_FACTOR, notes=notes + f"; auto itself {t['auto']:.3g}")]
    if "splu" in t and not np.isfinite(t["splu"]):
        print(f"{name}: splu ran out of the {MEMORY_CAP_BYTES / 2**30:g} GiB cap", flush=True)
    elif "splu" in t:
        out.append(Record(f"{name}: auto vs splu", t["auto"], "scipy splu factor+solve", t["splu"], "s", 1.0,
                          notes=f"auto took {found['path']}; load {found['load']}"))
    return out


def _logged(log: Path | None) -> dict:
    """Cases already measured in the log: ``{(m, n, batch): found}``."""
    if log is None or not log.exists():
        return {}
    done = {}
    for line in log.read_text().splitlines():
        if line.strip():
            case = json.loads(line)
            done[tuple(case["case"])] = case["found"]
    return done


def _selected(cases: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The cases ``CIMPHYS_BENCH_CASES`` lists (``MxNxbatch,...``), or all of ``cases``."""
    wanted = os.environ.get("CIMPHYS_BENCH_CASES", "").strip()
    if not wanted:
        return cases
    picked = {tuple(int(k) for k in item.strip().split("x")) for item in wanted.split(",") if item.strip()}
    unknown = picked - set(cases)
    if unknown:
        raise SystemExit(f"CIMPHYS_BENCH_CASES: {sorted(unknown)} not in the grid")
    return [c for c in cases if c in picked]


def run(quick: bool = False) -> list[Record]:
    shapes, batches = (SHAPES_QUICK, BATCHES_QUICK) if quick else (SHAPES_FULL, BATCHES_FULL)
    log = Path(os.environ["CIMPHYS_BENCH_LOG"]) if os.environ.get("CIMPHYS_BENCH_LOG") else None
    done = _logged(log)
    _cap_memory()
    records = []
    cases = sorted(((m, n, b) for m, n in shapes for b in batches), key=lambda c: (c[0] * c[1] * c[2], c))
    for m, n, batch in _selected(cases):
        found = done.get((m, n, batch))
        if found is None:
            found = measure(m, n, batch)
            if found is None:
                print(f"{m}x{n} batch {batch}: skipped (answers beyond {MEMORY_BYTES / 2**30:g} GiB)", flush=True)
                continue
            if log is not None:
                with log.open("a") as f:
                    f.write(json.dumps({"case": [m, n, batch], "found": found}) + "\n")
        new = _records(m, n, batch, found)
        records += new
        print(new[0].name, f"{new[0].ratio:.3g}", new[0].notes, flush=True)
    return records


if __name__ == "__main__":
    main(run)
