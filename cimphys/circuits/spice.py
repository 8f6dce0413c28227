"""SPICE netlists of a crossbar and an ngspice runner: the outside reference for the solvers.

:func:`write_netlist` writes the network of :class:`cimphys.circuits.nodal.Network` (every
option) with cells given by a *cell writer*: a callable ``cells(i, j, top, bottom) -> list of
netlist lines`` for the cell at row ``i``, column ``j`` between node names ``top`` (WL side)
and ``bottom`` (BL side).  :func:`resistor_cells` and :func:`sinh_cells` are provided; other
cells (e.g. 1T1R with a level-1 MOSFET) pass their own writer plus ``extra`` lines for
``.model`` cards and gate sources.  :func:`run_ngspice` runs ``ngspice -b`` on the operating
point and returns every node voltage and source current; :func:`crossbar_from_values` turns
those into ``v_wl, v_bl, i_out``.

Node names: WL node ``(i, j)`` is ``w{i}_{j}``, BL node ``b{i}_{j}``, WL source ``in{i}``, sense
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
from .nodal import Network

__all__ = [
    "OPTIONS",
    "crossbar_from_values",
    "resistor_cells",
    "run_ngspice",
    "simulate",
    "sinh_cells",
    "write_netlist",
]

#: Tolerances of every run: tight enough that ngspice's own error (~reltol) is far below the
#: 1e-9 agreement asked of the linear solvers.
OPTIONS = ".options reltol=1e-9 abstol=1e-18 vntol=1e-12"

CellWriter = Callable[[int, int, str, str], Sequence[str]]


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
