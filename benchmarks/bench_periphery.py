"""Periphery speed: ADC conversion against the NumPy expression, and a tile MVM against the
dense integer matrix product.

1. Ideal 8-bit ADC on 10**8 samples (10**6 with ``quick``): ``ADC.convert`` vs
   ``np.clip(np.floor((x - lo) / lsb + 0.5), 0, 255).astype(np.int64)``; target >= 1x.
2. Tile MVM, 256 x 256 (128 x 128 with ``quick``), linear cells with wire resistance
   (characterised once, outside the timing), 8-bit bit-serial inputs, 8-bit ADC, batch 64:
   ``tile.mvm`` vs ``x_int @ w_int`` in int64; target <= 10x the matmul's time.
"""

from __future__ import annotations

import os

# The tile's matmuls are small (512 x 256 x 256): OpenBLAS's worker threads only spin against
# the other processes of a shared 2-core machine (measured 50x slower than one thread there).
# The peer (int64 matmul) does not use BLAS, so one BLAS thread handicaps only our side.
# Effective when this file runs as a script (before NumPy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

try:  # noqa: E402
    from _common import Record, best_of, main
except ImportError:  # imported as benchmarks._common (e.g. from the test suite)
    from benchmarks._common import Record, best_of, main

from cimphys.cards import card_from_mapping  # noqa: E402
from cimphys.circuits.adc import ADC  # noqa: E402
from cimphys.circuits.tile import Tile  # noqa: E402


def bench_adc(quick: bool) -> Record:
    n = 10**6 if quick else 10**8
    x = np.random.default_rng(0).uniform(-0.1, 1.1, n)
    adc = ADC(bits=8).with_range(0.0, 1.0)
    lo, lsb = 0.0, 1.0 / 255
    adc.convert(x[:1000])  # compile outside the timing

    def numpy_chain():
        return np.clip(np.floor((x - lo) / lsb + 0.5), 0, 255).astype(np.int64)

    assert np.array_equal(adc.convert(x[:100000]), numpy_chain()[:100000])
    repeat = 5 if quick else 2
    ours = best_of(lambda: adc.convert(x), repeat=repeat)
    peer = best_of(numpy_chain, repeat=repeat)
    return Record(f"ADC ideal 8-bit, {n:.0e} samples", ours, "numpy floor/clip chain", peer, "s", 1.0)


def _card(m: int):
    return card_from_mapping(
        {
            "model": {"name": "tile"},
            "parameters": {"rows": m, "cols": m, "g_min_s": 1e-6, "g_max_s": 1e-5, "v_read_v": 0.2,
                           "r_wire_per_cell_ohm": 1.0, "t_read_s": 1e-7},
            "dac": {"bits": 1},
            "sense": {"kind": "tia", "r_f_ohm": 4e3, "gain": 1e4},
            "adc": {"bits": 8, "kind": "sar"},
            "provenance": {"source": "benchmark", "url": "https://doi.org/10.1109/ISCA.2016.12",
                           "fitted": "none", "method": "ISAAC-like benchmark geometry", "residual": "none"},
        },
        "circuit", "bench card", "bench",
    )


def bench_tile(quick: bool) -> Record:
    m, batch = (128, 64) if quick else (256, 64)
    rng = np.random.default_rng(1)
    w = rng.integers(1, 16, (m, m))
    tile = Tile(_card(m), 1e-6 * w / 1.5, seed=0)
    x = rng.integers(0, 256, (batch, m))
    tile.characterisation()
    tile.calibrate(x, input_bits=8)
    tile.mvm(x, input_bits=8)  # compile outside the timing
    ours = best_of(lambda: tile.mvm(x, input_bits=8), repeat=5)
    peer = best_of(lambda: x @ w, repeat=5)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return Record(f"tile MVM {m}x{m}, 8-bit bit-serial, 8-bit ADC, batch {batch}", ours,
                  "int64 x @ w", peer, "s", 10.0, lower_is_better=True, notes=f"BLAS threads: {blas}")


def run(quick: bool = False) -> list[Record]:
    return [bench_adc(quick), bench_tile(quick)]


if __name__ == "__main__":
    main(run)
