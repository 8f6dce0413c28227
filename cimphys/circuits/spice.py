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

A :class:`Pulse` given to :func:`write_netlist` (``Crossbar.to_spice(..., pulse=...)``) drives
every word line with a trapezoidal ``PULSE`` source from 0 V to its ``v_in`` and writes ``.tran``
with the pulse's stated step instead of ``.op``; :func:`run_transient` returns every vector as a
waveform on ngspice's time points and :func:`at_time` reads them at one instant (the pulse
plateau: :meth:`Pulse.plateau`), which :func:`crossbar_from_values` takes as it takes ``.op``
results.

Node names: WL node ``(i, j)`` is ``w{i}_{j}``, the inner node of a 1S1R or 1T1R cell ``y{i}_{j}``,
the gate line of row ``i`` ``g{i}``, BL node ``b{i}_{j}``, WL source ``in{i}``, sense
node of BL ``j`` is ``s{j}``, held by the voltage source ``vs{j}`` whose current ``i(vs{j})``
is ``i_out[j]`` (SPICE's source current flows from its + node through it, here out of the
array).  A zero resistance is written as a 0 V source, which ngspice treats exactly.

References
----------
.. [1] ngspice 39 user manual, ch. 4.1.1 (``PULSE`` sources), ch. 5 (B sources), ch. 11
   (``.op``, ``.tran``), ch. 15.4 (``.options``), ch. 17 (``write``, ASCII raw files).
   https://ngspice.sourceforge.io/docs.html
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .network import Network

__all__ = [
    "NONLINEAR_OPTIONS",
    "OPTIONS",
    "Pulse",
    "access_cells",
    "access_extra",
    "at_time",
    "cells_of",
    "crossbar_from_values",
    "resistor_cells",
    "run_ngspice",
    "run_transient",
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


@dataclass(frozen=True)
class Pulse:
    """One trapezoidal read pulse on every driven word line, for a ``.tran`` netlist.

    Each line's source (``PULSE`` of ngspice, ch. 4.1.1) sits at 0 V for ``delay``, rises
    linearly in ``rise`` to the line's ``v_in``, holds it for ``width`` (the plateau), falls in
    ``fall`` to 0 V and stays there until the end of the run, one ``rise`` after the fall.
    ``.tran`` takes ``step`` as its print step and as its largest internal step, so the
    waveform is resolved on at least that grid whatever the circuit.

    Parameters
    ----------
    width : float
        Plateau duration in s (> 0).
    rise : float
        Rise time in s (> 0; SPICE has no zero-time edge).
    fall : float, optional
        Fall time in s (> 0); ``rise`` if omitted.
    delay : float
        Time at 0 V before the rise, in s (>= 0).
    step : float, optional
        ``.tran`` step in s (> 0); a tenth of the shortest edge or of the plateau if omitted.
    """

    width: float
    rise: float = 1e-9
    fall: float | None = None
    delay: float = 0.0
    step: float | None = None

    def __post_init__(self):
        for name in ("width", "rise", "fall", "step"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"Pulse.{name}: expected a time > 0 s, got {value!r}")
        if not (isinstance(self.delay, (int, float)) and math.isfinite(self.delay) and self.delay >= 0):
            raise InputError(f"Pulse.delay: expected a time >= 0 s, got {self.delay!r}")

    @property
    def t_fall(self) -> float:
        """Fall time in s."""
        return float(self.rise if self.fall is None else self.fall)

    @property
    def t_step(self) -> float:
        """``.tran`` step in s."""
        return float(self.step if self.step is not None else min(self.rise, self.t_fall, self.width) / 10.0)

    @property
    def t_stop(self) -> float:
        """End of the run in s: one rise time after the fall has ended."""
        return float(self.delay + self.rise + self.width + self.t_fall + self.rise)

    def plateau(self) -> float:
        """The middle of the plateau in s, where every line is at its ``v_in``."""
        return float(self.delay + self.rise + 0.5 * self.width)

    def fraction(self, t) -> np.ndarray:
        """The pulse at time(s) ``t`` (s) as a fraction of its plateau (0..1): the waveform each
        source applies, ``v_in * fraction(t)``."""
        t = np.asarray(t, dtype=float)
        t_top = self.delay + self.rise
        t_down = t_top + self.width
        return np.clip(np.minimum((t - self.delay) / self.rise, 1.0 - (t - t_down) / self.t_fall), 0.0, 1.0)

    def source(self, v: float) -> str:
        """The ngspice ``PULSE`` specification from 0 V to ``v`` (V), no repetition."""
        return (f"pulse(0 {_fmt(v)} {_fmt(self.delay)} {_fmt(self.rise)} {_fmt(self.t_fall)} {_fmt(self.width)} "
                f"{_fmt(2.0 * self.t_stop)})")


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


def write_crossbar(crossbar, path, v_in, *, title: str = "cimphys crossbar", pulse: Pulse | None = None) -> Path:
    """Write the ngspice netlist of ``crossbar`` (:class:`cimphys.Crossbar`: its wires, drivers,
    sense resistances, boundary options and cells) driven by ``v_in`` (M,) V: an operating point
    (``.op``), or with ``pulse`` a ``.tran`` run of that :class:`Pulse` on every driven line.

    Run it with ``ngspice -b path``: it writes every node voltage and source current to
    ``<stem>.raw``; ``i(vs{j})`` is ``i_out[j]`` (:func:`run_ngspice` for ``.op``,
    :func:`run_transient` and :func:`at_time` for a pulse, then :func:`crossbar_from_values`).
    """
    cells, extra = cells_of(crossbar.cell, crossbar.G, crossbar.shape)
    return write_netlist(path, crossbar.network, v_in, cells, extra=extra, title=title, pulse=pulse)


def _branch(name: str, n1: str, n2: str, r: float) -> str:
    """A resistor, or a 0 V source (an exact short) when ``r == 0``."""
    return f"v{name} {n1} {n2} dc 0" if r == 0 else f"r{name} {n1} {n2} {r:.17g}"


def _wl_lines(net: Network, v_in: np.ndarray, pulse: Pulse | None = None) -> list[str]:
    m, n = net.shape
    out = []
    for i in range(m):
        out += [_branch(f"w{i}_{j}", f"w{i}_{j - 1}", f"w{i}_{j}", net.r_wl[i, j]) for j in range(1, n)]
        if net.wl_floating[i]:
            continue
        drive = f"dc {v_in[i]:.17g}" if pulse is None else pulse.source(v_in[i])
        out.append(f"vin{i} in{i} 0 {drive}")
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
    pulse: Pulse | None = None,
) -> Path:
    """Write the netlist of ``network`` driven by ``v_in`` (M,) V: ``.op``, or with ``pulse``
    (:class:`Pulse`) ``.tran`` of one pulse from 0 V to ``v_in`` on every driven word line.

    The control block writes every vector to ``<path stem>.raw`` (ASCII, 15 digits) next to it.
    """
    m, n = network.shape
    v = np.asarray(v_in, dtype=float)
    if v.shape != (m,) or not np.isfinite(v).all():
        raise InputError(f"v_in: expected {m} finite voltages, got {v!r:.80}")
    if pulse is not None and not isinstance(pulse, Pulse):
        raise InputError(f"pulse: expected a cimphys.circuits.spice.Pulse, got {type(pulse).__name__}")
    path = Path(path)
    cell_lines = [line for i in range(m) for j in range(n) for line in cells(i, j, f"w{i}_{j}", f"b{i}_{j}")]
    raw = path.with_suffix(".raw").name
    # .tran: print step = largest internal step, so that the edges and the plateau are resolved
    analysis = "op" if pulse is None else f"tran {_fmt(pulse.t_step)} {_fmt(pulse.t_stop)} 0 {_fmt(pulse.t_step)}"
    text = [
        f"* {title}: {m} x {n} crossbar (cimphys.circuits.spice)",
        *_wl_lines(network, v, pulse),
        *_bl_lines(network),
        *cell_lines,
        *extra,
        OPTIONS,
        ".control",
        "set filetype=ascii",
        analysis,
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
    values = _run(netlist, ngspice, timeout)
    return {name: float(v[0]) for name, v in values.items()}


def run_transient(netlist, *, ngspice: str = "ngspice", timeout: float = 600.0) -> dict[str, np.ndarray]:
    """Run ``ngspice -b`` on a ``.tran`` netlist (:func:`write_netlist` with a :class:`Pulse`);
    return ``{vector: waveform}`` on ngspice's time points, ``"time"`` (s) among them.

    Raises as :func:`run_ngspice`, and :class:`RuntimeError` if the file holds no time axis.
    """
    values = _run(netlist, ngspice, timeout)
    if "time" not in values:
        raise RuntimeError(f"{netlist}: no time vector in ngspice's results (not a .tran netlist?)")
    return values


def at_time(waveforms: dict[str, np.ndarray], t: float) -> dict[str, float]:
    """Every waveform of :func:`run_transient` at time ``t`` (s), linearly interpolated between
    ngspice's time points; a dict as :func:`run_ngspice` returns, for :func:`crossbar_from_values`."""
    time = waveforms["time"]
    if not time[0] <= t <= time[-1]:
        raise InputError(f"t: {t!r} s lies outside the run ({time[0]!r} to {time[-1]!r} s)")
    return {name: float(np.interp(t, time, w)) for name, w in waveforms.items() if name != "time"}


def _run(netlist, ngspice: str, timeout: float) -> dict[str, np.ndarray]:
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


def _read_ascii_raw(path: Path) -> dict[str, np.ndarray]:
    """Every vector of an ASCII raw file, one value per point: each point is its index and first
    value on one line, then one line per further variable."""
    lines = path.read_text().splitlines()
    start = lines.index("Variables:") + 1
    stop = lines.index("Values:")
    names = [line.split()[1] for line in lines[start:stop]]
    values = np.array([float(tok) for line in lines[stop + 1 :] for tok in line.split()[-1:]])
    if values.size == 0 or values.size % len(names):
        raise RuntimeError(f"{path}: {len(names)} variables but {values.size} values")
    table = values.reshape(-1, len(names))
    return {name: table[:, k].copy() for k, name in enumerate(names)}


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
