"""SPICE netlists of a crossbar and an ngspice runner: the outside reference for the solvers.

:func:`write_netlist` writes the network of :class:`cimphys.circuits.nodal.Network` (every
option) with cells given by a *cell writer*: a callable ``cells(i, j, top, bottom) -> list of
netlist lines`` for the cell at row ``i``, column ``j`` between node names ``top`` (WL side)
and ``bottom`` (BL side).  :func:`resistor_cells`, :func:`sinh_cells`,
:func:`selector_resistor_cells` (1S1R: a sinh selector B source in series with the state resistor)
and :func:`access_cells` (1T1R: the state resistor in series with ngspice's level-1 MOSFET, its
``.model`` and gate sources from :func:`access_extra`) are provided; :func:`cells_of` picks the
writer for a :class:`cimphys.Crossbar`'s cells and :func:`write_crossbar` (``Crossbar.to_spice``)
writes any array the solvers take.  :func:`run_ngspice` runs ``ngspice -b`` on the operating
point and returns every node voltage and source current; :func:`crossbar_from_values` turns
those into ``v_wl, v_bl, i_out``.

Node names: WL node ``(i, j)`` is ``w{i}_{j}``, the inner node of a 1S1R or 1T1R cell ``y{i}_{j}``,
the gate line of row ``i`` ``g{i}``, BL node ``b{i}_{j}``, WL source ``in{i}``, sense
node of BL ``j`` is ``s{j}``, held by the voltage source ``vs{j}`` whose current ``i(vs{j})``
is ``i_out[j]`` (SPICE's source current flows from its + node through it, here out of the
array).  A zero resistance is written as a 0 V source, which ngspice treats exactly.

References
----------
.. [1] ngspice 39 user manual, ch. 4 (B sources), ch. 11 (``.op``), ch. 15.4 (``.options``),
   ch. 17 (``write``, ASCII raw files). https://ngspice.sourceforge.io/docs.html
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from .network import Network

__all__ = [
    "NONLINEAR_OPTIONS",
    "OPTIONS",
    "access_cells",
    "access_extra",
    "cells_of",
    "crossbar_from_values",
    "resistor_cells",
    "run_ngspice",
    "selector_resistor_cells",
    "simulate",
    "sinh_cells",
    "write_crossbar",
    "write_netlist",
]

#: Tolerances of every run: tight enough that ngspice's own error (~reltol) is far below the
#: 1e-9 agreement asked of the linear solvers.
OPTIONS = ".options reltol=1e-9 abstol=1e-18 vntol=1e-12"

#: Added for nonlinear cells: no gmin across the MOSFET junctions (cimphys has none), and more
#: DC iterations than ngspice's default 100 for large arrays of exponential cells.
NONLINEAR_OPTIONS = ".options gmin=1e-20 itl1=500"

CellWriter = Callable[[int, int, str, str], Sequence[str]]


def _fmt(x: float) -> str:
    return repr(float(x))


def _per_cell(values, shape) -> np.ndarray:
    """A flat or scalar cell parameter as an (M, N) array."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    return np.full(shape, arr[0]) if arr.size == 1 else arr.reshape(shape)


def resistor_cells(G) -> CellWriter:
    """Linear cells of conductance ``G`` (M, N) in S; a zero conductance is left open."""
    g = np.asarray(G, dtype=float)

    def lines(i, j, top, bottom):
        return [f"rc{i}_{j} {top} {bottom} {1.0 / g[i, j]:.17g}"] if g[i, j] > 0 else []

    return lines


def sinh_cells(k, a) -> CellWriter:
    """Cells ``I = k*sinh(a*V)`` as behavioural current sources; ``k`` (A), ``a`` (1/V) scalar or (M, N)."""
    k_arr, a_arr = np.asarray(k, dtype=float), np.asarray(a, dtype=float)

    def at(arr, i, j):
        return float(arr[i, j]) if arr.ndim == 2 else float(arr)

    def lines(i, j, top, bottom):
        kk, aa = at(k_arr, i, j), at(a_arr, i, j)
        return [f"bc{i}_{j} {top} {bottom} i={kk:.17g}*sinh({aa:.17g}*(v({top})-v({bottom})))"]

    return lines


def selector_resistor_cells(r, i_0: float, v_0: float) -> CellWriter:
    """1S1R cells: selector ``I = i_0 sinh(V/v_0)`` (A, V) as a B source from the WL node to the
    inner node ``y{i}_{j}``, then the state resistance ``r`` (ohm, (M, N)) to the BL node."""
    r = np.asarray(r, dtype=float)

    def lines(i, j, top, bottom):
        mid = f"y{i}_{j}"
        return [f"bsel{i}_{j} {top} {mid} i={_fmt(i_0)}*sinh((v({top})-v({mid}))/{_fmt(v_0)})",
                f"rm{i}_{j} {mid} {bottom} {_fmt(r[i, j])}"]

    return lines


def access_cells(r, w: float, l: float, model: str = "nacc") -> CellWriter:  # noqa: E741 - SPICE's name
    """1T1R cells: state resistance ``r`` (ohm, (M, N)) from the WL node to ``y{i}_{j}``, then the
    NMOS ``model`` (drain ``y``, gate ``g{i}``, source the BL node, bulk ground) of width ``w`` and
    length ``l`` (m)."""
    r = np.asarray(r, dtype=float)

    def lines(i, j, top, bottom):
        mid = f"y{i}_{j}"
        return [f"rc{i}_{j} {top} {mid} {_fmt(r[i, j])}",
                f"mc{i}_{j} {mid} g{i} {bottom} 0 {model} w={_fmt(w)} l={_fmt(l)}"]

    return lines


def access_extra(mosfet, v_gate, rows: int, model: str = "nacc") -> list[str]:
    """The level-1 ``.model`` line of ``mosfet`` and one gate source per row (``v_gate`` V,
    scalar or (M,))."""
    vg = np.broadcast_to(np.asarray(v_gate, dtype=float).reshape(-1), (rows,))
    return [mosfet.spice_model(model)] + [f"vg{i} g{i} 0 dc {_fmt(vg[i])}" for i in range(rows)]


def cells_of(cell, G, shape) -> tuple[CellWriter, list[str]]:
    """The cell writer and extra lines for a :class:`cimphys.Crossbar`'s cells.

    ``cell`` None: linear cells of conductance ``G``; :class:`~cimphys.devices.SinhCell`,
    :class:`~cimphys.devices.SelectorResistorCell` (1S1R) and
    :class:`~cimphys.devices.OneTransistorOneResistor` (1T1R) map to their writers.
    """
    from ..devices import OneTransistorOneResistor, SelectorResistorCell, SinhCell

    if cell is None:
        return resistor_cells(G), []
    if isinstance(cell, SinhCell):
        return sinh_cells(_per_cell(cell.k, shape), _per_cell(cell.a, shape)), [NONLINEAR_OPTIONS]
    if isinstance(cell, SelectorResistorCell):
        sel = cell.selector
        return selector_resistor_cells(_per_cell(cell.r, shape), sel.i_0, sel.v_0), [NONLINEAR_OPTIONS]
    if isinstance(cell, OneTransistorOneResistor):
        mos = cell.mosfet
        return (access_cells(_per_cell(cell.r, shape), mos.w, mos.l),
                [NONLINEAR_OPTIONS, *access_extra(mos, cell.v_gate, shape[0])])
    raise InputError(f"cell: no SPICE writer for {type(cell).__name__}; netlists cover linear, SinhCell, "
                     f"SelectorResistorCell (1S1R) and OneTransistorOneResistor (1T1R) cells")


def write_crossbar(crossbar, path, v_in, *, title: str = "cimphys crossbar") -> Path:
    """Write the ngspice operating-point netlist of ``crossbar`` (:class:`cimphys.Crossbar`: its
    wires, drivers, sense resistances, boundary options and cells) driven by ``v_in`` (M,) V.

    Run it with ``ngspice -b path``: it writes every node voltage and source current to
    ``<stem>.raw``; ``i(vs{j})`` is ``i_out[j]`` (:func:`run_ngspice`, :func:`crossbar_from_values`).
    """
    cells, extra = cells_of(crossbar.cell, crossbar.G, crossbar.shape)
    return write_netlist(path, crossbar.network, v_in, cells, extra=extra, title=title)


def _branch(name: str, n1: str, n2: str, r: float) -> str:
    """A resistor, or a 0 V source (an exact short) when ``r == 0``."""
    return f"v{name} {n1} {n2} dc 0" if r == 0 else f"r{name} {n1} {n2} {r:.17g}"


def _wl_lines(net: Network, v_in: np.ndarray) -> list[str]:
    m, n = net.shape
    out = []
    for i in range(m):
        out += [_branch(f"w{i}_{j}", f"w{i}_{j - 1}", f"w{i}_{j}", net.r_wl[i, j]) for j in range(1, n)]
        if net.wl_floating[i]:
            continue
        out.append(f"vin{i} in{i} 0 dc {v_in[i]:.17g}")
        out.append(_branch(f"drv{i}", f"in{i}", f"d{i}", net.r_driver[i]))
        out.append(_branch(f"w{i}_0", f"d{i}", f"w{i}_0", net.r_wl[i, 0]))
        if net.wl_drive == "both":
            out.append(_branch(f"far{i}", f"in{i}", f"w{i}_{n - 1}", net.r_driver[i]))
    return out


def _bl_lines(net: Network) -> list[str]:
    m, n = net.shape
    last = net.sense_at == "last"
    end = m - 1 if last else 0
    out = []
    for j in range(n):
        for i in range(1, m):
            r = net.r_bl[i - 1, j] if last else net.r_bl[i, j]
            out.append(_branch(f"b{i}_{j}", f"b{i - 1}_{j}", f"b{i}_{j}", r))
        if net.bl_floating[j]:
            continue
        out.append(_branch(f"bend{j}", f"b{end}_{j}", f"e{j}", net.r_bl[end, j]))
        out.append(_branch(f"sen{j}", f"e{j}", f"s{j}", net.r_sense[j]))
        out.append(f"vs{j} s{j} 0 dc {net.v_bl_end[j]:.17g}")
    return out


def write_netlist(
    path,
    network: Network,
    v_in,
    cells: CellWriter,
    *,
    extra: Sequence[str] = (),
    title: str = "cimphys crossbar",
) -> Path:
    """Write the operating-point netlist of ``network`` driven by ``v_in`` (M,) V.

    The control block writes every vector to ``<path stem>.raw`` (ASCII, 15 digits) next to it.
    """
    m, n = network.shape
    v = np.asarray(v_in, dtype=float)
    if v.shape != (m,) or not np.isfinite(v).all():
        raise InputError(f"v_in: expected {m} finite voltages, got {v!r:.80}")
    path = Path(path)
    cell_lines = [line for i in range(m) for j in range(n) for line in cells(i, j, f"w{i}_{j}", f"b{i}_{j}")]
    raw = path.with_suffix(".raw").name
    text = [
        f"* {title}: {m} x {n} crossbar (cimphys.circuits.spice)",
        *_wl_lines(network, v),
        *_bl_lines(network),
        *cell_lines,
        *extra,
        OPTIONS,
        ".control",
        "set filetype=ascii",
        "op",
        f"write {raw}",
        ".endc",
        ".end",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text) + "\n")
    return path


def run_ngspice(netlist, *, ngspice: str = "ngspice", timeout: float = 600.0) -> dict[str, float]:
    """Run ``ngspice -b`` on ``netlist`` (from :func:`write_netlist`); return ``{vector: value}``.

    Keys are ngspice's lower-case vector names, e.g. ``"v(w0_3)"`` and ``"i(vs2)"``.

    Raises
    ------
    FileNotFoundError
        If the ngspice binary is not on PATH.
    RuntimeError
        If ngspice fails or writes no results.
    """
    exe = shutil.which(ngspice)
    if exe is None:
        raise FileNotFoundError(f"{ngspice}: not on PATH (install ngspice, e.g. apt-get install ngspice)")
    netlist = Path(netlist)
    raw = netlist.with_suffix(".raw")
    raw.unlink(missing_ok=True)
    proc = subprocess.run(
        [exe, "-b", netlist.name], cwd=netlist.parent, capture_output=True, text=True, timeout=timeout
    )
    # ngspice -b exits 1 after a .control-only run ("no simulations run"): judge by the raw
    # file and by error messages instead of the exit status.
    log = proc.stdout + proc.stderr
    if not raw.is_file() or "error" in log.lower():
        tail = log[-800:]
        raise RuntimeError(f"ngspice failed on {netlist} (exit {proc.returncode}): {tail}")
    return _read_ascii_raw(raw)


def _read_ascii_raw(path: Path) -> dict[str, float]:
    lines = path.read_text().splitlines()
    start = lines.index("Variables:") + 1
    stop = lines.index("Values:")
    names = [line.split()[1] for line in lines[start:stop]]
    values = [float(tok) for line in lines[stop + 1 :] for tok in line.split()[-1:]]
    if len(values) != len(names):
        raise RuntimeError(f"{path}: {len(names)} variables but {len(values)} values")
    return dict(zip(names, values))


def crossbar_from_values(values: dict[str, float], network: Network):
    """``v_wl, v_bl`` (M, N) V and ``i_out`` (N,) A from :func:`run_ngspice` results."""
    m, n = network.shape
    v_wl = np.array([[values[f"v(w{i}_{j})"] for j in range(n)] for i in range(m)])
    v_bl = np.array([[values[f"v(b{i}_{j})"] for j in range(n)] for i in range(m)])
    i_out = np.array([0.0 if network.bl_floating[j] else values[f"i(vs{j})"] for j in range(n)])
    return v_wl, v_bl, i_out


def simulate(network: Network, v_in, cells: CellWriter, workdir, *, name: str = "crossbar", **kwargs):
    """Write, run and read back one case: ``(v_wl, v_bl, i_out)`` from ngspice."""
    path = write_netlist(Path(workdir) / f"{name}.cir", network, v_in, cells, **kwargs)
    return crossbar_from_values(run_ngspice(path), network)
