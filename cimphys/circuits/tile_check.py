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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .linear import SolveReport, solve_with_report

__all__ = ["PROBE_SEED", "TileReport", "check_characterisation", "tile_report"]

#: Seed of the probe input every characterisation is checked with.
PROBE_SEED = 15


@dataclass(frozen=True)
class TileReport(SolveReport):
    """How one tile was characterised (or its reads solved), and how well: a
    :class:`~cimphys.circuits.linear.SolveReport` whose ``path`` is a ``tile_characterise.PATHS``
    key, ``"newton"`` (a Newton solve per read) or ``"supplied"`` (a characterisation handed in);
    ``iterations`` what that path did (0 for a closed form, 1 for one exact factorisation, the
    largest Krylov count of the unit solves, the largest Newton count over the reads);
    ``residual`` the relative residual against the network (:func:`check_characterisation`; for
    Newton reads, the largest KCL residual over the largest cell current); ``fell_back`` whether a
    solve fell back from the path first chosen; ``time`` the wall time, s.
    """


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


def tile_report(path: str, g: np.ndarray, wires, t: np.ndarray, y: np.ndarray | None, seconds: float,
                solves: list[SolveReport] = ()) -> TileReport:
    """The :class:`TileReport` of a tile characterised by ``path`` in ``seconds`` (s), with the
    reports of the unit solves it made (if any), its residual checked now."""
    iterations = max((r.iterations for r in solves), default=0 if path in ("closed_form", "sense_only") else 1)
    return TileReport(path, int(iterations), check_characterisation(g, wires, t, y),
                      any(r.fell_back for r in solves), float(seconds))
