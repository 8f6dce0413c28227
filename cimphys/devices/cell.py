"""The read-path interface a crossbar asks of a two-terminal cell.

A cell model gives, for the voltage ``V = V(top) - V(bottom)`` across every cell of an array,
the current ``I`` (positive from top to bottom terminal) and the differential conductance
``dI/dV`` that Newton's method needs.  Parameters may be scalars or per-cell arrays (device-to-
device variation); they are stored flat, and a kernel indexes parameter ``p`` of cell ``c`` as
``p[c % p.size]`` so that a scalar, an ``(M, N)`` array or a batch of voltages over an
``(M, N)`` grid all go through the same compiled code.
"""

from __future__ import annotations

import numpy as np

from ..checks import as_array
from ..errors import InputError

__all__ = ["TwoTerminalCell", "flat_parameter"]


def flat_parameter(name: str, value, **limits) -> np.ndarray:
    """Check a scalar or per-cell parameter and return it flat, contiguous float64."""
    return as_array(name, value, ndim=(0, 1, 2), **limits).reshape(-1)


class TwoTerminalCell:
    """Base class for cell models with a static read characteristic ``I(V)``.

    Subclasses set ``_shape`` (the per-cell parameter shape, ``()`` for scalars) and
    implement :meth:`_evaluate`, which fills ``i`` and ``g`` for flat voltages.
    """

    _shape: tuple[int, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the per-cell parameters; ``()`` when every parameter is a scalar."""
        return self._shape

    def _check_voltage(self, v) -> np.ndarray:
        v = as_array("v", v, unit="V")
        if self._shape and tuple(v.shape[v.ndim - len(self._shape):]) != self._shape:
            raise InputError(f"v: expected trailing shape {self._shape} to match the cell parameters, got {v.shape}")
        return v

    def current_and_conductance(self, v) -> tuple[np.ndarray, np.ndarray]:
        """Current (A) and differential conductance dI/dV (S) at voltages ``v`` (V)."""
        v = self._check_voltage(v)
        i = np.empty_like(v)
        g = np.empty_like(v)
        self._evaluate(v.reshape(-1), i.reshape(-1), g.reshape(-1))
        return i, g

    def current(self, v) -> np.ndarray:
        """Current in A through each cell at voltage ``v`` in V."""
        return self.current_and_conductance(v)[0]

    def conductance(self, v) -> np.ndarray:
        """Differential conductance dI/dV in S at voltage ``v`` in V."""
        return self.current_and_conductance(v)[1]

    def _evaluate(self, v: np.ndarray, i: np.ndarray, g: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError
