"""Layer adapter: MiniLM-L6 on CIM tiles through the one chain, and the default card's error budget.

Figures (issues 6 and 12): a full analog forward of all-MiniLM-L6-v2 over 10 sentences on the
default tile card (ISAAC-like 128x128, 2.5 ohm per cell segment, 8-bit SAR ADCs, VTEAM cells
programmed by write-verify, every effect the card declares on) within 60 s including tile
characterisation and programming (cold tile cache), within 10 s with characterised tiles cached,
peak memory within 4 GB; the error budget (``cimphys run --budget``: nine runs) within 5 min
cold.  These budgets are absolute (the issues'), so the "peer" of those records is the budget
itself; the fp32 NumPy forward of the same sentences, timed in the same run, is given in the
notes as the scale of the digital work, and so is the CPU time of the cold run: on the shared
2-core machine the wall time follows the other users' load, the CPU time much less.
quick=True: 2 sentences, no budget.
"""

from __future__ import annotations

import os

# One BLAS thread per tile: the tiles are characterised in parallel across the cores by the
# tile characterisation pool (cimphys.circuits.tile_characterise); a multi-threaded BLAS under that
# pool oversubscribes the cores (measured up to 10x slower per tile on 2 shared cores).
# Set before NumPy loads its BLAS; an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import resource  # noqa: E402
import tempfile
import time

from _common import Record, best_of, main  # noqa: E402


def _forward(n_sentences: int, cache_dir: str):
    from cimphys.layers import CimConfig, run_model

    return run_model(sentences=n_sentences, config=CimConfig(), cache_dir=cache_dir)


def _budget(n_sentences: int, cache_dir: str):
    from cimphys.layers import CimConfig
    from cimphys.layers.budget import error_budget

    return error_budget(None, n_sentences, CimConfig(), cache_dir=cache_dir)


def run(quick: bool = False) -> list[Record]:
    from cimphys.layers import BertEncoder, DigitalEngine, load_model, sentences

    n = 2 if quick else 10
    model = BertEncoder(load_model())
    texts = sentences(n)
    fp32 = best_of(lambda: model.encode(texts, DigitalEngine()), repeat=3)
    with tempfile.TemporaryDirectory() as cache:
        start, cpu = time.perf_counter(), time.process_time()
        ds = _forward(n, cache)
        cold, cold_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        ds = _forward(n, cache)
        warm, warm_cpu = time.perf_counter() - start, time.process_time() - cpu
    budget_time = None
    if not quick:
        with tempfile.TemporaryDirectory() as cache:
            start, cpu = time.perf_counter(), time.process_time()
            budget = _budget(n, cache)
            budget_time, budget_cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    note = (f"{n} sentences, {int(ds.tile_count)} tiles, cos {float(ds.embedding_cosine.mean()):.4f}, "
            f"rho {float(ds.retrieval_spearman):.3f}; fp32 forward {fp32:.3f} s; cold CPU {cold_cpu:.1f} s; "
            f"load {load}")
    records = [
        Record("MiniLM-L6 analog forward, cold (characterise)", cold, "budget 60 s", 60.0, "s", 1.0, True, note),
        Record("MiniLM-L6 analog forward, tiles cached", warm, "budget 10 s", 10.0, "s", 1.0, True,
               f"warm/fp32 = {warm / fp32:.0f}x; CPU {warm_cpu:.1f} s"),
        Record("peak resident memory", peak / 2**30, "budget 4 GiB", 4.0, "GiB", 1.0, True, "ru_maxrss of the process"),
    ]
    if budget_time is not None:
        loss = ", ".join(f"{e} {1 - c:.2e}" for e, c in zip(budget.effect.values, budget.embedding_cosine.values))
        records.append(Record("error budget of the default card, cold", budget_time, "budget 300 s", 300.0, "s", 1.0,
                              True, f"1 - cosine per effect: {loss}; CPU {budget_cpu:.0f} s; load {load}"))
    return records


if __name__ == "__main__":
    main(run)
