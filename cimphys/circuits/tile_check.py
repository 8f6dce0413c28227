"""The solve report of one characterised tile: path, iterations, checked residual, fallback, time.

:func:`check_characterisation` measures how well a tile's characterisation ``(T, Y)``
(:mod:`cimphys.circuits.tile_characterise`) satisfies the network it stands for.  It drives the
tile with one seeded random input ``v`` (uniform in 0..1 V on every word line, so that every
column of ``T`` and ``Y`` enters) and compares ``T v`` and ``Y v`` with the network's own
answer:

* no resistance at all: the word lines sit at their sources and the bit lines at the sense
  amplifiers' virtual ground, so Ohm's law gives ``i_out = G.T v`` and ``i_src = (G 1) v``
  exactly;
* sense input resistance only: each bit line is one node at ``v_bl = r_sense T v``; KCL there
  asks that the current the cells deliver, ``G.T v - (1.T G) v_bl``, equal the current leaving
  through the sense input, ``T v`` (and ``Y v`` the source currents those voltages give);
* wires: a solve of the full network (:func:`cimphys.circuits.linear.solve_with_report`, KCL to
  its ``tol`` of 1e-12, with its own report), ``i_out`` and the source currents
  ``sum_j G[i, j] (v_wl - v_bl)[i, j]`` compared with ``T v`` and ``Y v``.

The residual is the largest of these relative differences (max-norm over the outputs) and of
the reference solve's own residual: dimensionless, about 1e-13 for a sound characterisation, and
of the order of the error for a wrong one (an error confined to one column of ``T`` shows diluted
by the probe's other inputs, about ``1/M`` of it).

The closed forms cost a mat-vec and are checked on every tile.  The reference solve of a wired
tile costs about as much as a small tile's characterisation (mostly the dispatcher's fixed cost
per call), so wired tiles are checked on a seeded sample: :func:`in_sample` draws, for each tile,
a uniform number seeded by ``PROBE_SEED`` and a CRC-32 of its conductances, and checks the tile
when it falls below ``CHECK_FRACTION``.  The draw depends on the tile alone, not on its place in
a stack or a pool's queue, so a tile is checked (or not) however it is characterised.  Whether
a tile was checked is said explicitly (``TileReport.checked``; a stack's per-tile ``checked``
array, its Dataset's ``checked`` variable and ``tile_solver_checked`` attribute); an unchecked
tile's residual is NaN (not measured), and the sums read the checked tiles alone.  A
characterisation handed in from outside (:func:`cimphys.circuits.tile_report.supplied_report`)
is checked on every tile.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .linear import SolveReport, solve_with_report

__all__ = ["CHECKED_ALWAYS", "CHECK_FRACTION", "PROBE_SEED", "TileReport", "check_characterisation", "in_sample",
           "tile_report"]

#: Seed of the probe input every characterisation is checked with, and of the sample of tiles.
PROBE_SEED = 15
#: Share of wired tiles whose characterisation is checked against a reference solve.
CHECK_FRACTION = 0.25
#: Characterisation paths checked on every tile (closed forms: the check is a mat-vec).
CHECKED_ALWAYS = ("closed_form", "sense_only")


@dataclass(frozen=True)
class TileReport(SolveReport):
    """How one tile was characterised (or its reads solved), and how well: a
    :class:`~cimphys.circuits.linear.SolveReport` whose ``path`` is a ``tile_characterise.PATHS``
    key, ``"newton"`` (a Newton solve per read) or ``"supplied"`` (a characterisation handed in);
    ``iterations`` what that path did (0 for a closed form, 1 for one exact factorisation, the
    largest Krylov count of the unit solves, the largest Newton count over the reads);
    ``residual`` the relative residual against the network (:func:`check_characterisation`; for
    Newton reads, the largest KCL residual over the largest cell current); ``fell_back`` whether
    a solve fell back from the path first chosen; ``time`` the wall time, s; ``checked`` whether
    the residual was measured (False for a wired tile outside the checked sample, whose
    ``residual`` is then NaN: not a number to read).
    """

    checked: bool = True

    def __post_init__(self):
        if self.checked == bool(np.isnan(self.residual)):
            raise InputError(f"TileReport: residual {self.residual!r} with checked={self.checked}: a checked "
                             "tile needs a measured residual, an unchecked one NaN")

    def attrs(self) -> dict:
        """The report as Dataset attributes, ``solver_checked`` (0/1) with them."""
        return {**super().attrs(), "solver_checked": int(self.checked)}


def _relative(x: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.abs(ref).max(initial=0.0))
    diff = float(np.abs(x - ref).max(initial=0.0))
    return diff / scale if scale > 0.0 else diff


def check_characterisation(g: np.ndarray, wires, t: np.ndarray, y: np.ndarray | None = None, *,
                           seed: int = PROBE_SEED) -> float:
    """Relative residual of a tile's ``T`` (N, M) and ``Y`` (M, M) (S; ``Y`` may be None) on the
    network of conductances ``g`` (M, N) (S) and ``wires`` (a ``tile_characterise.Wires``), for one
    seeded probe input (see the module doc)."""
    g = np.asarray(g, dtype=np.float64)
    v = np.random.default_rng(seed).uniform(0.0, 1.0, g.shape[0])
    i_t = np.asarray(t) @ v
    own = 0.0
    if not wires.any:
        i_ref, i_src = g.T @ v, g.sum(axis=1) * v
    elif wires.r_wl == wires.r_bl == wires.r_driver == 0.0:
        v_bl = wires.r_sense * i_t
        i_ref, i_src = g.T @ v - g.sum(axis=0) * v_bl, g.sum(axis=1) * v - g @ v_bl  # cell currents in
    else:
        v_wl, v_bl, i_ref, report = solve_with_report(wires.network(g.shape), g, g, np.zeros_like(g), v)
        i_src, own = np.einsum("ij,ij->i", g, v_wl - v_bl), report.residual
    residual = max(_relative(i_t, i_ref), own)
    if y is not None:
        residual = max(residual, _relative(np.asarray(y) @ v, i_src))
    return residual


def in_sample(g: np.ndarray, fraction: float | None = None, seed: int = PROBE_SEED) -> bool:
    """Whether the wired tile of conductances ``g`` (S) is in the checked sample: a uniform draw
    seeded by ``seed`` and the CRC-32 of ``g``'s float64 bytes falls below ``fraction``
    (default :data:`CHECK_FRACTION`, read at call time)."""
    fraction = CHECK_FRACTION if fraction is None else fraction
    crc = zlib.crc32(np.ascontiguousarray(g, dtype=np.float64).tobytes())
    return bool(np.random.default_rng([seed, crc]).random() < fraction)


def tile_report(path: str, g: np.ndarray, wires, t: np.ndarray, y: np.ndarray | None, seconds: float,
                solves: list[SolveReport] = (), sample: bool = False) -> TileReport:
    """The :class:`TileReport` of a tile characterised by ``path`` in ``seconds`` (s), with the
    reports of the unit solves it made (if any), its residual checked now; with ``sample``, a
    wired tile is checked only if :func:`in_sample` (else ``checked`` is False, the residual NaN)."""
    iterations = max((r.iterations for r in solves), default=0 if path in CHECKED_ALWAYS else 1)
    check = not sample or path in CHECKED_ALWAYS or in_sample(g)
    residual = check_characterisation(g, wires, t, y) if check else float("nan")
    return TileReport(path, int(iterations), residual, any(r.fell_back for r in solves), float(seconds), check)
