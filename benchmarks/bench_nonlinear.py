"""Newton on a crossbar of sinh cells against ngspice on the same netlist.

128 x 128 cells ``I = k sinh(a V)`` (k uniform in [2, 20] uA, a = 4 /V), r_wl = r_bl = 1 ohm,
inputs uniform in [0.1, 0.4] V.  Ours: :func:`cimphys.circuits.newton.solve_nonlinear` (warm,
best of 3).  Peer: ``ngspice -b`` on the netlist written by :mod:`cimphys.circuits.spice`
(``.op``, reltol 1e-9; process start and netlist parse included, as a user would run it), run once: at
128 x 128 it takes minutes.  Target: >= 100x.  ``quick=True`` uses 32 x 32, a smoke run with a
5x target (ngspice's cost grows faster with size than ours: ~10x at 32 x 32, ~200x at 128).  The answers are
checked against each other (1e-7 relative) so that a fast wrong answer cannot pass.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Record, best_of, main  # noqa: E402

RTOL_AGREE = 1e-7  # the validation campaign's tolerance against ngspice


def run(quick: bool = False) -> list[Record]:
    from cimphys.circuits import spice
    from cimphys.circuits.newton import solve_nonlinear
    from cimphys.circuits.nodal import Network
    from cimphys.devices import SinhCell

    n = 32 if quick else 128
    rng = np.random.default_rng(128)
    k, a, v_in = rng.uniform(2e-6, 2e-5, (n, n)), 4.0, rng.uniform(0.1, 0.4, n)
    wires = dict(r_wl=1.0, r_bl=1.0, r_driver=0.0, r_sense=0.0)
    net, cell = Network.build((n, n), **wires), SinhCell(k=k, a=a)
    sol = solve_nonlinear(net, cell, v_in)  # compile and warm up
    ours = best_of(lambda: solve_nonlinear(net, cell, v_in), repeat=3)
    with tempfile.TemporaryDirectory() as tmp:
        path = spice.write_netlist(Path(tmp) / "sinh.cir", net, v_in, spice.sinh_cells(k, a))
        start = time.perf_counter()
        values = spice.run_ngspice(path, timeout=3600)
        peer = time.perf_counter() - start
    i_ref = spice.crossbar_from_values(values, net)[2]
    err = float(np.max(np.abs(sol.i_out - i_ref)) / np.max(np.abs(i_ref)))
    if err > RTOL_AGREE:
        raise AssertionError(f"Newton and ngspice disagree: {err:.2e} relative on i_out")
    return [
        Record(
            name=f"sinh cells {n}x{n}, Newton solve",
            ours=ours,
            peer_name="ngspice -b .op (B-sources)",
            peer=peer,
            unit="s",
            target=5.0 if quick else 100.0,
            notes=f"{int(sol.iterations[0])} Newton iterations; i_out vs ngspice {err:.1e}",
        )
    ]


if __name__ == "__main__":
    main(run)
