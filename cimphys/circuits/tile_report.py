"""The solve report of a tile stack: per tile how its reads are solved and how well, and in sum.

A :class:`StackReport` holds one :class:`~cimphys.circuits.tile_check.TileReport` per tile (path,
iterations, residual, fell back or not, time, whether the residual was checked) as arrays, and
sums them up: the largest residual over the checked tiles, the total time, the tiles per path.  :attr:`TileStack.solve_report
<cimphys.circuits.tile.TileStack.solve_report>` gives it; it travels with a characterisation
through :class:`~cimphys.circuits.tile_characterise.CharacterisationPool` (each worker checks
its tiles) and through the layer adapter's tile cache (:meth:`StackReport.arrays`,
:meth:`StackReport.from_arrays`), and the layer run's Dataset carries the sum of all its
stacks (:meth:`StackReport.attrs`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .crossbar import Crossbar
from .tile_characterise import PATHS as CHARACTERISATION_PATHS
from .tile_characterise import CharacterisationPool, Wires
from .tile_check import CHECK_FRACTION, PROBE_SEED, TileReport, check_characterisation

__all__ = ["PATHS", "StackReport", "characterise_stack_reported", "newton_reads", "stack_report", "supplied_report"]

#: Every path a tile report may name (its index is the code the tile cache stores).
PATHS = (*CHARACTERISATION_PATHS, "newton", "supplied")
#: How the checked tiles were chosen, as the Dataset attributes say it.
CHECK_SAMPLE = (f"closed forms and supplied: every tile; wired tiles: a share {CHECK_FRACTION:g} drawn per tile "
                f"with seed {PROBE_SEED} and the CRC-32 of its G (tile_check.in_sample)")
#: Arrays of :meth:`StackReport.arrays`, in order.
FIELDS = ("path", "iterations", "residual", "fell_back", "time", "checked")


@dataclass(frozen=True)
class StackReport:
    """Per-tile solve reports of a stack, as arrays over the tiles.

    Attributes
    ----------
    paths : tuple of str
        Each tile's path (:data:`PATHS`).
    iterations : ndarray of int
    residual : ndarray, dimensionless
        Measured where ``checked``; NaN elsewhere (not a number: the sums skip it).
    fell_back : ndarray of bool
    time : ndarray, s
    checked : ndarray of bool
        Whether the tile's residual was measured (False for a wired tile outside the checked
        sample, :func:`~cimphys.circuits.tile_check.in_sample`).
    """

    paths: tuple[str, ...]
    iterations: np.ndarray
    residual: np.ndarray
    fell_back: np.ndarray
    time: np.ndarray
    checked: np.ndarray

    def __post_init__(self):
        if not np.array_equal(self.checked, ~np.isnan(self.residual)):
            raise InputError(f"solve report: checked {self.checked.tolist()} must be True exactly where the "
                             f"residual was measured, got residuals {self.residual.tolist()}")

    @classmethod
    def of(cls, tiles) -> StackReport:
        """The report of a sequence of :class:`TileReport`."""
        tiles = list(tiles)
        return cls(tuple(r.path for r in tiles), np.array([r.iterations for r in tiles], dtype=np.int64),
                   np.array([r.residual for r in tiles], dtype=float),
                   np.array([r.fell_back for r in tiles], dtype=bool), np.array([r.time for r in tiles], dtype=float),
                   np.array([r.checked for r in tiles], dtype=bool))

    @classmethod
    def join(cls, reports) -> StackReport:
        """One report over the tiles of several."""
        return cls.of(t for r in reports for t in r)

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self):
        for k in range(len(self)):
            yield TileReport(self.paths[k], int(self.iterations[k]), float(self.residual[k]),
                             bool(self.fell_back[k]), float(self.time[k]), bool(self.checked[k]))

    def __getitem__(self, k) -> StackReport:
        """The report of tiles ``k`` (a slice or index array)."""
        pick = np.arange(len(self))[k]
        return StackReport(tuple(self.paths[i] for i in np.atleast_1d(pick)), *(
            np.atleast_1d(a[pick]) for a in (self.iterations, self.residual, self.fell_back, self.time, self.checked)))

    @property
    def max_residual(self) -> float:
        """Largest residual over the checked tiles (0 with none)."""
        return float(self.residual[self.checked].max(initial=0.0))

    @property
    def total_time(self) -> float:
        """Summed wall time of the tiles, s (a pool runs them side by side)."""
        return float(self.time.sum())

    @property
    def counts(self) -> dict[str, int]:
        """Tiles per path."""
        return {p: self.paths.count(p) for p in sorted(set(self.paths))}

    def attrs(self, prefix: str = "tile_solver") -> dict:
        """The sums as Dataset attributes (netCDF-safe: strings and numbers)."""
        return {f"{prefix}_counts": ",".join(f"{p}:{n}" for p, n in self.counts.items()),
                f"{prefix}_max_iterations": int(self.iterations.max(initial=0)),
                f"{prefix}_max_residual": self.max_residual, f"{prefix}_checked": int(self.checked.sum()),
                f"{prefix}_tiles": len(self), f"{prefix}_check_sample": CHECK_SAMPLE,
                f"{prefix}_fell_back": int(self.fell_back.sum()),
                f"{prefix}_time": self.total_time, f"{prefix}_time_units": "s"}

    def to_xarray(self):
        """The per-tile reports as a Dataset over ``tile``, the sums in its attributes."""
        import xarray as xr

        return xr.Dataset({
            "path": ("tile", np.array(self.paths, dtype=str), {"units": "1", "long_name": "solver path"}),
            "iterations": ("tile", self.iterations, {"units": "1", "long_name": "iterations of the path"}),
            "residual": ("tile", self.residual, {"units": "1", "long_name": "relative residual on the network "
                                                 "(NaN where not checked)"}),
            "checked": ("tile", self.checked.astype(np.int8), {"units": "1", "long_name": "residual checked (1) or "
                                                               "not in the checked sample (0)"}),
            "fell_back": ("tile", self.fell_back.astype(np.int8), {"units": "1", "long_name": "fell back"}),
            "time": ("tile", self.time, {"units": "s", "long_name": "wall time"})}, attrs=self.attrs())

    def arrays(self) -> dict[str, np.ndarray]:
        """Numeric arrays (paths as their index in :data:`PATHS`), for a cache entry."""
        return dict(zip(FIELDS, (np.array([PATHS.index(p) for p in self.paths], dtype=np.int64), self.iterations,
                                 self.residual, self.fell_back.astype(np.int8), self.time,
                                 self.checked.astype(np.int8))))

    @classmethod
    def from_arrays(cls, arrays) -> StackReport:
        """The report :meth:`arrays` gave."""
        if "checked" not in arrays:
            raise InputError("solve report: no 'checked' array (an entry from before the checked sample; "
                             "layers.characterise.CACHE_VERSION h7-tiles-TY-4 keeps those apart)")
        codes = np.asarray(arrays["path"])
        if codes.size and (codes.min() < 0 or codes.max() >= len(PATHS)):
            raise InputError(f"solve report: path codes must lie in 0..{len(PATHS) - 1}, got {codes.tolist()}")
        return cls(tuple(PATHS[c] for c in codes), np.asarray(arrays["iterations"], dtype=np.int64),
                   np.asarray(arrays["residual"], dtype=float), np.asarray(arrays["fell_back"]).astype(bool),
                   np.asarray(arrays["time"], dtype=float),
                   np.asarray(arrays["checked"]).astype(bool))


def characterise_stack_reported(g: np.ndarray, wires: Wires, admittance: bool = True, *,
                                max_workers: int | None = None):
    """:func:`~cimphys.circuits.tile_characterise.characterise_stack` with its report:
    ``(T, Y, StackReport)``."""
    g = np.asarray(g, dtype=np.float64)
    if g.ndim != 3:
        raise InputError(f"g: expected (tiles, rows, cols) conductances, got shape {g.shape}")
    pool = CharacterisationPool(wires, admittance, max_workers=max_workers, tiles=g.shape[0])
    try:
        pending = pool.submit(g)
        t, y = pending.result()
        return t, y, StackReport.of(pending.reports)
    finally:
        pool.close()


def supplied_report(g: np.ndarray, wires: Wires, t: np.ndarray, y: np.ndarray | None) -> StackReport:
    """The report of a characterisation handed in (no solve of ours): each tile's residual checked."""
    return StackReport.of(TileReport("supplied", 0, check_characterisation(g[k], wires, t[k], None if y is None else y[k]),
                                     False, 0.0) for k in range(g.shape[0]))


def newton_reads(stack, vt: np.ndarray):
    """Sense currents (tiles, batch, C) and summed source power (batch,) of a stack of nonlinear
    cells by full Newton solves of each read; appends each tile's :class:`TileReport` of this
    batch to ``stack.newton_log``."""
    s, w = stack.design.subtraction, stack.wires
    i_all, p_src = [], 0.0
    for k, cell in enumerate(stack.cells):
        xb = Crossbar(None, r_wl=w.r_wl, r_bl=w.r_bl, r_driver=w.r_driver, r_sense=w.r_sense, cell=cell,
                      shape=stack.shape)
        v = vt[min(k, vt.shape[0] - 1)]
        start = time.perf_counter()
        sol = xb.solve(v)
        scale = max(float(np.abs(sol.i_cell).max(initial=0.0)), 1e-300)
        stack.newton_log.append((k, TileReport("newton", int(np.max(sol.iterations)), float(np.max(sol.residual)) / scale,
                                               any(m != "newton" for m in sol.method), time.perf_counter() - start)))
        i_all.append(sol.i_out @ s.T)
        # Reference geometry (far WL end open): all of source i's current leaves through row i's cells.
        p_src = p_src + np.einsum("bm,bm->b", v, sol.i_cell.sum(axis=-1))
    return np.stack(i_all), p_src


def stack_report(stack, characterised) -> StackReport:
    """The :class:`StackReport` of a :class:`~cimphys.circuits.tile.TileStack`: its
    characterisation's (``characterised()`` gives ``(T, Y)``, characterising now if not yet), or
    for nonlinear cells the sum of the Newton reads so far per tile (largest iterations and
    residual, summed time; no read yet: no iteration, no time and no residual measured, so the
    tile is reported unchecked)."""
    if stack.linear:
        if stack.characterisation_report is None:  # not characterised yet, or handed in without a report
            t, y = characterised()
            if stack.characterisation_report is None:  # handed in: check it
                stack.characterisation_report = supplied_report(stack.g, stack.wires, t, y)
        return stack.characterisation_report  # kept through compact(), which drops T
    tiles = [[r for k, r in stack.newton_log if k == j] for j in range(stack.n_tiles)]
    return StackReport.of(TileReport("newton", max((r.iterations for r in rs), default=0),
                                     max((r.residual for r in rs), default=float("nan")), any(r.fell_back for r in rs),
                                     sum(r.time for r in rs), bool(rs)) for rs in tiles)
