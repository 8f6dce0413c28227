"""Campaign: the linear crossbar solver against two published peers on shared cases.

* badcrossbar 1.1.0 (D. Joksas, A. Mehonic et al., "Nonideality-aware training for accurate and
  robust low-power memristive neural networks", Adv. Sci. 2022; MIT; PyPI) solves the same
  nodal equations directly: word lines driven at their first column through one segment, bit
  lines grounded after their last row through one segment -- the geometry of the reference
  crossbar (DESIGN.md).  Its output currents must agree with :class:`cimphys.Crossbar` to
  ``RTOL_DIRECT`` of the IR drop (both direct solves; measured ~1e-13).
* CrossSim 3.2.0 (Sandia; BSD-3) solves the wires by under-relaxed fixed-point iteration
  (``simulator/circuits/array``), stopping at a node-voltage error of ``Verr_th_mvm`` of the
  input; set here to ``VERR_TH``, its outputs must agree to ``RTOL_ITERATIVE`` of the IR drop.

The error is ``max |i_peer - i_cimphys| / max |G.T v - i_cimphys|``: relative to the wire effect
itself, so a solver that ignored the wires would score 1.  Wall times of each solver on each case
(same process, same inputs, best of 3) are in ``data``; the load of the machine is not controlled.

Install the peers with ``pip install --no-deps badcrossbar sigfig pathvalidate`` and
``pip install /work/shared/peers/crosssim-3.2.0-py3-none-any.whl``.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

RTOL_DIRECT = 1e-9  # two direct sparse/dense solves of the same equations: rounding only
VERR_TH = 1e-7  # CrossSim's stopping threshold, node-voltage error / input voltage (its default: 1e-3)
RTOL_ITERATIVE = 1e-4  # CrossSim's i_out error at that threshold: measured ~1e-6 of the IR drop on a 32 x 16 tile
SEED = 2016
G_RANGE = (1e-6, 1e-4)  # S: 10 kohm .. 1 Mohm cells
QUICK = [((16, 16), 1.0), ((32, 24), 5.0)]
FULL = QUICK + [((64, 64), 1.0), ((96, 96), 1.0)]  # CrossSim did not converge in 200 s on 128 x 128 at 2.5 ohm
BATCH = 8


def _best(fn, repeats=3):
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def _badcrossbar(g, r, v):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its plotting submodule warns that cairo is absent
        import badcrossbar
    logging.getLogger("badcrossbar").setLevel(logging.WARNING)
    return badcrossbar.compute(v.T, 1.0 / g, r_i_word_line=r, r_i_bit_line=r).currents.output


def _crosssim(g, r, v):
    """CrossSim's parasitic solver alone: the cells as an offset core, DAC/ADC/noise off."""
    from simulator import AnalogCore, CrossSimParameters

    g_min, g_max = G_RANGE
    v_max = float(np.max(v))
    inputs = {"clipping": True, "min": 0.0, "max": 1.0, "percentile": None}
    params = CrossSimParameters(**{
        "core": {"style": "OFFSET", "offset": {"style": "DIGITAL_OFFSET"},
                 "mapping": {"weights": {"clipping": True, "min": -1.0, "max": 1.0, "percentile": None},
                             "inputs": {"mvm": dict(inputs), "vmm": dict(inputs)}}},
        "simulation": {"Verr_th_mvm": VERR_TH, "Niters_max_parasitics": 5000, "hide_convergence_msg": True},
        "xbar": {"device": {"Rmin": 1 / g_max, "Rmax": 1 / g_min, "clip_conductance": False},
                 "array": {"parasitics": {"enable": True, "Rp_row": r, "Rp_col": r}}},
    })
    w = (g - g_min) / (g_max - g_min)
    core = AnalogCore((2.0 * w - 1.0).T, params)
    x = v / v_max
    y = core.matmat(x.T).T  # in matrix units: sum_i (2 w - 1) x_i of the wired array
    # back to amperes: G = g_min + w (g_max - g_min) and the offset core subtracts its half level
    dot = 0.5 * (y + x.sum(axis=1, keepdims=True))
    return (dot * (g_max - g_min) + g_min * x.sum(axis=1, keepdims=True)) * v_max


def run(out_dir: Path, quick: bool = False) -> dict:
    from cimphys import Crossbar

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    checks, rows = [], []
    for (m, n), r in QUICK if quick else FULL:
        g = rng.uniform(*G_RANGE, (m, n))
        v = rng.uniform(0.0, 0.3, (BATCH, m))
        ours, t_ours = _best(lambda: Crossbar(g, r_wl=r, r_bl=r).solve(v).i_out)
        drop = np.max(np.abs(v @ g - ours))
        row = {"case": f"{m}x{n} r={r:g}", "cells": m * n, "cimphys_s": t_ours}
        for peer, solve, tol in (("badcrossbar", _badcrossbar, RTOL_DIRECT), ("crosssim", _crosssim, RTOL_ITERATIVE)):
            theirs, seconds = _best(lambda: solve(g, r, v), repeats=1 if m * n > 20000 else 3)
            err = float(np.max(np.abs(theirs - ours)) / drop)
            checks.append({"name": f"{peer} {row['case']} i_out / IR drop", "value": err, "tolerance": tol,
                           "unit": "1", "passed": err <= tol})
            row[f"{peer}_s"] = seconds
            row[f"{peer}_error"] = err
        rows.append(row)
    path = out_dir / "peer_crossbar.json"
    path.write_text(json.dumps(rows, indent=2) + "\n")
    return {
        "campaign": "peer_crossbar",
        "reference": "badcrossbar 1.1.0 (PyPI, MIT) and CrossSim 3.2.0 (Sandia, BSD-3) parasitic solvers",
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
        "files": [str(path)],
        "data": {k: np.array([row[k] for row in rows]) for k in ("cimphys_s", "badcrossbar_s", "crosssim_s")},
    }
