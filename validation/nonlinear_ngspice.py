"""Campaign: Newton on the full crossbar against ngspice, sinh and 1T1R cells.

The reference crossbar of DESIGN.md with nonlinear cells is written as an ngspice netlist:

* sinh cells as behavioural current sources ``B... I = k*sinh(a*(V(wl)-V(bl)))``;
* 1T1R cells as a resistor in series with ngspice's level-1 MOSFET
  (``.model nacc nmos level=1 vto kp lambda gamma phi``, identical parameters, junction
  saturation currents 0 and ``gmin`` 1e-20 S so that the junctions carry nothing), gate driven
  per row by an ideal source, bulk at 0 V;

solved with ``.op`` (``reltol=1e-9 abstol=1e-18 vntol=1e-12``) and compared with
:func:`cimphys.circuits.newton.solve_nonlinear`: ``i_out`` and every node voltage within
``RTOL`` relative (to the largest value of the quantity).  Cases: square and non-square
arrays, wire segments 0.1 .. 20 ohm, with and without driver and sense resistance.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from cimphys.circuits.newton import solve_nonlinear
from cimphys.circuits.nodal import Network
from cimphys.devices import Level1Mosfet, OneTransistorOneResistor, SinhCell

# ngspice stops at reltol 1e-9 on its own Newton updates; 1e-7 leaves two decades for that.
RTOL = 1e-7
NGSPICE_OPTIONS = ".options reltol=1e-9 abstol=1e-18 vntol=1e-12 gmin=1e-20 itl1=500"
NMOS = dict(vto=0.43, kp=115e-6, lambda_=0.06, gamma=0.4, phi=0.6, w=0.5e-6, l=0.25e-6)


def _fmt(x: float) -> str:
    return repr(float(x))


def write_netlist(path: Path, shape, v_in, wires: dict, cell_lines, extra=()) -> Path:
    """Reference-geometry netlist with per-cell element lines from ``cell_lines(i, j, wl, bl)``.

    Every WL's first resistor is ``r_driver + r_wl`` and every BL's last ``r_bl + r_sense``;
    ``r_wl`` and ``r_bl`` must be > 0.  BL ``j`` ends in a 0 V source ``vs{j}`` whose current
    is ``i_out[j]``.
    """
    m, n = shape
    lines = [f"* cimphys nonlinear crossbar {m}x{n}", NGSPICE_OPTIONS, *extra]
    for i in range(m):
        lines.append(f"vin{i} in{i} 0 dc {_fmt(v_in[i])}")
        lines.append(f"rd{i} in{i} w{i}_0 {_fmt(wires['r_driver'] + wires['r_wl'])}")
        for j in range(n - 1):
            lines.append(f"rw{i}_{j} w{i}_{j} w{i}_{j + 1} {_fmt(wires['r_wl'])}")
        for j in range(n):
            lines += cell_lines(i, j, f"w{i}_{j}", f"b{i}_{j}")
    for j in range(n):
        for i in range(m - 1):
            lines.append(f"rb{i}_{j} b{i}_{j} b{i + 1}_{j} {_fmt(wires['r_bl'])}")
        lines.append(f"rs{j} b{m - 1}_{j} s{j} {_fmt(wires['r_bl'] + wires['r_sense'])}")
        lines.append(f"vs{j} s{j} 0 dc 0")
    lines += [".control", "set filetype=ascii", "op", f"write {path.with_suffix('.raw').name} all", ".endc", ".end"]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_ngspice(path: Path, shape, timeout: float = 600.0) -> dict:
    """Run ``ngspice -b`` on ``path``; return ``v_wl``, ``v_bl`` (M, N) and ``i_out`` (N,)."""
    exe = shutil.which("ngspice")
    if exe is None:
        raise FileNotFoundError("ngspice not on PATH")
    raw = path.with_suffix(".raw")
    raw.unlink(missing_ok=True)
    proc = subprocess.run([exe, "-b", path.name], cwd=path.parent, capture_output=True, text=True, timeout=timeout)
    # ngspice -b exits 1 after a .control-only run ("no simulations run"): judge by the output.
    log = proc.stdout + proc.stderr
    if not raw.is_file() or "error" in log.lower():
        raise RuntimeError(f"ngspice failed on {path} (exit {proc.returncode}): {log[-500:]}")
    values = _read_ascii_raw(raw)
    m, n = shape
    v_wl = np.array([[values[f"v(w{i}_{j})"] for j in range(n)] for i in range(m)])
    v_bl = np.array([[values[f"v(b{i}_{j})"] for j in range(n)] for i in range(m)])
    i_out = np.array([values[f"i(vs{j})"] for j in range(n)])
    return {"v_wl": v_wl, "v_bl": v_bl, "i_out": i_out}


def _read_ascii_raw(raw: Path) -> dict[str, float]:
    text = raw.read_text().splitlines()
    k = next(i for i, s in enumerate(text) if s.startswith("Variables:"))
    n_vars = int(next(s for s in text if s.startswith("No. Variables:")).split(":")[1])
    names = [text[k + 1 + v].split()[1].lower() for v in range(n_vars)]
    start = next(i for i, s in enumerate(text) if s.startswith("Values:")) + 1
    numbers = " ".join(text[start:]).split()[1:]  # drop the point index
    return dict(zip(names, (float(x) for x in numbers[:n_vars])))


def sinh_lines(k: np.ndarray, a: float):
    def lines(i, j, wl, bl):
        return [f"bc{i}_{j} {wl} {bl} i={_fmt(k[i, j])}*sinh({_fmt(a)}*(v({wl})-v({bl})))"]

    return lines


def access_lines(r: np.ndarray, mos: Level1Mosfet):
    def lines(i, j, wl, bl):
        return [
            f"rc{i}_{j} {wl} x{i}_{j} {_fmt(r[i, j])}",
            f"mc{i}_{j} x{i}_{j} g{i} {bl} 0 nacc w={_fmt(mos.w)} l={_fmt(mos.l)}",
        ]

    return lines


def cases(quick: bool):
    """(name, kind, shape, wires) of the campaign; seeds fixed per case."""
    base = [
        ("sinh_6x4_r0.1", "sinh", (6, 4), dict(r_wl=0.1, r_bl=0.1, r_driver=0.0, r_sense=0.0)),
        ("1t1r_5x7_r20_drv", "1t1r", (5, 7), dict(r_wl=20.0, r_bl=20.0, r_driver=50.0, r_sense=10.0)),
        # 2 kohm sense resistors lift the BL nodes (body effect, v_sb up to ~0.3 V) and negative
        # rows run the transistors with source and drain swapped.
        ("1t1r_6x5_body_reverse", "1t1r", (6, 5), dict(r_wl=2.0, r_bl=2.0, r_driver=0.0, r_sense=2000.0)),
    ]
    full = [
        ("sinh_16x16_r5_drv", "sinh", (16, 16), dict(r_wl=5.0, r_bl=5.0, r_driver=10.0, r_sense=10.0)),
        ("sinh_12x20_r20", "sinh", (12, 20), dict(r_wl=20.0, r_bl=20.0, r_driver=0.0, r_sense=0.0)),
        ("1t1r_8x8_r1", "1t1r", (8, 8), dict(r_wl=1.0, r_bl=1.0, r_driver=0.0, r_sense=0.0)),
        ("1t1r_16x10_r5", "1t1r", (16, 10), dict(r_wl=5.0, r_bl=5.0, r_driver=20.0, r_sense=0.0)),
    ]
    return base if quick else base + full


def build_case(kind, shape, seed):
    """Cell model, ngspice element writer, extra lines and v_in for one random case."""
    rng = np.random.default_rng(seed)
    m, n = shape
    if kind == "sinh":
        k, a = rng.uniform(2e-6, 2e-5, shape), 4.0
        return SinhCell(k=k, a=a), sinh_lines(k, a), [], rng.uniform(0.1, 0.4, m)
    mos = Level1Mosfet(**NMOS)
    r = rng.uniform(5e3, 2e4, shape)
    vg = rng.uniform(1.0, 1.8, m)
    extra = [mos.spice_model("nacc")] + [f"vg{i} g{i} 0 dc {_fmt(vg[i])}" for i in range(m)]
    v_in = rng.uniform(0.1, 0.5, m)
    if m == 6:  # the body-effect case: rows 1 and 4 driven negative, below their BL nodes
        v_in[1::3] = -rng.uniform(0.1, 0.4, v_in[1::3].size)
    return OneTransistorOneResistor(mos, r, vg), access_lines(r, mos), extra, v_in


def run(out_dir: Path, quick: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checks, files = [], []
    for seed, (name, kind, shape, wires) in enumerate(cases(quick)):
        cell, lines, extra, v_in = build_case(kind, shape, seed)
        path = write_netlist(out_dir / f"{name}.cir", shape, v_in, wires, lines, extra)
        files.append(str(path))
        ref = run_ngspice(path, shape)
        sol = solve_nonlinear(Network.build(shape, **wires), cell, v_in)
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
