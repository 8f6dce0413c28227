"""1S1R: a sinh-type selector in series with a memristor state (a resistance).

The selector conducts ``I = i_0 sinh(V_s / v_0)`` (trap-assisted tunnelling / ion hopping
through a thin barrier, the symmetric "nonlinear select device" of crossbar studies [1]_); its
half-bias nonlinearity ``I(V)/I(V/2)`` is what suppresses sneak currents [2]_.  The memory
element is its state resistance ``r`` (ohm, per cell).  In series::

    I = (V - V_s) / r = i_0 sinh(V_s / v_0)

The internal node voltage ``V_s`` is solved inside the Numba kernel for every cell by a
bracketed (safeguarded) Newton iteration to machine precision: the residual is monotone in
``V_s`` and the root lies between 0 and ``V``.  The differential conductance is the exact
implicit derivative, the series combination ``dI/dV = g_s / (1 + g_s r)`` with
``g_s = dI_s/dV_s`` at the root.

References
----------
.. [1] A. Chen, "A comprehensive crossbar array model with solutions for line resistance and
   nonlinear device characteristics", IEEE Trans. Electron Devices 60, 1318 (2013),
   doi:10.1109/TED.2013.2246791.
.. [2] G. W. Burr et al., "Access devices for 3D crosspoint memory", J. Vac. Sci. Technol. B 32,
   040802 (2014), doi:10.1116/1.4889999.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit
from ..cards import ModelSpec, Parameter, register_model
from ..checks import as_scalar
from ..errors import InputError
from .laws.dispatch import model_iv
from .laws.kernel_math import bracketed_newton_step
from .cell import TwoTerminalCell, flat_parameter

# The digest of the laws this file's kernels inline (cimphys.devices.laws.sources_digest: Numba
# renews its cache of a file only when that file changes).
KERNEL_SOURCES = "d697dae7ffb16a26"

__all__ = ["SPEC", "SelectorMemoryCell", "SelectorResistorCell", "SinhSelector"]

SPEC = register_model(
    ModelSpec(
        name="sinh_selector",
        kind="device",
        doc="selector I = i_0*sinh(V/v_0), used in series with a memristor state (1S1R)",
        parameters=(
            Parameter("i_0", "A", "selector current prefactor", low=0.0, high=1.0, low_open=True),
            Parameter("v_0", "V", "selector characteristic voltage", low=0.0, high=10.0, low_open=True),
        ),
    )
)

# The scalar solve stops when the bracket or the Newton step is below this many ulps of the
# applied voltage: the root is then exact to the last bits of a float64.
_ROOT_RTOL = 4e-16
_ROOT_MAXITER = 200  # bisection alone halves a 1 V bracket to 1e-60 V in 200 steps


@jit
def _series_root(v, r, i0, v0, rtol, maxiter):
    """Selector voltage ``x`` with ``i0 sinh(x/v0) = (v - x)/r``; bracketed Newton."""
    if v == 0.0:
        return 0.0
    lo = min(0.0, v)
    hi = max(0.0, v)
    # Start where the selector's zero-bias resistance v0/i0 and r divide v.
    x = v / (1.0 + r * i0 / v0)
    tol = rtol * abs(v)
    for _ in range(maxiter):
        s = math.sinh(x / v0)
        f = i0 * s - (v - x) / r
        if f == 0.0:
            return x
        xn, lo, hi = bracketed_newton_step(x, f, i0 / v0 * math.cosh(x / v0) + 1.0 / r, lo, hi)
        if abs(xn - x) <= tol or hi - lo <= tol:
            return xn
        x = xn
    return x


@jit
def _one_s_one_r_iv(v, r, p, i, g):
    """1S1R current and dI/dV; ``p`` = (i_0, v_0, rtol, maxiter)."""
    nr = r.size
    i0 = p[0]
    v0 = p[1]
    for c in range(v.size):
        rc = r[c % nr]
        x = _series_root(v[c], rc, i0, v0, p[2], int(p[3]))
        gs = i0 / v0 * math.cosh(x / v0)
        # x carries an error ~ eps |v|; read the current off the element it disturbs least.
        i[c] = i0 * math.sinh(x / v0) if gs * rc < 1.0 else (v[c] - x) / rc
        g[c] = gs / (1.0 + gs * rc)


class SinhSelector:
    """Selector law ``I = i_0 sinh(V / v_0)``.

    Parameters
    ----------
    i_0 : float, A
        Current prefactor, > 0.
    v_0 : float, V
        Characteristic voltage, > 0; the half-bias nonlinearity at ``V`` is
        ``sinh(V/v_0) / sinh(V/(2 v_0))``.
    """

    def __init__(self, i_0, v_0):
        self.i_0 = as_scalar("i_0", i_0, unit="A", low=0.0, low_open=True)
        self.v_0 = as_scalar("v_0", v_0, unit="V", low=0.0, low_open=True)

    @classmethod
    def from_card(cls, card) -> SinhSelector:
        if card.model != SPEC.name:
            raise InputError(f"card: expected a {SPEC.name!r} card, got model {card.model!r}")
        return cls(i_0=card["i_0"], v_0=card["v_0"])

    def current(self, v) -> np.ndarray:
        """Selector current in A at voltage ``v`` in V (plain NumPy: not a hot path)."""
        return self.i_0 * np.sinh(np.asarray(v, dtype=float) / self.v_0)

    def nonlinearity(self, v) -> float:
        """Half-bias nonlinearity ``I(V) / I(V/2)`` of the selector alone at ``v`` (V)."""
        v = as_scalar("v", v, unit="V", low=0.0, low_open=True)
        return float(math.sinh(v / self.v_0) / math.sinh(v / (2 * self.v_0)))


class SelectorResistorCell(TwoTerminalCell):
    """1S1R cell: :class:`SinhSelector` in series with a state resistance ``r``.

    Parameters
    ----------
    selector : SinhSelector
        The selector law (shared by all cells).
    r : float or array_like, ohm
        Memristor state resistance, > 0; scalar or an ``(M, N)`` per-cell array.

    Examples
    --------
    >>> cell = SelectorResistorCell(SinhSelector(i_0=1e-7, v_0=0.1), r=1e4)
    >>> i, g = cell.current_and_conductance(0.5)
    """

    def __init__(self, selector: SinhSelector, r):
        if not isinstance(selector, SinhSelector):
            raise InputError(f"selector: expected a SinhSelector, got {type(selector).__name__}")
        self.selector = selector
        self.r = flat_parameter("r", r, unit="ohm", low=0.0, low_open=True)
        self._shape = tuple(np.shape(r))
        self._packed = np.array([selector.i_0, selector.v_0, _ROOT_RTOL, _ROOT_MAXITER], dtype=float)

    def with_r(self, r) -> SelectorResistorCell:
        """A copy with another state resistance (ohm)."""
        return SelectorResistorCell(self.selector, r)

    def _evaluate(self, v, i, g):
        _one_s_one_r_iv(v, self.r, self._packed, i, g)


@jit
def _selector_memory_root(v, mid, x, P, k, i0, v0, rtol, maxiter):
    """Selector voltage ``u`` with ``i0 sinh(u/v0) = I_m(v - u)`` (the memory element of model
    ``mid`` at state ``x``); bracketed Newton: the residual rises monotonically in ``u``."""
    if v == 0.0:
        return 0.0
    lo = min(0.0, v)
    hi = max(0.0, v)
    u = 0.5 * v
    tol = rtol * abs(v)
    for _ in range(maxiter):
        im, gm = model_iv(mid, v - u, x, P, k)
        f = i0 * math.sinh(u / v0) - im
        if f == 0.0:
            return u
        un, lo, hi = bracketed_newton_step(u, f, i0 / v0 * math.cosh(u / v0) + gm, lo, hi)
        if abs(un - u) <= tol or hi - lo <= tol:
            return un
        u = un
    return u


@jit
def _selector_memory_iv(v, mid, x, P, p, i, g, u_out):
    """1S1R with a dynamic memory element: current, dI/dV and the selector voltage per cell."""
    nk = P.shape[1]
    nx = x.size
    for c in range(v.size):
        k = 0 if nk == 1 else c % nk
        xc = x[c % nx]
        u = _selector_memory_root(v[c], mid, xc, P, k, p[0], p[1], p[2], int(p[3]))
        gs = p[0] / p[1] * math.cosh(u / p[1])
        im, gm = model_iv(mid, v[c] - u, xc, P, k)
        i[c] = im
        g[c] = gs * gm / (gs + gm) if gs + gm > 0.0 else 0.0
        u_out[c] = u


class SelectorMemoryCell(TwoTerminalCell):
    """1S1R cell whose memory element is a dynamic device model at its state.

    ``I = i_0 sinh(V_s / v_0) = I_m(V - V_s; state)``: the selector in series with the memory
    element's own nonlinear I-V (VTEAM, Yakopcic, Stanford-PKU, ... at its state), not a fixed
    resistor.  The selector voltage is solved per cell by a bracketed Newton iteration to machine
    precision; ``dI/dV = g_s g_m / (g_s + g_m)``.  :meth:`memory_voltage` gives the voltage the
    memory element sees, which is what drives its state.

    Parameters
    ----------
    selector : SinhSelector
    model : cimphys.devices.DynamicModel
    state : float or array_like
        The memory element's state per cell (``model.state_unit``).
    """

    def __init__(self, selector: SinhSelector, model, state):
        if not isinstance(selector, SinhSelector):
            raise InputError(f"selector: expected a SinhSelector, got {type(selector).__name__}")
        frozen = model.read_cell(state)  # checks the states and their shape
        self.selector, self.model = selector, model
        self.state = frozen.state
        self._shape = frozen.shape
        self._packed = np.array([selector.i_0, selector.v_0, _ROOT_RTOL, _ROOT_MAXITER], dtype=float)

    def with_state(self, state) -> SelectorMemoryCell:
        """The same cell at other states."""
        return SelectorMemoryCell(self.selector, self.model, state)

    def _solve(self, v):
        v = np.ascontiguousarray(v, dtype=float).reshape(-1)
        i, g, u = np.empty_like(v), np.empty_like(v), np.empty_like(v)
        _selector_memory_iv(v, self.model.model_id, self.state, self.model._P, self._packed, i, g, u)
        return i, g, u

    def _evaluate(self, v, i, g):
        i[:], g[:], _ = self._solve(v)

    def memory_voltage(self, v) -> np.ndarray:
        """Voltage across the memory element (V) at cell voltages ``v`` (V)."""
        v = np.asarray(v, dtype=float)
        return (v.reshape(-1) - self._solve(v)[2]).reshape(v.shape)
