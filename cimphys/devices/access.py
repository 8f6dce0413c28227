"""1T1R: a memristor state resistance in series with a level-1 NMOS access transistor.

Cell ``(i, j)`` joins its word-line node (top) to its bit-line node (bottom)::

    WL node --[ r ]-- x --[ drain  NMOS  source ]-- BL node
                               gate = v_gate[i]   bulk = 0 V

The gate of row ``i`` is driven by an ideal gate-line voltage ``v_gate[i]``.  A MOSFET gate
draws no DC current, so the gate line's resistance carries no current and drops no voltage in
a DC solve: it does not enter the operating point and is not modelled here.  The bulk is tied
to 0 V, so the body effect (``GAMMA``) makes the cell current depend on the absolute node
voltages, not only on their difference: the linearised stamp is
``I = a v_wl - b v_bl + c`` with ``a = dI/dv_wl`` and ``b = -dI/dv_bl`` and in general
``a != b``.

The internal node ``x`` is solved per cell in the Numba kernel by bracketed Newton: the series
residual ``I_d(x) - (v_wl - x)/r`` is monotone in ``x`` (both elements are passive and
monotone) and its root lies between ``v_bl`` and ``v_wl``.  Implicit differentiation gives::

    a = g_r g_d / (g_r + g_d),     b = -g_r g_s / (g_r + g_d)

with ``g_r = 1/r``, ``g_d = dI_d/dv_d`` and ``g_s = dI_d/dv_s`` at the root.

References
----------
.. [1] H. Shichman, D. A. Hodges, IEEE J. Solid-State Circuits 3, 285 (1968),
   doi:10.1109/JSSC.1968.1049902 (the transistor law; see :mod:`cimphys.devices.mosfet`).
.. [2] H.-S. P. Wong et al., "Metal-oxide RRAM", Proc. IEEE 100, 1951 (2012),
   doi:10.1109/JPROC.2012.2190369 (the 1T1R cell).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit
from ..checks import as_array
from ..errors import InputError
from .cell import flat_parameter
from .laws.kernel_math import bracketed_newton_step
from .laws.mosfet import mos1
from .mosfet import Level1Mosfet

# The digest of the laws this file's kernels inline (cimphys.devices.laws.sources_digest: Numba
# renews its cache of a file only when that file changes).
KERNEL_SOURCES = "d697dae7ffb16a26"

__all__ = ["OneTransistorOneResistor"]

_ROOT_RTOL = 4e-16  # stop when the step is a few ulps of the cell voltage
_ROOT_MAXITER = 200  # bisection alone shrinks any bracket below one ulp in 200 halvings


@jit
def _access_node(vw, vb, r, vg, p, rtol, maxiter):
    """Internal node ``x``: ``I_d(x, vg, vb, 0) = (vw - x)/r``; returns x, I, g_d, g_s."""
    lo = min(vw, vb)
    hi = max(vw, vb)
    i, gd, gg, gs, gbk = mos1(vb, vg, vb, 0.0, p[0], p[1], p[2], p[3], p[4])
    x = (vw / r + gd * vb) / (1.0 / r + gd)  # divider with the transistor's v_ds = 0 conductance
    tol = rtol * max(abs(vw), abs(vb))
    for _ in range(maxiter):
        i, gd, gg, gs, gbk = mos1(x, vg, vb, 0.0, p[0], p[1], p[2], p[3], p[4])
        f = i - (vw - x) / r
        if f == 0.0 or hi - lo <= tol:
            break
        xn, lo, hi = bracketed_newton_step(x, f, gd + 1.0 / r, lo, hi)
        done = abs(xn - x) <= tol
        x = xn
        if done:
            i, gd, gg, gs, gbk = mos1(x, vg, vb, 0.0, p[0], p[1], p[2], p[3], p[4])
            break
    # x carries an error ~ eps |v|; read the current off the element it disturbs least.
    i_x = i if gd * r < 1.0 else (vw - x) / r
    return x, i_x, gd, gs


@jit
def _access_stamp(vw, vb, r, vg, n_cols, p, i, a, b):
    """Cell current (A) and ``a = dI/dv_wl``, ``b = -dI/dv_bl`` (S) for flat node voltages.

    ``p`` = (vto, beta, lambda, gamma, phi, rtol, maxiter); the row of flat cell ``c`` is
    ``(c // n_cols) % vg.size``.
    """
    nr = r.size
    ng = vg.size
    for c in range(vw.size):
        rc = r[c % nr]
        x, i_x, gd, gs = _access_node(vw[c], vb[c], rc, vg[(c // n_cols) % ng], p, p[5], int(p[6]))
        gr = 1.0 / rc
        i[c] = i_x
        a[c] = gr * gd / (gr + gd)
        b[c] = -gr * gs / (gr + gd)


class OneTransistorOneResistor:
    """1T1R cell: state resistance ``r`` in series with an NMOS access transistor.

    Parameters
    ----------
    mosfet : Level1Mosfet
        The access transistor (same for every cell).
    r : float or array_like, ohm
        Memristor state resistance, > 0; scalar or ``(M, N)``.
    v_gate : float or array_like, V
        Gate-line voltage, scalar or one per row ``(M,)``.

    Examples
    --------
    >>> from cimphys.devices import Level1Mosfet
    >>> m = Level1Mosfet(vto=0.4, kp=2e-4, w=1e-6, l=1e-6, gamma=0.4, phi=0.7)
    >>> cell = OneTransistorOneResistor(m, r=1e4, v_gate=1.8)
    >>> i, a, b = cell.stamp(np.array([[0.3]]), np.array([[0.0]]))
    """

    three_terminal = True  # the crossbar solvers call stamp(v_wl, v_bl), not I(V)

    def __init__(self, mosfet: Level1Mosfet, r, v_gate):
        if not isinstance(mosfet, Level1Mosfet):
            raise InputError(f"mosfet: expected a Level1Mosfet, got {type(mosfet).__name__}")
        self.mosfet = mosfet
        self.r = flat_parameter("r", r, unit="ohm", low=0.0, low_open=True)
        self.v_gate = as_array("v_gate", v_gate, unit="V", ndim=(0, 1)).reshape(-1)
        r_shape = tuple(np.shape(r))
        if r_shape and self.v_gate.size > 1 and self.v_gate.size != r_shape[0]:
            raise InputError(f"v_gate: expected {r_shape[0]} rows to match r {r_shape}, got {self.v_gate.size}")
        self._shape = r_shape
        self._rows = self.v_gate.size if np.ndim(v_gate) == 1 else None
        self._packed = np.concatenate([mosfet.packed(), [_ROOT_RTOL, _ROOT_MAXITER]])

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-cell parameter shape (of ``r``); ``()`` when ``r`` is a scalar."""
        return self._shape

    def with_gate(self, v_gate) -> OneTransistorOneResistor:
        """A copy with other gate-line voltages (V)."""
        return OneTransistorOneResistor(self.mosfet, self.r.reshape(self._shape), v_gate)

    def check_array(self, shape: tuple[int, int]) -> None:
        """Raise :class:`InputError` unless the cell fits an ``(M, N)`` array."""
        if self._shape and tuple(self._shape) != tuple(shape):
            raise InputError(f"r: per-cell shape {self._shape} does not match the array {tuple(shape)}")
        if self._rows is not None and self._rows != shape[0]:
            raise InputError(f"v_gate: expected {shape[0]} row voltages, got {self._rows}")

    def stamp(self, v_wl, v_bl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Current (A) and the partials ``a = dI/dv_wl``, ``b = -dI/dv_bl`` (S).

        ``v_wl`` and ``v_bl`` are node voltages (V) of shape ``(M, N)`` or ``(batch, M, N)``.
        """
        vw = as_array("v_wl", v_wl, unit="V", ndim=(2, 3))
        vb = as_array("v_bl", v_bl, unit="V", shape=vw.shape)
        self.check_array(vw.shape[-2:])
        out = np.empty((3, *vw.shape))
        self._stamp_flat(vw.reshape(-1), vb.reshape(-1), vw.shape[-1], out.reshape(3, -1))
        return out[0], out[1], out[2]

    def _stamp_flat(self, vw, vb, n_cols, out) -> None:
        """Kernel entry for the solvers: flat contiguous inputs, ``out`` (3, cells)."""
        _access_stamp(vw, vb, self.r, self.v_gate, n_cols, self._packed, out[0], out[1], out[2])
