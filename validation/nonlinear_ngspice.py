"""Campaign: Newton on the full crossbar against ngspice, sinh and 1T1R cells.

The reference crossbar of DESIGN.md with nonlinear cells is written as an ngspice netlist by
``Crossbar.to_spice`` (:func:`cimphys.circuits.spice.write_crossbar`):

* sinh cells as behavioural current sources ``B... I = k*sinh(a*(V(wl)-V(bl)))``;
* 1S1R cells as a B-source selector ``I = i_0 sinh(V/v_0)`` in series with a resistor;
* 1T1R cells as a resistor in series with ngspice's level-1 MOSFET
  (``.model nacc nmos level=1 vto kp lambda gamma phi``, identical parameters, junction
  saturation currents 0 and ``gmin`` 1e-20 S so that the junctions carry nothing), gate driven
  per row by an ideal source, bulk at 0 V;

solved with ``.op`` (``reltol=1e-9 abstol=1e-18 vntol=1e-12``) and compared with
``Crossbar.solve`` (:func:`cimphys.circuits.newton.solve_nonlinear`): ``i_out`` and every node voltage within
``RTOL`` relative (to the largest value of the quantity).  Cases: square and non-square
arrays, wire segments 0.1 .. 20 ohm, with and without driver and sense resistance, and the
networks of :mod:`cimphys.circuits.sneak` (floating lines for a read, biased BL ends for a
V/3 write).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cimphys.circuits import Crossbar, spice
from cimphys.devices import Level1Mosfet, OneTransistorOneResistor, SelectorResistorCell, SinhCell, SinhSelector

# ngspice stops at reltol 1e-9 on its own Newton updates; 1e-7 leaves two decades for that.
RTOL = 1e-7
NMOS = dict(vto=0.43, kp=115e-6, lambda_=0.06, gamma=0.4, phi=0.6, w=0.5e-6, l=0.25e-6)


def cases(quick: bool):
    """(name, kind, shape, wires) of the campaign; seeds fixed per case."""
    base = [
        ("sinh_6x4_r0.1", "sinh", (6, 4), dict(r_wl=0.1, r_bl=0.1, r_driver=0.0, r_sense=0.0)),
        ("1t1r_5x7_r20_drv", "1t1r", (5, 7), dict(r_wl=20.0, r_bl=20.0, r_driver=50.0, r_sense=10.0)),
        # 2 kohm sense resistors lift the BL nodes (body effect, v_sb up to ~0.3 V) and negative
        # rows run the transistors with source and drain swapped.
        ("1t1r_6x5_body_reverse", "1t1r", (6, 5), dict(r_wl=2.0, r_bl=2.0, r_driver=0.0, r_sense=2000.0)),
        # sneak.read_margin's network: 1S1R cells, one WL driven, one BL into a 10 kohm load,
        # every other line floating.
        ("1s1r_6x6_floating_read", "1s1r", (6, 6), dict(
            r_wl=2.0, r_bl=2.0, r_sense=1e4, wl_floating=np.arange(6) != 0, bl_floating=np.arange(6) != 5,
        )),
    ]
    full = [
        ("sinh_16x16_r5_drv", "sinh", (16, 16), dict(r_wl=5.0, r_bl=5.0, r_driver=10.0, r_sense=10.0)),
        ("sinh_12x20_r20", "sinh", (12, 20), dict(r_wl=20.0, r_bl=20.0, r_driver=0.0, r_sense=0.0)),
        ("1t1r_8x8_r1", "1t1r", (8, 8), dict(r_wl=1.0, r_bl=1.0, r_driver=0.0, r_sense=0.0)),
        ("1t1r_16x10_r5", "1t1r", (16, 10), dict(r_wl=5.0, r_bl=5.0, r_driver=20.0, r_sense=0.0)),
        # sneak.write_bias's network: V/3 scheme (other BL ends held at 2V/3), sinh cells.
        ("sinh_10x8_v3_write", "sinh", (10, 8), dict(r_wl=5.0, r_bl=5.0, v_bl_end=np.r_[[2 / 3] * 3, 0.0, [2 / 3] * 4])),
    ]
    return base if quick else base + full


def build_case(kind, shape, seed):
    """Cell model and v_in for one random case."""
    rng = np.random.default_rng(seed)
    m, n = shape
    if kind == "sinh":
        k, a = rng.uniform(2e-6, 2e-5, shape), 4.0
        v_in = rng.uniform(0.1, 0.4, m)
        if m == 10:  # the V/3 write case: row 3 at V = 1 V, the others at V/3
            v_in = np.where(np.arange(m) == 3, 1.0, 1 / 3)
        return SinhCell(k=k, a=a), v_in
    if kind == "1s1r":
        sel = SinhSelector(i_0=2e-10, v_0=0.0724)
        r = np.where(rng.uniform(size=shape) < 0.8, 1e4, 1e6)  # mostly on: a heavy sneak pattern
        return SelectorResistorCell(sel, r), np.full(m, 1.0)
    mos = Level1Mosfet(**NMOS)
    r = rng.uniform(5e3, 2e4, shape)
    vg = rng.uniform(1.0, 1.8, m)
    v_in = rng.uniform(0.1, 0.5, m)
    if m == 6:  # the body-effect case: rows 1 and 4 driven negative, below their BL nodes
        v_in[1::3] = -rng.uniform(0.1, 0.4, v_in[1::3].size)
    return OneTransistorOneResistor(mos, r, vg), v_in


def run(out_dir: Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checks, files = [], []
    for seed, (name, kind, shape, wires) in enumerate(cases(quick)):
        cell, v_in = build_case(kind, shape, seed)
        xb = Crossbar(None, cell=cell, **wires)
        path = xb.to_spice(out_dir / f"{name}.cir", v_in, title=name)
        files.append(str(path))
        ref = dict(zip(("v_wl", "v_bl", "i_out"), spice.crossbar_from_values(spice.run_ngspice(path), xb.network)))
        sol = xb.solve(v_in)
        for key in ("i_out", "v_wl", "v_bl"):
            err = float(np.max(np.abs(getattr(sol, key) - ref[key])) / np.max(np.abs(ref[key])))
            check = {"name": f"{name} {key}", "value": err, "tolerance": RTOL, "unit": "1", "passed": err <= RTOL}
            checks.append(check)
    return {
        "campaign": "nonlinear_ngspice",
        "reference": "ngspice 39 .op (B-source sinh cells; level-1 MOSFET 1T1R cells)",
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
        "files": files,
    }
