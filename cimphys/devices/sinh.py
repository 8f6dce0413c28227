"""``SinhCell``: I = k·sinh(a·V), the read nonlinearity of a selector or an RRAM cell.

The sinh law is the low-field limit of trap-assisted tunnelling and ion hopping; it is the
read characteristic used by the Stanford-PKU RRAM model (``I0·exp(-g/g0)·sinh(V/V0)``, with
``k = I0·exp(-g/g0)`` and ``a = 1/V0``) and in crossbar studies of nonlinear cells.

References
----------
.. [1] X. Guan, S. Yu, H.-S. P. Wong, "A SPICE compact model of metal oxide resistive switching
   memory with variations", IEEE Electron Device Lett. 33, 1405 (2012).
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit
from ..cards import ModelSpec, Parameter, register_model
from .cell import TwoTerminalCell, flat_parameter

__all__ = ["SPEC", "SinhCell"]

SPEC = register_model(
    ModelSpec(
        name="sinh",
        kind="device",
        doc="I = k*sinh(a*V): static read nonlinearity",
        parameters=(
            Parameter("k", "A", "current prefactor", low=0.0, high=1.0, low_open=True),
            Parameter("a", "1/V", "voltage coefficient", low=0.0, high=1e3, low_open=True),
        ),
    )
)


@jit
def _sinh_iv(v, k, a, i, g):
    """Current and dI/dV of every cell; ``k`` and ``a`` repeat over ``v`` (a batch of arrays).

    sinh and cosh from one exponential (expm1 below |x| = 0.5, where e^x - e^-x would cancel);
    the parameter indices wrap with a counter, not a modulo (an integer division per cell).
    """
    nk = k.size
    na = a.size
    ik = 0
    ia = 0
    for c in range(v.size):
        kc = k[ik]
        ac = a[ia]
        ik += 1
        ia += 1
        if ik == nk:
            ik = 0
        if ia == na:
            ia = 0
        x = ac * v[c]
        if abs(x) < 0.5:
            m = math.expm1(x)  # sinh x = m (m + 2) / (2 (m + 1)), cosh x = 1 + m^2 / (2 (m + 1))
            half = 0.5 / (m + 1.0)
            s = m * (m + 2.0) * half
            ch = 1.0 + m * m * half
        else:
            e = math.exp(abs(x))
            s = math.copysign(0.5 * (e - 1.0 / e), x)
            ch = 0.5 * (e + 1.0 / e)
        i[c] = kc * s
        g[c] = kc * ac * ch


class SinhCell(TwoTerminalCell):
    """Cell with ``I = k·sinh(a·V)``.

    Parameters
    ----------
    k : float or array_like, A
        Current prefactor, > 0; may be an ``(M, N)`` per-cell array.
    a : float or array_like, 1/V
        Voltage coefficient, > 0; scalar or per-cell.

    Examples
    --------
    >>> cell = SinhCell(k=1e-6, a=2.0)
    >>> float(cell.current(0.5))  # 1e-6 * sinh(1.0)
    1.1752011936438014e-06
    """

    def __init__(self, k, a):
        k_arr = np.asarray(k, dtype=float)
        a_arr = np.asarray(a, dtype=float)
        self.k = flat_parameter("k", k, unit="A", low=0.0, low_open=True)
        self.a = flat_parameter("a", a, unit="1/V", low=0.0, low_open=True)
        shapes = {s for s in (k_arr.shape, a_arr.shape) if s}
        if len(shapes) > 1:
            from ..errors import InputError

            raise InputError(f"k and a: per-cell shapes differ, {k_arr.shape} vs {a_arr.shape}")
        self._shape = shapes.pop() if shapes else ()

    @classmethod
    def from_card(cls, card) -> SinhCell:
        return cls(k=card["k"], a=card["a"])

    def _evaluate(self, v, i, g):
        _sinh_iv(v, self.k, self.a, i, g)
