"""Campaign: the linear crossbar solver against ngspice 39 on random networks.

Random cases (square and non-square; per-segment wire resistances drawn in 0.1..20 ohm; with
and without driver and sense resistance; boundary options and zero resistances mixed in) are
written as SPICE netlists by :mod:`cimphys.circuits.spice`, solved by ``ngspice -b`` at the
operating point (reltol 1e-9, abstol 1e-18, vntol 1e-12), and compared with
:class:`cimphys.Crossbar` on both solver paths: output currents and every node voltage.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

# ngspice iterates to reltol = 1e-9 on every node; our solves are exact to 1e-12, so the
# agreement is set by ngspice's tolerance.
RTOL = 1e-9
SEED = 20261125

QUICK = [
    ((4, 5), {}),
    ((6, 6), {"driver": True, "sense": True}),
    ((7, 3), {"wl_drive": "both", "sense_at": "first", "zeros": True}),
]
FULL = QUICK + [
    ((16, 16), {}),
    ((12, 24), {"driver": True}),
    ((24, 10), {"sense": True, "v_bl_end": True}),
    ((32, 32), {"driver": True, "sense": True}),
    ((20, 28), {"zeros": True, "driver": True}),
    ((9, 40), {"wl_drive": "both", "driver": True, "sense": True}),
]


def _case(rng, shape, spec):
    m, n = shape
    r_wl, r_bl = rng.uniform(0.1, 20, (m, n)), rng.uniform(0.1, 20, (m, n))
    if spec.get("zeros"):
        r_wl[rng.random((m, n)) < 0.3] = 0.0
        r_bl[rng.random((m, n)) < 0.3] = 0.0
    kwargs = {
        "r_wl": r_wl,
        "r_bl": r_bl,
        "r_driver": rng.uniform(1, 100, m) if spec.get("driver") else 0.0,
        "r_sense": rng.uniform(1, 100, n) if spec.get("sense") else 0.0,
    }
    for key in ("wl_drive", "sense_at"):
        if key in spec:
            kwargs[key] = spec[key]
    if spec.get("v_bl_end"):
        kwargs["v_bl_end"] = rng.uniform(0, 0.3, n)
    g = 10 ** rng.uniform(-6, -3, (m, n))  # 1 uS .. 1 mS, log-uniform
    return g, kwargs, rng.uniform(-1, 1, m)


def _version() -> str:
    out = subprocess.run(["ngspice", "-v"], capture_output=True, text=True, timeout=60).stdout
    return next((line.strip("* ").strip() for line in out.splitlines() if "ngspice-" in line), "ngspice")


def run(out_dir: Path, quick: bool = False) -> dict:
    import cimphys
    from cimphys.circuits import spice

    out_dir = Path(out_dir)
    if shutil.which("ngspice") is None:
        raise FileNotFoundError("ngspice: not on PATH")
    rng = np.random.default_rng(SEED)
    checks, files = [], []
    worst = {"i_out": 0.0, "v_wl": 0.0, "v_bl": 0.0}
    for k, (shape, spec) in enumerate(QUICK if quick else FULL):
        g, kwargs, v_in = _case(rng, shape, spec)
        name = f"case{k:02d}_{shape[0]}x{shape[1]}"
        for method in ("direct", "iterative"):
            xb = cimphys.Crossbar(g, method=method, **kwargs)
            if method == "direct":
                path = xb.to_spice(out_dir / f"{name}.cir", v_in, title=name)
                ref = spice.crossbar_from_values(spice.run_ngspice(path), xb.network)
                files += [str(path), str(path.with_suffix(".raw"))]
            sol = xb.solve(v_in)
            for key, ours, theirs in zip(("v_wl", "v_bl", "i_out"), (sol.v_wl, sol.v_bl, sol.i_out), ref):
                err = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
                worst[key] = max(worst[key], err)
                checks.append(
                    {"name": f"{name} {method} {key}", "value": err, "tolerance": RTOL, "unit": "1", "passed": err <= RTOL}
                )
    summary = [
        {"name": f"worst {key}", "value": val, "tolerance": RTOL, "unit": "1", "passed": val <= RTOL}
        for key, val in worst.items()
    ]
    checks = summary + checks
    return {
        "campaign": "crossbar_ngspice",
        "reference": f"{_version()} operating point (.op, reltol 1e-9, abstol 1e-18, vntol 1e-12)",
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
        "files": files,
    }


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    result = run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()), quick="--quick" in sys.argv)
    print(json.dumps({k: v for k, v in result.items() if k != "files"}, indent=1)[:4000])
    sys.exit(0 if result["passed"] else 1)
