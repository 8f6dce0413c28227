"""1T1R with a dynamic memory element: a device model at its state in series with an NMOS.

Cell ``(i, j)`` joins its word-line node (top) to its bit-line node (bottom)::

    WL node --[ memory element at its state ]-- x --[ drain  NMOS  source ]-- BL node
                                                      gate = v_gate[i]   bulk = 0 V

as :class:`cimphys.devices.OneTransistorOneResistor`, but the memory element is a dynamic
device model (VTEAM, Yakopcic, Stanford-PKU, ...) with its own nonlinear I-V at its state, not
a fixed resistor.  The gate line of row ``i`` selects the row: on (``v_gate`` above the
threshold) the transistor passes the write current, off it isolates the row's memory
elements from the lines (a half-selected cell of an unselected row sees only what the
transistor's cut-off lets through: zero in the level-1 law).

The internal node ``x`` is solved per cell in the Numba kernel by bracketed Newton:
``I_d(x) - I_m(v_wl - x)`` rises monotonically in ``x`` (both elements are passive and
monotone) and its root lies between the bit-line and word-line voltages.  Implicit
differentiation gives the stamp::

    a = dI/dv_wl = g_m g_d / (g_m + g_d),     b = -dI/dv_bl = -g_m g_s / (g_m + g_d)

with ``g_m = dI_m/dV`` of the memory element at its voltage, ``g_d = dI_d/dv_d`` and
``g_s = dI_d/dv_s`` at the root.  :meth:`TransistorMemoryCell.memory_voltage` gives
``v_wl - x``, the voltage that drives the memory element's state.

References
----------
.. [1] H.-S. P. Wong et al., "Metal-oxide RRAM", Proc. IEEE 100, 1951 (2012),
   doi:10.1109/JPROC.2012.2190369 (the 1T1R cell, gate selection).
.. [2] H. Shichman, D. A. Hodges, IEEE J. Solid-State Circuits 3, 285 (1968),
   doi:10.1109/JSSC.1968.1049902 (the transistor law, :mod:`cimphys.devices.mosfet`).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit
from ..checks import as_array
from ..errors import InputError
from .laws.dispatch import model_iv
from .laws.kernel_math import bracketed_newton_step
from .laws.mosfet import mos1
from .mosfet import Level1Mosfet

# The digest of the laws this file's kernels inline (cimphys.devices.laws.sources_digest: Numba
# renews its cache of a file only when that file changes).
KERNEL_SOURCES = "d697dae7ffb16a26"

__all__ = ["TransistorMemoryCell"]

_ROOT_RTOL = 4e-16  # stop when the bracket or step is a few ulps of the cell voltage
_ROOT_MAXITER = 200  # bisection alone shrinks any bracket below one ulp in 200 halvings


@jit
def _tm_node(vw, vb, vg, mid, xs, P, k, p):
    """Internal node ``x`` with ``I_d(x, vg, vb, 0) = I_m(vw - x)``; returns
    ``(x, I, g_m, g_d, g_s)``.  ``p`` = (vto, beta, lambda, gamma, phi, rtol, maxiter)."""
    lo = min(vw, vb)
    hi = max(vw, vb)
    tol = p[5] * max(abs(vw), abs(vb))
    x = 0.5 * (vw + vb)
    i_d, gd, gg, gs, gbk = mos1(x, vg, vb, 0.0, p[0], p[1], p[2], p[3], p[4])
    im, gm = model_iv(mid, vw - x, xs, P, k)
    for _ in range(int(p[6])):
        f = i_d - im
        if f == 0.0 or hi - lo <= tol:
            break
        xn, lo, hi = bracketed_newton_step(x, f, gd + gm, lo, hi)
        done = abs(xn - x) <= tol
        x = xn
        i_d, gd, gg, gs, gbk = mos1(x, vg, vb, 0.0, p[0], p[1], p[2], p[3], p[4])
        im, gm = model_iv(mid, vw - x, xs, P, k)
        if done:
            break
    # read the current off the element the node's round-off disturbs least
    i = i_d if gd < gm else im
    return x, i, gm, gd, gs


@jit
def _tm_stamp(vw, vb, vg, n_cols, mid, xs, P, p, i, a, b, vm):
    """Current (A), ``a = dI/dv_wl``, ``b = -dI/dv_bl`` (S) and the memory element's voltage
    (V) of every flat cell; the row of cell ``c`` is ``(c // n_cols) % vg.size``."""
    nk = P.shape[1]
    nx = xs.size
    ng = vg.size
    for c in range(vw.size):
        k = 0 if nk == 1 else c % nk
        x, ic, gm, gd, gs = _tm_node(vw[c], vb[c], vg[(c // n_cols) % ng], mid, xs[c % nx], P, k, p)
        den = gm + gd
        i[c] = ic
        a[c] = gm * gd / den if den > 0.0 else 0.0
        b[c] = -gm * gs / den if den > 0.0 else 0.0
        vm[c] = vw[c] - x


class TransistorMemoryCell:
    """1T1R cell: a dynamic memory element at its state in series with an NMOS access transistor.

    Parameters
    ----------
    mosfet : Level1Mosfet
        The access transistor (the same for every cell).
    model : cimphys.devices.DynamicModel
        The memory element's device model.
    state : float or array_like
        The memory element's state per cell (``model.state_unit``), scalar or ``(M, N)``.
    v_gate : float or array_like, V
        Gate-line voltage, scalar or one per row ``(M,)``.

    Examples
    --------
    >>> from cimphys.cards import load_device
    >>> from cimphys.devices import Level1Mosfet, StanfordPKU
    >>> pku = StanfordPKU.from_card(load_device("guan2012_stanford_pku"))
    >>> nmos = Level1Mosfet.from_card(load_device("level1_access_nmos"))
    >>> cell = TransistorMemoryCell(nmos, pku, np.full((2, 2), 1.0e-9), v_gate=[2.5, 0.0])
    >>> i, a, b = cell.stamp(np.full((2, 2), 1.5), np.zeros((2, 2)))
    >>> bool(i[0, 0] > 1e-6 and i[1, 0] == 0.0)
    True
    """

    three_terminal = True  # the crossbar solvers call stamp(v_wl, v_bl), not I(V)

    def __init__(self, mosfet: Level1Mosfet, model, state, v_gate):
        if not isinstance(mosfet, Level1Mosfet):
            raise InputError(f"mosfet: expected a Level1Mosfet, got {type(mosfet).__name__}")
        frozen = model.read_cell(state)  # checks the states against the model and its shape
        self.mosfet, self.model = mosfet, model
        self.state = frozen.state
        self._shape = frozen.shape
        self.v_gate = as_array("v_gate", v_gate, unit="V", ndim=(0, 1)).reshape(-1)
        self._rows = self.v_gate.size if np.ndim(v_gate) == 1 else None
        if self._shape and self._rows is not None and self._rows != self._shape[0]:
            raise InputError(f"v_gate: expected {self._shape[0]} rows to match the states {self._shape}, "
                             f"got {self._rows}")
        self._packed = np.concatenate([mosfet.packed(), [_ROOT_RTOL, _ROOT_MAXITER]])

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-cell shape (of the states); ``()`` when the state is a scalar."""
        return self._shape

    def with_state(self, state) -> TransistorMemoryCell:
        """The same cells at other states."""
        return TransistorMemoryCell(self.mosfet, self.model, state, self._gate_arg())

    def with_gate(self, v_gate) -> TransistorMemoryCell:
        """The same cells with other gate-line voltages (V)."""
        return TransistorMemoryCell(self.mosfet, self.model, self.state.reshape(self._shape), v_gate)

    def _gate_arg(self):
        return self.v_gate if self._rows is not None else float(self.v_gate[0])

    def check_array(self, shape: tuple[int, int]) -> None:
        """Raise :class:`InputError` unless the cells fit an ``(M, N)`` array."""
        if self._shape and tuple(self._shape) != tuple(shape):
            raise InputError(f"state: per-cell shape {self._shape} does not match the array {tuple(shape)}")
        if self._rows is not None and self._rows != shape[0]:
            raise InputError(f"v_gate: expected {shape[0]} row voltages, got {self._rows}")

    def stamp(self, v_wl, v_bl):
        """Current (A) and the partials ``a = dI/dv_wl``, ``b = -dI/dv_bl`` (S) at node voltages
        ``(M, N)`` or ``(batch, M, N)`` (V)."""
        i, a, b, _ = self._evaluate(v_wl, v_bl)
        return i, a, b

    def memory_voltage(self, v_wl, v_bl) -> np.ndarray:
        """Voltage across the memory element (V) at these node voltages."""
        return self._evaluate(v_wl, v_bl)[3]

    def _evaluate(self, v_wl, v_bl):
        vw = as_array("v_wl", v_wl, unit="V", ndim=(2, 3))
        vb = as_array("v_bl", v_bl, unit="V", shape=vw.shape)
        self.check_array(vw.shape[-2:])
        out = np.empty((4, *vw.shape))
        self._run(vw.reshape(-1), vb.reshape(-1), vw.shape[-1], out.reshape(4, -1))
        return out[0], out[1], out[2], out[3]

    def _run(self, vw, vb, n_cols, out):
        _tm_stamp(np.ascontiguousarray(vw), np.ascontiguousarray(vb), self.v_gate, n_cols, self.model.model_id,
                  self.state, self.model._P, self._packed, out[0], out[1], out[2], out[3])

    def _stamp_flat(self, vw, vb, n_cols, out) -> None:
        """Kernel entry for the solvers: flat contiguous inputs, ``out`` (3, cells)."""
        vm = np.empty(vw.size)
        _tm_stamp(vw, vb, self.v_gate, n_cols, self.model.model_id, self.state, self.model._P, self._packed,
                  out[0], out[1], out[2], vm)
