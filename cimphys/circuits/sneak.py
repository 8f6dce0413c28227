"""Write schemes and sneak paths of passive crossbars (no access transistor).

**Write biasing.**  To write cell ``(i, j)`` of a passive array, its word line is driven at
``V`` and its bit line held at 0 V; every other line is biased so that no other cell sees
more than a fraction of ``V`` [1]_:

====== ============ ============ ====================== =====================
scheme selected WL  other WLs    selected BL            other BLs
====== ============ ============ ====================== =====================
V/2    ``V``        ``V/2``      0                      ``V/2``
V/3    ``V``        ``V/3``      0                      ``2V/3``
====== ============ ============ ====================== =====================

With ideal wires the selected cell sees ``V``, the half-selected cells (on the selected row or
column) ``V/2`` or ``V/3``, the unselected cells 0 (V/2) or ``-V/3`` (V/3).  Wire resistance
lowers the selected cell's voltage and shifts the others; :func:`write_bias` solves the full
network (word lines driven at column 0, bit lines held at their sense end through the
``Network``'s ``v_bl_end``) and reports every cell's voltage and the worst cases.  A whole row
is written by selecting every column.

**Read margin.**  :func:`read_margin` reads one cell with the classic floating-line scheme:
the selected WL at ``v_read``, the selected BL through a load ``r_load`` to 0 V, every other
line floating, all unselected cells in their low-resistance state (the worst-case sneak
pattern).  With linear cells and ideal wires the sneak paths form three groups of parallel
cells in series [2]_::

    R_sneak = R_on/(N-1) + R_on/((M-1)(N-1)) + R_on/(M-1)
    V_out   = v_read r_load / (r_load + R_sel || R_sneak)

and the margin is ``(V_out(on) - V_out(off)) / v_read``.  Nonlinear (sinh, 1S1R) cells and wire
resistance are solved on the full network by :func:`cimphys.circuits.newton.solve_nonlinear`.

References
----------
.. [1] A. Chen, "A comprehensive crossbar array model with solutions for line resistance and
   nonlinear device characteristics", IEEE Trans. Electron Devices 60, 1318 (2013),
   doi:10.1109/TED.2013.2246791.
.. [2] A. Flocke, T. G. Noll, "Fundamental analysis of resistive nano-crossbars for the use in
   hybrid nano/CMOS-memory", Proc. ESSCIRC 2007, 328, doi:10.1109/ESSCIRC.2007.4430310.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..checks import as_array, as_scalar
from ..errors import InputError
from .newton import NewtonOptions, solve_nonlinear
from .linear import solve_linear
from .network import Network

__all__ = ["linear_cells", "read_margin", "sneak_resistance", "state_cells", "write_bias"]

_SCHEMES = {"V/2": (0.5, 0.5), "V/3": (1.0 / 3.0, 2.0 / 3.0)}  # (other WLs, other BLs) / V
ROLE_SELECTED, ROLE_HALF_ROW, ROLE_HALF_COL, ROLE_UNSELECTED = 0, 1, 2, 3


def _check_cells(cells, shape):
    """A conductance array (linear cells, S) or a cell model; returned checked."""
    if isinstance(cells, np.ndarray) or np.isscalar(cells):
        g = as_array("cells", cells, unit="S", low=0.0, ndim=(0, 2))
        if g.ndim and g.shape != tuple(shape):
            raise InputError(f"cells: expected conductances of shape {tuple(shape)}, got {g.shape}")
        return np.ascontiguousarray(np.broadcast_to(g, shape))
    if getattr(cells, "three_terminal", False):
        raise InputError("cells: the sneak-path analysis is for passive arrays; got a 1T1R cell")
    if not hasattr(cells, "current_and_conductance"):
        raise InputError(f"cells: expected conductances (S) or a two-terminal cell model, got {type(cells).__name__}")
    return cells


def _solve(network, cells, v_in, options):
    """Node voltages, output currents and cell currents for linear or nonlinear cells."""
    if isinstance(cells, np.ndarray):
        vw, vb, i_out = solve_linear(network, cells, cells, np.zeros(network.shape), v_in)
        return vw, vb, i_out, cells * (vw - vb)
    sol = solve_nonlinear(network, cells, v_in, options)
    return sol.v_wl, sol.v_bl, sol.i_out, sol.i_cell


def write_bias(
    cells,
    v_write,
    row: int,
    col: int | None = None,
    *,
    scheme: str = "V/2",
    r_wl=0.0,
    r_bl=0.0,
    r_driver=0.0,
    r_sense=0.0,
    shape: tuple[int, int] | None = None,
    options: NewtonOptions | None = None,
):
    """Voltage across every cell while writing cell ``(row, col)`` (or the whole ``row``).

    Parameters
    ----------
    cells : array_like or TwoTerminalCell
        ``(M, N)`` conductances in S (linear cells) or a two-terminal cell model with
        ``(M, N)`` per-cell parameters (sinh, 1S1R).
    v_write : float, V
        Write voltage, > 0.
    row, col : int
        Selected cell; ``col=None`` selects every column of ``row`` (a row write).
    scheme : {"V/2", "V/3"}
        Biasing of the unselected lines.
    r_wl, r_bl, r_driver, r_sense : float or array, ohm
        Wire resistances as in :class:`cimphys.circuits.nodal.Network`.
    shape : (M, N), optional
        Array size, needed only when ``cells`` has scalar parameters.

    Returns
    -------
    xarray.Dataset
        ``v_cell``, ``i_cell`` (row, col), ``role`` (0 selected, 1 half-selected on the row,
        2 half-selected on the column, 3 unselected) and the scalars ``v_selected_min``,
        ``v_half_max`` (worst disturb, largest ``|V|`` on a half-selected cell),
        ``v_unselected_max`` and ``write_margin = v_selected_min - v_half_max``.
    """
    if scheme not in _SCHEMES:
        raise InputError(f"scheme: expected one of {list(_SCHEMES)}, got {scheme!r}")
    shape = _array_shape(cells, shape)
    cells = _check_cells(cells, shape)
    v = as_scalar("v_write", v_write, unit="V", low=0.0, low_open=True)
    m, n = shape
    row = int(as_scalar("row", row, low=0, high=m - 1))
    cols = np.arange(n) if col is None else np.array([int(as_scalar("col", col, low=0, high=n - 1))])
    f_wl, f_bl = _SCHEMES[scheme]
    v_in = np.full(m, f_wl * v)
    v_in[row] = v
    v_bl_end = np.full(n, f_bl * v)
    v_bl_end[cols] = 0.0
    net = Network.build(shape, r_wl=r_wl, r_bl=r_bl, r_driver=r_driver, r_sense=r_sense, v_bl_end=v_bl_end)
    vw, vb, _, i_cell = _solve(net, cells, v_in, options)
    sel_row = np.zeros(m, bool)
    sel_row[row] = True
    sel_col = np.zeros(n, bool)
    sel_col[cols] = True
    role = np.where(
        sel_row[:, None] & sel_col[None, :],
        ROLE_SELECTED,
        np.where(sel_row[:, None], ROLE_HALF_ROW, np.where(sel_col[None, :], ROLE_HALF_COL, ROLE_UNSELECTED)),
    )
    return _write_dataset(vw - vb, i_cell, role, v, scheme)


def _array_shape(cells, given) -> tuple[int, int]:
    shape = tuple(np.shape(cells)) if isinstance(cells, np.ndarray) else tuple(getattr(cells, "shape", ()))
    if given is not None:
        given = tuple(int(as_scalar("shape", s, low=1)) for s in given)
        if shape and shape != given:
            raise InputError(f"shape: {given} does not match the cells' shape {shape}")
        shape = given
    if len(shape) != 2:
        raise InputError(f"cells: expected an (M, N) array or per-cell parameters of shape (M, N), got {shape}")
    return shape


def _write_dataset(v_cell, i_cell, role, v, scheme):
    import xarray as xr

    from ..results import variable

    def worst(mask, fn):
        return float(fn(v_cell[mask])) if mask.any() else 0.0

    half = (role == ROLE_HALF_ROW) | (role == ROLE_HALF_COL)
    v_sel = worst(role == ROLE_SELECTED, np.min)
    v_half = worst(half, lambda x: np.max(np.abs(x)))
    v_unsel = worst(role == ROLE_UNSELECTED, lambda x: np.max(np.abs(x)))
    data = {
        "v_cell": variable(("row", "col"), v_cell, "V", "voltage across the cell, WL minus BL"),
        "i_cell": variable(("row", "col"), i_cell, "A", "cell current, WL to BL"),
        "role": variable(
            ("row", "col"), role.astype(np.int8), "1", "0 selected, 1/2 half-selected row/col, 3 unselected"
        ),
        "v_selected_min": variable((), v_sel, "V", "lowest voltage across a selected cell"),
        "v_half_max": variable((), v_half, "V", "largest |voltage| across a half-selected cell"),
        "v_unselected_max": variable((), v_unsel, "V", "largest |voltage| across an unselected cell"),
        "write_margin": variable((), v_sel - v_half, "V", "selected minimum minus half-selected maximum"),
    }
    return xr.Dataset(data, attrs={"scheme": scheme, "v_write": v})


def linear_cells(g_on, g_off) -> Callable[[np.ndarray], np.ndarray]:
    """Cell factory for :func:`read_margin`: conductance ``g_on`` or ``g_off`` (S) by state."""
    g_on = as_scalar("g_on", g_on, unit="S", low=0.0, low_open=True)
    g_off = as_scalar("g_off", g_off, unit="S", low=0.0, low_open=True)
    return lambda on: np.where(on, g_on, g_off).astype(float)


def state_cells(build: Callable, on_value, off_value) -> Callable:
    """Cell factory for :func:`read_margin` from a model constructor and a per-cell state.

    ``build(values)`` receives an ``(M, N)`` array holding ``on_value`` where a cell is on and
    ``off_value`` elsewhere, e.g. ``state_cells(lambda k: SinhCell(k=k, a=4.0), 1e-5, 1e-7)``
    or ``state_cells(lambda r: SelectorResistorCell(sel, r), 1e4, 1e6)``.
    """
    return lambda on: build(np.where(on, float(on_value), float(off_value)))


def sneak_resistance(r_on: float, m: int, n: int) -> float:
    """Worst-case sneak resistance (ohm) of an ``M x N`` floating-line array, ideal wires."""
    if m < 2 or n < 2:
        raise InputError(f"m, n: the sneak network needs at least 2 rows and 2 columns, got {(m, n)}")
    return r_on / (n - 1) + r_on / ((m - 1) * (n - 1)) + r_on / (m - 1)


def read_margin(
    sizes: Sequence[int] | Sequence[tuple[int, int]],
    make_cells: Callable[[np.ndarray], object],
    v_read,
    r_load,
    *,
    r_wl=0.0,
    r_bl=0.0,
    selected: str = "far",
    options: NewtonOptions | None = None,
):
    """Read margin of one cell under the worst-case sneak pattern, against array size.

    Parameters
    ----------
    sizes : sequence of int or (M, N)
        Array sizes (an int ``n`` means ``n x n``), each at least 2 x 2.
    make_cells : callable
        ``make_cells(on)`` with ``on`` an ``(M, N)`` boolean state map returns the cells:
        conductances in S or a cell model (see :func:`linear_cells`, :func:`state_cells`).
    v_read : float, V
        Read voltage on the selected word line, > 0.
    r_load : float, ohm
        Load (sense) resistor from the selected bit line to 0 V, > 0.
    r_wl, r_bl : float, ohm
        Wire segment resistances.
    selected : {"far", "near"}
        Selected cell: ``"far"`` is row 0, column N-1 (farthest from the WL driver and the BL
        load: the worst case with wire resistance); ``"near"`` is row M-1, column 0.

    Returns
    -------
    xarray.Dataset
        Over dim ``size``: ``v_out_on``, ``v_out_off`` (V across the load), ``margin``
        (``(v_out_on - v_out_off)/v_read``), ``i_selected_on``/``i_selected_off`` (A), with
        coordinates ``rows`` and ``cols``.
    """
    v = as_scalar("v_read", v_read, unit="V", low=0.0, low_open=True)
    r_l = as_scalar("r_load", r_load, unit="ohm", low=0.0, low_open=True)
    if selected not in ("far", "near"):
        raise InputError(f"selected: expected 'far' or 'near', got {selected!r}")
    shapes = [_size(s) for s in sizes]
    if not shapes:
        raise InputError("sizes: expected at least one array size")
    out = np.array([_read_one(shape, make_cells, v, r_l, r_wl, r_bl, selected, options) for shape in shapes])
    return _margin_dataset(shapes, out, v)


def _size(s) -> tuple[int, int]:
    m, n = (s, s) if np.isscalar(s) else tuple(s)
    m = int(as_scalar("sizes", m, low=2))
    n = int(as_scalar("sizes", n, low=2))
    return m, n


def _read_one(shape, make_cells, v, r_l, r_wl, r_bl, selected, options):
    """(v_out_on, v_out_off, i_sel_on, i_sel_off) for one array size."""
    m, n = shape
    i, j = (0, n - 1) if selected == "far" else (m - 1, 0)
    wl_float = np.ones(m, bool)
    wl_float[i] = False
    bl_float = np.ones(n, bool)
    bl_float[j] = False
    net = Network.build(shape, r_wl=r_wl, r_bl=r_bl, r_sense=r_l, wl_floating=wl_float, bl_floating=bl_float)
    v_in = np.where(wl_float, 0.0, v)
    row = []
    for state in (True, False):
        on = np.ones(shape, bool)
        on[i, j] = state
        cells = _check_cells(make_cells(on), shape)
        _, _, i_out, i_cell = _solve(net, cells, v_in, options)
        row.append((i_out[j] * r_l, i_cell[i, j]))
    return row[0][0], row[1][0], row[0][1], row[1][1]


def _margin_dataset(shapes, out, v):
    import xarray as xr

    from ..results import variable

    coords = {
        "rows": ("size", np.array([s[0] for s in shapes])),
        "cols": ("size", np.array([s[1] for s in shapes])),
    }
    data = {
        "v_out_on": variable(("size",), out[:, 0], "V", "load voltage, selected cell on"),
        "v_out_off": variable(("size",), out[:, 1], "V", "load voltage, selected cell off"),
        "margin": variable(("size",), (out[:, 0] - out[:, 1]) / v, "1", "read margin (V_on - V_off)/v_read"),
        "i_selected_on": variable(("size",), out[:, 2], "A", "selected cell current, cell on"),
        "i_selected_off": variable(("size",), out[:, 3], "A", "selected cell current, cell off"),
    }
    return xr.Dataset(data, coords=coords, attrs={"scheme": "floating lines, all unselected cells on", "v_read": v})
