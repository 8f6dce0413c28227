"""Tile cards whose cells have state: the ``[cell]`` table -> cell models, conductance -> state.

A tile card's ``[device]`` table names the memory element's device card; an optional
``[cell]`` table says what sits in series with it and how reads are solved:

- ``kind = "1T1R"``: an access NMOS (``access``, a ``level1_nmos`` device card) whose gate line
  is at ``v_gate_v`` during reads (every row's gate on: a matrix-vector read drives all rows);
  the cell is :class:`cimphys.devices.TransistorMemoryCell`.
- ``kind = "1S1R"``: a selector (``selector``, a ``sinh_selector`` card) in series;
  :class:`cimphys.devices.SelectorMemoryCell`.
- ``kind = "1R"``: the memory element alone at its state (its own nonlinear I-V).

A weight becomes a target **read conductance** ``g = I_cell(v_read) / v_read`` of the whole cell
(memory element and its series device, at the card's read voltage, alone), and that becomes the
memory element's **state**: :meth:`TileCells.states` inverts the cell's own read current, per
cell and vectorised (a monotone table of the window to bracket each cell, then bisection on the
exact cell current inside its bracket).  So the state is what a write-verify through the cell's
own access device would leave (it verifies the same read current).

Reads (``read``):

- ``"newton"``: every read is a Newton solve of the crossbar with these cells at their states
  (:func:`cimphys.circuits.tile_report.newton_reads`: exact, and slow for a whole model);
- ``"chord"``: the surrogate.  Each cell is replaced by its chord conductance at the read
  voltage -- which by construction is the programmed ``g`` -- so the tile is solved by the
  linear paths (transfer matrix, with the wires).  The surrogate is exact for a cell that sees
  ``v_read`` or 0 V; it errs where the IR drop leaves a driven cell below ``v_read`` (its
  current then follows the cell's own nonlinear curve, not the chord) and where undriven cells
  see the small voltages the wires leave.  :func:`surrogate_error` measures that error against
  the exact Newton solve on seeded reads of sampled tiles, and the layer run reports it.

References
----------
.. [1] H.-S. P. Wong et al., "Metal-oxide RRAM", Proc. IEEE 100, 1951 (2012),
   doi:10.1109/JPROC.2012.2190369 (1T1R reads with every gate on).
.. [2] A. Chen, IEEE Trans. Electron Devices 60, 1318 (2013), doi:10.1109/TED.2013.2246791
   (nonlinear cells in the crossbar read).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cards import Card, Parameter, load_device
from ..checks import as_array
from ..errors import CardError

__all__ = ["CELL_KINDS", "CELL_PARAMETERS", "READ_MODES", "TileCells", "surrogate_error"]

CELL_KINDS = ("1R", "1T1R", "1S1R")
READ_MODES = ("chord", "newton")

CELL_PARAMETERS = (
    Parameter("kind", "1", "cell structure: 1R (memory element alone), 1T1R or 1S1R", kind="str",
              choices=CELL_KINDS),
    Parameter("access", "1", "1T1R: device card of the access NMOS (level1_nmos)", default="", kind="str"),
    Parameter("v_gate_v", "V", "1T1R: gate-line voltage during reads", default=0.0, low=0.0, high=20.0),
    Parameter("selector", "1", "1S1R: device card of the selector (sinh_selector)", default="", kind="str"),
    Parameter("read", "1", "newton: a Newton solve per read; chord: linear surrogate at v_read, error measured",
              default="chord", kind="str", choices=READ_MODES),
    Parameter("check_reads", "1", "reads per matrix solved exactly to measure the chord surrogate's error",
              default=8, kind="int", low=0, high=1 << 20),
)

#: Grid points of the state table that brackets each cell's state (the bisection then refines
#: inside one table interval).
TABLE_POINTS = 2049
#: Bisection halvings inside a table interval: 2**-40 of 1/2048 of the state range, far below
#: any state resolution a read could see (the residual is checked after).
BISECTIONS = 40
#: Largest relative read-conductance residual the inversion may leave (the bisection reaches
#: ~1e-12; a larger one means the read current is not monotone in the state).
RTOL_INVERSE = 1e-9


@dataclass(frozen=True, eq=False)
class TileCells:
    """The cells of a tile card with a ``[cell]`` table (module docstring).

    Attributes
    ----------
    card_name : str
        The tile card (for messages).
    kind : str
        One of :data:`CELL_KINDS`.
    memory : cimphys.devices.DynamicModel
        The memory element's model (scalar parameters).
    access : cimphys.devices.Level1Mosfet or None
    v_gate : float, V
    selector : cimphys.devices.SinhSelector or None
    v_read : float, V
    read : str
        One of :data:`READ_MODES`.
    check_reads : int
    """

    card_name: str
    kind: str
    memory: object
    access: object
    v_gate: float
    selector: object
    v_read: float
    read: str
    check_reads: int

    @classmethod
    def from_design(cls, design) -> TileCells | None:
        """The cells a :class:`~cimphys.circuits.tile_design.TileDesign` names; None without a
        ``[cell]`` table."""
        card: Card = design.card
        table = card.sections.get("cell")
        if table is None:
            return None
        c = {p.name: p.default for p in CELL_PARAMETERS} | dict(table)  # the table with its defaults
        name = card.name
        if not design.device["card"]:
            raise CardError(f"{name}: [cell] needs the memory element's device card in [device] card")
        memory = _dynamic(name, design.device["card"])
        access = selector = None
        if c["kind"] == "1T1R":
            from ..devices.mosfet import Level1Mosfet

            if not c["access"] or not c["v_gate_v"] > 0.0:
                raise CardError(f"{name}: [cell] kind = '1T1R' needs access (an NMOS card) and v_gate_v > 0, got "
                                f"access = {c['access']!r}, v_gate_v = {c['v_gate_v']!r}")
            access = Level1Mosfet.from_card(load_device(c["access"]))
        elif c["kind"] == "1S1R":
            from ..devices.selector import SinhSelector

            if not c["selector"]:
                raise CardError(f"{name}: [cell] kind = '1S1R' needs selector (a sinh_selector card)")
            selector = SinhSelector.from_card(load_device(c["selector"]))
        cells = cls(name, c["kind"], memory, access, float(c["v_gate_v"]), selector, design.v_read, c["read"],
                    int(c["check_reads"]))
        cells._check_window(design.g_min, design.g_max)
        return cells

    # ------------------------------------------------------------------ the cells
    def cells(self, state):
        """The circuit's cells at states ``(M, N)`` (``memory.state_unit``), every gate on."""
        if self.kind == "1T1R":
            from ..devices.transistor_memory import TransistorMemoryCell

            return TransistorMemoryCell(self.access, self.memory, state, self.v_gate)
        if self.kind == "1S1R":
            from ..devices.selector import SelectorMemoryCell

            return SelectorMemoryCell(self.selector, self.memory, state)
        return self.memory.read_cell(state)

    def read_conductance(self, state) -> np.ndarray:
        """``I_cell(v_read) / v_read`` (S) of each cell alone at its state (any shape)."""
        x = np.asarray(state, dtype=float)
        flat = np.ascontiguousarray(x.reshape(1, -1))
        cell = self.cells(flat)
        if self.kind == "1T1R":
            i = cell.stamp(np.full(flat.shape, self.v_read), np.zeros(flat.shape))[0]
        else:
            v = np.full(flat.size, self.v_read)
            i, g = np.empty_like(v), np.empty_like(v)
            cell._evaluate(v, i, g)
        return (np.asarray(i).reshape(x.shape) / self.v_read)

    def _table(self):
        """States on a grid over the bounds and their read conductances, ordered so that the
        conductance rises."""
        lo, hi = self.memory.state_bounds
        x = np.linspace(lo, hi, TABLE_POINTS)
        g = self.read_conductance(x)
        if g[0] > g[-1]:
            x, g = x[::-1], g[::-1]
        # a read that clips the state (the Stanford release reads min(gap, g_max)) is flat at the
        # ends: keep one point of each flat end, the state nearest the window
        lo_end = np.flatnonzero(g > g[0])[:1] - 1
        hi_end = np.flatnonzero(g < g[-1])[-1:] + 2
        x, g = x[lo_end[0]:hi_end[0]], g[lo_end[0]:hi_end[0]]
        if not np.all(np.diff(g) > 0):
            raise CardError(f"{self.card_name}: the cell's read current at {self.v_read:g} V is not monotone in "
                            f"the memory element's state; conductances cannot be mapped to states")
        return x, g

    def window(self) -> tuple[float, float]:
        """Lowest and highest read conductance a cell reaches over the state bounds (S)."""
        _, g = self._table()
        return float(g[0]), float(g[-1])

    def _check_window(self, g_min: float, g_max: float) -> None:
        lo, hi = self.window()
        if g_min < lo or g_max > hi:
            raise CardError(f"{self.card_name}: g_min_s = {g_min:g} S and g_max_s = {g_max:g} S must lie inside the "
                            f"{self.kind} cell's read window at {self.v_read:g} V, [{lo:.4g}, {hi:.4g}] S")

    def states(self, g) -> np.ndarray:
        """The memory element's state (``memory.state_unit``) at which each cell reads ``g`` (S).

        Conductances beyond the window (a programming overshoot) get the bound's state, the
        furthest the device goes.  Vectorised: a table brackets every cell, then
        :data:`BISECTIONS` halvings on the exact cell current."""
        g = as_array("g", g, unit="S", low=0.0)
        xt, gt = self._table()
        gc = np.clip(g.reshape(-1), gt[0], gt[-1])
        k = np.clip(np.searchsorted(gt, gc) - 1, 0, gt.size - 2)
        a, b = xt[k], xt[k + 1]  # g(a) <= gc <= g(b)
        for _ in range(BISECTIONS):
            mid = 0.5 * (a + b)
            low = self.read_conductance(mid) < gc
            a, b = np.where(low, mid, a), np.where(low, b, mid)
        x = 0.5 * (a + b)
        miss = np.abs(self.read_conductance(x) / gc - 1.0)
        if miss.max(initial=0.0) > RTOL_INVERSE:
            raise CardError(f"{self.card_name}: state inversion left a read-conductance residual of "
                            f"{miss.max():.2e} (> {RTOL_INVERSE:g})")
        return x.reshape(g.shape)


def _dynamic(card_name: str, device: str):
    """The dynamic device model of a device card name, or a CardError saying why not."""
    from ..devices.dynamic_model import DynamicModel
    from ..devices.dynamics import model_from_card

    try:
        model = model_from_card(load_device(device))
    except Exception as exc:  # noqa: BLE001 - re-raised with the tile card named
        raise CardError(f"{card_name}: [device] card = {device!r} is no dynamic device model ({exc})") from exc
    if not isinstance(model, DynamicModel):
        raise CardError(f"{card_name}: [device] card = {device!r} is no dynamic device model")
    return model


def surrogate_error(cells: TileCells, g, wires, rng: np.random.Generator, reads: int, binary: bool) -> dict:
    """The chord surrogate against the exact Newton solve of one tile.

    ``g (M, N)`` S: the tile's read conductances.  ``reads`` word-line vectors are drawn from
    ``rng``: every line at 0 V or ``v_read`` with probability 1/2 (``binary``: 1-bit or pulse
    drivers), else uniform in ``[0, v_read]``.  Both solves carry the same wires
    (``wires``: :class:`~cimphys.circuits.tile_characterise.Wires`).

    Returns
    -------
    dict
        ``max`` and ``rms`` of ``|i_exact - i_chord|`` over every column and read, relative to
        the full-scale column current ``M max(g) v_read``; ``reads``.
    """
    from .crossbar import Crossbar

    g = as_array("g", g, unit="S", ndim=2, low=0.0)
    m = g.shape[0]
    v = (rng.random((reads, m)) < 0.5) * cells.v_read if binary else rng.random((reads, m)) * cells.v_read
    kw = dict(r_wl=wires.r_wl, r_bl=wires.r_bl, r_driver=wires.r_driver, r_sense=wires.r_sense)
    exact = Crossbar(None, cell=cells.cells(cells.states(g)), shape=g.shape, **kw).solve(v).i_out
    chord = Crossbar(g, **kw).solve(v).i_out
    err = np.abs(exact - chord) / (m * g.max() * cells.v_read)
    return {"max": float(err.max()), "rms": float(np.sqrt(np.mean(err**2))), "reads": int(reads)}


def check_tiles(cells: TileCells, g, wires, seed: int, binary: bool) -> dict | None:
    """:func:`surrogate_error` on one tile of ``g (tiles, M, N)`` drawn with ``seed``, over
    ``cells.check_reads`` reads; None when the reads are exact (``read = "newton"``) or no check
    is asked for (``check_reads = 0``)."""
    if cells.read != "chord" or cells.check_reads == 0:
        return None
    rng = np.random.default_rng(seed)
    g = np.asarray(g).reshape((-1,) + np.shape(g)[-2:])
    tile = int(rng.integers(g.shape[0]))
    return {**surrogate_error(cells, g[tile], wires, rng, cells.check_reads, binary), "tile": tile}
