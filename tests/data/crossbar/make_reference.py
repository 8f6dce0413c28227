"""Regenerate (or check) the ngspice solutions stored in this folder's reference cases.

Each ``.npz`` holds the inputs of one case of the reference crossbar (``G`` or ``k, a``; ``v_in``;
``r_wl, r_bl, r_driver, r_sense``) and ngspice's operating point for them (``i_out``, ``v_wl``,
``v_bl``; see README.md).  This script writes each case as a netlist with
:mod:`cimphys.circuits.spice` (the same netlist conventions), solves it with ``ngspice -b``
(``.op``, reltol 1e-9, abstol 1e-18, vntol 1e-12) and either compares the result with the stored
one (default) or overwrites the stored outputs (``--write``).  The inputs were drawn once and are
kept as they are.  Needs ngspice on PATH (``apt-get install ngspice``).

    python tests/data/crossbar/make_reference.py            # check: prints the largest deviation
    python tests/data/crossbar/make_reference.py --write    # regenerate the outputs in place
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from cimphys.circuits.nodal import Network
from cimphys.circuits.spice import resistor_cells, simulate, sinh_cells

HERE = Path(__file__).resolve().parent
OUTPUTS = ("v_wl", "v_bl", "i_out")


def solve(case: dict, workdir: Path) -> dict:
    """ngspice's ``v_wl, v_bl, i_out`` for one stored case."""
    m, n = case["v_in"].shape[0], (case["G"] if "G" in case else case["k"]).shape[1]
    net = Network.build((m, n), float(case["r_wl"]), float(case["r_bl"]), float(case["r_driver"]),
                        float(case["r_sense"]))
    cells = resistor_cells(case["G"]) if "G" in case else sinh_cells(case["k"], float(case["a"]))
    return dict(zip(OUTPUTS, simulate(net, case["v_in"], cells, workdir)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="overwrite the stored outputs")
    args = parser.parse_args(argv)
    worst = 0.0
    for path in sorted(HERE.glob("*.npz")):
        with np.load(path) as data:
            case = {k: data[k] for k in data.files}
        with tempfile.TemporaryDirectory() as tmp:
            fresh = solve(case, Path(tmp))
        dev = max(np.abs(fresh[k] - case[k]).max() / np.abs(case[k]).max() for k in OUTPUTS)
        worst = max(worst, dev)
        print(f"{path.name}: largest deviation from the stored solution {dev:.2e} (relative to max |x|)")
        if args.write:
            np.savez(path, **{**case, **fresh})
    print(f"worst {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
