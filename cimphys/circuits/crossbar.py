"""``Crossbar``: an M x N array of cells with wire resistance, and its solution.

Geometry (DESIGN.md, "the reference crossbar"): WL ``i`` is driven at column 0 by the ideal
source ``v_in[i]`` through ``r_driver`` and a segment ``r_wl``; a segment ``r_wl`` joins
consecutive cells; the far end is open.  BL ``j`` runs from row 0 (open) to row M-1, then one
more segment ``r_bl`` and ``r_sense`` into a sense node held at 0 V.  ``i_out[j]`` is the current
into that sense node.  Options of :class:`cimphys.circuits.network.Network` (both-end drive,
sensing at row 0, biased or floating lines) pass through as keywords.

Examples
--------
>>> import numpy as np
>>> xb = Crossbar(np.full((4, 3), 1e-5), r_wl=0.0, r_bl=0.0)
>>> sol = xb.solve(np.full(4, 0.2))
>>> np.allclose(sol.i_out, 4 * 1e-5 * 0.2)
True
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from ..checks import as_array, as_scalar
from ..errors import InputError
from .block import MAX_BLOCK_BYTES, BlockFactor
from .direct import MAX_DIRECT_NODES
from .linear import METHODS, RTOL_SOLVE, SolveReport, choose_path, solve_factored, solve_linear, solve_with_report
from .network import Network, cell_currents
from .power import dissipation, wl_end_currents
from .transfer import transfer_matrix

__all__ = ["Crossbar", "CrossbarSolution"]


class Crossbar:
    """An M x N crossbar of linear cells of conductance ``G`` (or of a nonlinear ``cell``).

    Parameters
    ----------
    G : array_like, (M, N), S
        Cell conductances, >= 0.  May be None when ``cell`` is given with ``(M, N)`` parameters.
    r_wl, r_bl : float or array_like (M, N), ohm
        Word-line and bit-line segment resistances (see :mod:`cimphys.circuits.network`).
    r_driver : float or array_like (M,), ohm
        Output resistance of each WL driver.
    r_sense : float or array_like (N,), ohm
        Input resistance of each sense node.
    cell : TwoTerminalCell or 1T1R model, optional
        Nonlinear cells, solved by Newton's method in :mod:`cimphys.circuits.newton`.
    differential : bool
        Columns form pairs (2k, 2k+1); the solution then has ``i_diff``.
    method : {"auto", "direct", "iterative", "block"}
        Linear solver (see :func:`cimphys.circuits.linear.solve_linear`).  Once a block factor
        exists (built by ``solve`` for a large batch that CG does not serve), ``solve`` and
        :meth:`transfer_matrix` reuse it.
    shape : tuple of int, optional
        ``(M, N)`` when neither ``G`` nor the cell's parameters give it.
    **options
        Boundary options of :meth:`Network.build` (``wl_drive``, ``sense_at``, ``v_bl_end``,
        ``wl_floating``, ``bl_floating``).
    """

    def __init__(
        self,
        G=None,
        r_wl=1.0,
        r_bl=1.0,
        r_driver=0.0,
        r_sense=0.0,
        cell=None,
        *,
        differential: bool = False,
        method: str = "auto",
        shape=None,
        **options,
    ):
        self.cell = cell
        if G is None and cell is None:
            raise InputError("G: expected an (M, N) conductance array in S when no cell model is given")
        if G is not None and cell is not None:
            raise InputError("G, cell: give one; a cell model uses its own parameters, so G would be ignored")
        self.G = None if G is None else _conductances(G)
        shape = self._shape(shape)
        self.network = Network.build(shape, r_wl, r_bl, r_driver, r_sense, **options)
        if self.G is not None:
            _check_conditioning(self.G, self.network)
        if differential and shape[1] % 2:
            raise InputError(f"differential: needs an even number of columns, got N={shape[1]}")
        self.differential = bool(differential)
        if method not in METHODS:
            raise InputError(f"method: expected one of {METHODS}, got {method!r}")
        _check_method_memory(method, shape)
        self.method = method
        self._factor: BlockFactor | None = None  # built on demand, then reused by solve()
        # The transfer matrix, cached per instance under a per-instance lock: on Python < 3.12
        # functools.cached_property takes one lock for the whole class, so threads using
        # different arrays would wait for each other.
        self._transfer_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._transfer_lock = threading.Lock()

    def _shape(self, shape) -> tuple[int, int]:
        if self.G is not None:
            if shape is not None and tuple(shape) != self.G.shape:
                raise InputError(f"shape: {tuple(shape)} does not match G of shape {self.G.shape}")
            return self.G.shape
        cell_shape = tuple(getattr(self.cell, "shape", ()) or ())
        if len(cell_shape) == 2:
            if shape is not None and tuple(shape) != cell_shape:
                raise InputError(f"shape: {tuple(shape)} does not match the cell parameters' shape {cell_shape}")
            return cell_shape
        if shape is None:
            raise InputError("shape: give (M, N) when the cell parameters are scalars and G is None")
        return tuple(int(s) for s in shape)

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N)``: word lines by bit lines."""
        return self.network.shape

    def solve(self, v_in, *, tol: float = RTOL_SOLVE) -> CrossbarSolution:
        """Operating point for word-line voltages ``v_in`` ((M,) or (batch, M), V).

        ``tol`` is the relative residual every answer must reach (linear cells; see
        :func:`cimphys.circuits.linear.solve_linear`): the default 1e-12 for exact answers, a
        looser one (e.g. 1e-10 for output currents to ~1e-11) where that is all that is needed.
        Nonlinear cells use the tolerances of :mod:`cimphys.circuits.newton`.
        """
        tol = as_scalar("tol", tol, low=0.0, low_open=True)
        if self.cell is not None:
            from .newton import solve_nonlinear  # the single hook for nonlinear cells

            return solve_nonlinear(self.network, self.cell, v_in)
        g = self.G
        v = as_array("v_in", v_in, unit="V", ndim=(1, 2))
        batch = v.shape[0] if v.ndim == 2 else 1
        if self._factor is None and (self.method == "block" or (
                self.method == "auto" and choose_path(self.network, g, g, batch) == "block")):
            self._factor = BlockFactor(self.network, g, g)  # kept: later solves and transfer_matrix reuse it
        if self._factor is not None and self.method in ("auto", "block"):
            v_wl, v_bl, i_out, report = solve_factored(self._factor, np.zeros_like(g), v, tol=tol)
        else:
            v_wl, v_bl, i_out, report = solve_with_report(self.network, g, g, np.zeros_like(g), v,
                                                          method=self.method, tol=tol)
        return CrossbarSolution(self, v, v_wl, v_bl, i_out, report)

    @property
    def _transfer(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T, offset)``, computed once per instance (per-instance lock, see ``__init__``)."""
        cached = self._transfer_cache
        if cached is not None:
            return cached
        with self._transfer_lock:
            if self._transfer_cache is None:
                self._transfer_cache = self._compute_transfer()
            return self._transfer_cache

    def _compute_transfer(self) -> tuple[np.ndarray, np.ndarray]:
        if self.cell is not None:
            raise InputError("cell: the transfer matrix exists only for linear cells (cell=None)")
        m, n = self.shape
        g = self.G
        # A factor that solve() already built is reused; otherwise transfer_matrix takes its
        # one-pass kernel, which keeps two block inverses instead of all M (134 MB at 256 x 256).
        t = transfer_matrix(self.network, g, g, method=self.method, factor=self._factor)
        offset = np.zeros(n)
        if np.any(self.network.v_bl_end != 0):
            offset = solve_linear(self.network, g, g, np.zeros_like(g), np.zeros(m), method=self.method)[2]
        t.setflags(write=False)
        offset.setflags(write=False)
        return t, offset

    def transfer_matrix(self) -> np.ndarray:
        """``T`` (N, M), S: ``i_out = T @ v_in`` (+ the offset of biased BL ends); cached."""
        return self._transfer[0]

    def apply(self, v_in) -> np.ndarray:
        """Output currents at matmul speed from the cached transfer matrix, ``([batch,] N)`` A."""
        v = as_array("v_in", v_in, unit="V", ndim=(1, 2))
        if v.shape[-1] != self.shape[0]:
            raise InputError(f"v_in: expected last axis of length M={self.shape[0]}, got shape {v.shape}")
        t, offset = self._transfer
        return v @ t.T + offset

    def to_spice(self, path, v_in, *, title: str = "cimphys crossbar", pulse=None):
        """Write this array, driven by ``v_in`` ((M,) V), as an ngspice ``.op`` netlist, or with
        ``pulse`` (:class:`cimphys.circuits.spice.Pulse`) as a ``.tran`` run of one pulse from 0 V
        to ``v_in`` on every driven line; returns its path.  Linear, sinh, 1S1R and 1T1R cells
        (:func:`cimphys.circuits.spice.write_crossbar`)."""
        from .spice import write_crossbar

        return write_crossbar(self, path, v_in, title=title, pulse=pulse)


def _conductances(G) -> np.ndarray:
    """``G`` checked (real numbers >= 0 S, 2-D) and copied: the crossbar keeps a read-only copy,
    so the caller's array stays writable and later edits to it do not reach the crossbar."""
    kind = np.asarray(G).dtype.kind
    if kind in "bcSUO" and not (kind == "O" and np.asarray(G, dtype=object).size == 0):
        raise InputError(f"G: expected real conductances in S, got an array of dtype {np.asarray(G).dtype}")
    g = np.array(as_array("G", G, unit="S", low=0.0, ndim=2), dtype=np.float64, order="C", copy=True)
    g.setflags(write=False)
    return g


#: Largest cell conductance x wire segment resistance a crossbar may have.  Physical arrays sit
#: at 1e-6..1e-2; beyond ~1e10 the nodal system's conditioning swamps float64 and the solver
#: paths disagree while each passes its residual check (measured on 64 x 64 at 0.2 V: at 1e12
#: the iterative path gave a 0.168 V node where SuperLU gave 0.197 V; at 1e20 0 V everywhere).
GR_MAX = 1e6


def _check_conditioning(g: np.ndarray, network) -> None:
    """Refuse cells that conduct so much more than a wire segment that no float64 solve of the
    network is trustworthy (such a cell is a short: model it as one)."""
    r_seg = max(float(network.r_wl.max()), float(network.r_bl.max()))
    g_r = float(g.max()) * r_seg
    if g_r > GR_MAX:
        raise InputError(f"G: a cell of {g.max():.3g} S with {r_seg:.3g} ohm wire segments has G*r = {g_r:.3g}, above "
                         f"crossbar.GR_MAX = {GR_MAX:g}: the nodal system is too ill-conditioned for float64 "
                         "(physical arrays have G*r below 1e-2); check the units of G")


def _check_method_memory(method: str, shape) -> None:
    """An explicit ``method`` that cannot fit is refused before anything is allocated (``"auto"``
    chooses within the same limits by itself)."""
    m, n = shape
    if method == "block" and 8 * m * n * n > MAX_BLOCK_BYTES:
        raise InputError(f"method='block': the factor of a {m} x {n} array needs {8 * m * n * n / 2**30:.3g} GiB, "
                         f"above block.MAX_BLOCK_BYTES = {MAX_BLOCK_BYTES / 2**30:.3g} GiB; use 'iterative' or 'auto'")
    if method == "direct" and 2 * m * n > MAX_DIRECT_NODES:
        raise InputError(f"method='direct': a {m} x {n} array has {2 * m * n} nodes, above the direct path's limit "
                         f"direct.MAX_DIRECT_NODES = {MAX_DIRECT_NODES}; use 'iterative' or 'auto'")


@dataclass(frozen=True, eq=False)
class CrossbarSolution:
    """Operating point of a linear crossbar.

    Attributes
    ----------
    v_in : ndarray, ([batch,] M), V
    v_wl, v_bl : ndarray, ([batch,] M, N), V
    i_out : ndarray, ([batch,] N), A, positive into the sense node
    i_cell : ndarray, ([batch,] M, N), A, from WL node to BL node (computed on first access:
        a batch's cell currents are as large as its node voltages, and ``i_out`` does not
        need them)
    report : SolveReport
        Which solver path answered, its iterations and residual, whether it fell back, and its
        wall time (:class:`cimphys.circuits.linear.SolveReport`).
    """

    crossbar: Crossbar
    v_in: np.ndarray
    v_wl: np.ndarray
    v_bl: np.ndarray
    i_out: np.ndarray
    report: SolveReport
    # Derived fields, computed on first access.  Not functools.cached_property: on Python < 3.12
    # its lock is one for the whole class, which serialises threads holding different solutions.
    # Two threads racing on one solution compute the same value twice, harmlessly.
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _cached(self, key: str, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def i_cell(self) -> np.ndarray:
        """Cell currents, ``([batch,] M, N)`` A (see the class docstring)."""
        g = self.crossbar.G
        return self._cached("i_cell", lambda: cell_currents(g, g, 0.0, self.v_wl, self.v_bl))

    @property
    def i_diff(self) -> np.ndarray:
        """Differential output of column pairs ``i_out[..., 0::2] - i_out[..., 1::2]``, A."""
        if not self.crossbar.differential:
            raise InputError("differential: the crossbar was built with differential=False")
        return self.i_out[..., 0::2] - self.i_out[..., 1::2]

    @property
    def _batched(self) -> dict:
        """The fields with a batch axis, for the power accounting."""
        return self._cached("batched", self._batch_fields)

    def _batch_fields(self) -> dict:
        m, n = self.crossbar.shape
        return {
            "v_in": np.broadcast_to(self.v_in.reshape(-1, m), (self.v_wl.reshape(-1, m, n).shape[0], m)),
            "v_wl": self.v_wl.reshape(-1, m, n),
            "v_bl": self.v_bl.reshape(-1, m, n),
            "i_out": self.i_out.reshape(-1, n),
            "i_cell": self.i_cell.reshape(-1, m, n),
        }

    @property
    def source_currents(self) -> tuple[np.ndarray, np.ndarray]:
        """Current delivered by each WL source at its near and far driver, ``([batch,] M)`` A."""
        return self._cached("source_currents", self._source_currents)

    def _source_currents(self) -> tuple[np.ndarray, np.ndarray]:
        near, far = wl_end_currents(self.crossbar.network, **self._batched)
        shape = self.v_wl.shape[:-1]
        return near.reshape(shape), far.reshape(shape)

    def power(self) -> dict[str, np.ndarray]:
        """Power per element, W (see :func:`cimphys.circuits.power.dissipation`)."""
        near, far = self.source_currents
        m, n = self.crossbar.shape
        out = dissipation(self.crossbar.network, i_near=near.reshape(-1, m), i_far=far.reshape(-1, m), **self._batched)
        batch = self.v_wl.ndim == 3
        return {k: (v if batch else v[0]) for k, v in out.items()}

    def to_xarray(self):
        """Dataset with dims ``row``, ``col`` (and ``batch``); every variable has units."""
        import xarray as xr

        from ..results import variable

        batch = ("batch",) if self.v_wl.ndim == 3 else ()
        nodes = (*batch, "row", "col")
        m, n = self.crossbar.shape
        v_in = np.broadcast_to(self.v_in, self.v_wl.shape[:-1])
        near, far = self.source_currents
        p = self.power()
        data = {
            "v_in": variable((*batch, "row"), v_in, "V", "word-line source voltage"),
            "v_wl": variable(nodes, self.v_wl, "V", "word-line node voltage"),
            "v_bl": variable(nodes, self.v_bl, "V", "bit-line node voltage"),
            "i_cell": variable(nodes, self.i_cell, "A", "cell current, word line to bit line"),
            "i_out": variable((*batch, "col"), self.i_out, "A", "current into the sense node"),
            "i_source": variable((*batch, "row"), near + far, "A", "current delivered by the word-line source"),
            "p_cell": variable(nodes, p["cell"], "W", "power dissipated in each cell"),
            "p_wl": variable(nodes, p["wl"], "W", "power dissipated in each word-line segment"),
            "p_bl": variable(nodes, p["bl"], "W", "power dissipated in each bit-line segment"),
            "p_driver": variable((*batch, "row"), p["driver"], "W", "power dissipated in the WL drivers"),
            "p_sense": variable((*batch, "col"), p["sense"], "W", "power dissipated in the sense resistors"),
            "p_source": variable((*batch, "row"), p["source"], "W", "power delivered by the WL sources"),
            "p_sink": variable((*batch, "col"), p["sink"], "W", "power absorbed by the biased sense nodes"),
        }
        if self.crossbar.differential:
            data["i_diff"] = variable((*batch, "pair"), self.i_diff, "A", "differential pair output current")
        coords = {"row": np.arange(m), "col": np.arange(n)}
        attrs = {"solver": "linear nodal", "model": "crossbar", **self.report.attrs()}
        return xr.Dataset(data, coords=coords, attrs=attrs)
