"""The interface every memristive model with a state variable offers.

A dynamic model holds its parameters packed in one float64 table ``P`` of shape
``(n_parameters, K)``: column ``k`` is the parameter set of cells ``c`` with ``c % K == k``, so
``K = 1`` means one set for every cell and ``K = n_cells`` means per-cell parameters
(device-to-device variation).  Rows 0 and 1 are always the lower and upper physical bounds of the
state.  The Numba kernels that evaluate a model are plain functions of ``(model_id, v, x, P, c)``
(see :mod:`cimphys.devices._dispatch`), so that one compiled integrator serves every model.

Interface (used by :func:`cimphys.devices.dynamics.integrate` and by programming/calibration code):

``model.current(v, state)``                  current in A (positive top -> bottom)
``model.conductance(v, state)``              differential conductance dI/dV in S
``model.current_and_conductance(v, state)``  both at once
``model.rate(v, state)``                     d(state)/dt in ``state_unit``/s
``model.state_bounds``                       ``(low, high)`` physical bounds of the state
``model.state_unit``, ``model.state_name``, ``model.state_long_name``
``model.thresholds``                         switching threshold voltages (may be empty)
``model.read_cell(state)``                   a :class:`TwoTerminalCell` at a fixed state
``Model.from_card(card)``                    build from a device card
"""

from __future__ import annotations

import numpy as np

from ..checks import as_array
from ..errors import InputError
from .cell import TwoTerminalCell

__all__ = ["DynamicModel", "FixedStateCell"]


class DynamicModel:
    """Base class: parameter packing, argument checks and the vectorised entry points.

    Subclasses set ``model_id`` (the branch of the dispatch kernels), ``spec`` (their
    :class:`~cimphys.cards.ModelSpec`), ``state_name``, ``state_unit``, ``state_long_name`` and
    build ``self._P`` with :meth:`_pack`.
    """

    model_id: int = -1
    spec = None
    state_name = "x"
    state_unit = "1"
    state_long_name = "state variable"

    # -- construction -------------------------------------------------------------------
    def _pack(self, rows: list[tuple[str, object, dict]]) -> None:
        """Check each ``(name, value, limits)`` and pack them into ``self._P``.

        Values may be scalars or arrays of one common shape (per-cell parameters).
        """
        arrays, shapes = [], set()
        for name, value, limits in rows:
            arr = as_array(name, value, ndim=(0, 1, 2), **limits)
            if arr.ndim:
                shapes.add(arr.shape)
            arrays.append(arr)
        if len(shapes) > 1:
            raise InputError(f"per-cell parameters have different shapes: {sorted(shapes)}")
        self._shape = shapes.pop() if shapes else ()
        k = int(np.prod(self._shape)) if self._shape else 1
        P = np.empty((len(rows), k))
        for r, arr in enumerate(arrays):
            P[r] = arr.reshape(-1) if arr.ndim else arr
        self._P = np.ascontiguousarray(P)
        self._names = tuple(name for name, _, _ in rows)
        lo, hi = P[0], P[1]
        if np.any(hi <= lo):
            raise InputError(f"{self._names[1]}: expected > {self._names[0]}, got {hi.min()!r} <= {lo.max()!r}")

    @classmethod
    def from_card(cls, card):
        """Build the model from a device card whose ``[model] name`` is this model's."""
        if cls.spec is not None and card.model != cls.spec.name:
            raise InputError(f"card {card.name!r} is a {card.model!r} card, not {cls.spec.name!r}")
        return cls(**dict(card.parameters))

    # -- properties ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of per-cell parameters, ``()`` when all are scalars."""
        return self._shape

    @property
    def packed(self) -> np.ndarray:
        """The packed parameter table ``P`` (read-only view)."""
        view = self._P.view()
        view.flags.writeable = False
        return view

    def parameter(self, name: str) -> np.ndarray:
        """One parameter as stored (flat array of length 1 or the number of per-cell sets)."""
        return self._P[self._names.index(name)].copy()

    @property
    def state_bounds(self) -> tuple:
        """``(low, high)`` physical bounds of the state (floats, or flat arrays if per-cell)."""
        lo, hi = self._P[0], self._P[1]
        if lo.size == 1:
            return float(lo[0]), float(hi[0])
        return lo.copy(), hi.copy()

    @property
    def thresholds(self) -> tuple[float, ...]:
        """Voltages at which the state equation is not smooth (switching thresholds), in V."""
        return ()

    # -- evaluation ---------------------------------------------------------------------
    def _broadcast(self, v, state):
        v = as_array("v", v, unit="V")
        lo, hi = self._P[0], self._P[1]
        x = as_array("state", state, unit=self.state_unit)
        try:
            v_b, x_b = np.broadcast_arrays(v, x)
        except ValueError:
            raise InputError(f"v and state: shapes {v.shape} and {x.shape} do not broadcast") from None
        x_flat = np.ascontiguousarray(x_b, dtype=float).reshape(-1)
        k = lo.size
        if k > 1 and x_flat.size % k:
            raise InputError(f"state: {x_flat.size} cells do not match {k} per-cell parameter sets")
        idx = np.arange(x_flat.size) % k
        tol = 1e-9 * (hi[idx] - lo[idx])
        bad = (x_flat < lo[idx] - tol) | (x_flat > hi[idx] + tol)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"state: expected values in [{lo[idx[i]]:g}, {hi[idx[i]]:g}] {self.state_unit}, "
                f"got {x_flat[i]!r} at flat index {i}"
            )
        return np.ascontiguousarray(v_b, dtype=float).reshape(-1), x_flat, v_b.shape

    def current_and_conductance(self, v, state) -> tuple[np.ndarray, np.ndarray]:
        """Current (A) and differential conductance dI/dV (S) at voltage ``v`` (V) and ``state``."""
        from ._dispatch import evaluate_iv

        v_f, x_f, shape = self._broadcast(v, state)
        i, g = evaluate_iv(self.model_id, v_f, x_f, self._P)
        return i.reshape(shape), g.reshape(shape)

    def current(self, v, state) -> np.ndarray:
        """Current in A at voltage ``v`` (V) and ``state``."""
        return self.current_and_conductance(v, state)[0]

    def conductance(self, v, state) -> np.ndarray:
        """Differential conductance dI/dV in S at voltage ``v`` (V) and ``state``."""
        return self.current_and_conductance(v, state)[1]

    def rate(self, v, state) -> np.ndarray:
        """Rate of change of the state, in ``state_unit`` per second."""
        from ._dispatch import evaluate_rate

        v_f, x_f, shape = self._broadcast(v, state)
        return evaluate_rate(self.model_id, v_f, x_f, self._P).reshape(shape)

    def read_cell(self, state) -> FixedStateCell:
        """The read path at a fixed state, as a :class:`TwoTerminalCell` for a crossbar."""
        return FixedStateCell(self, state)

    def __repr__(self) -> str:
        sets = self._P.shape[1]
        return f"{type(self).__name__}({sets} parameter set{'s' if sets > 1 else ''})"


class FixedStateCell(TwoTerminalCell):
    """A dynamic model frozen at one state per cell: its static I-V for crossbar solves.

    Parameters
    ----------
    model : DynamicModel
        The model; per-cell parameters must match the state's shape.
    state : float or array_like
        State of each cell, in ``model.state_unit``; its shape is the cell shape.
    """

    def __init__(self, model: DynamicModel, state):
        x = as_array("state", state, ndim=(0, 1, 2), unit=model.state_unit)
        model._broadcast(0.0, x)  # range check
        if model.shape and x.shape != model.shape:
            raise InputError(f"state: expected shape {model.shape} to match the per-cell parameters, got {x.shape}")
        self.model = model
        self.state = x.reshape(-1).copy()
        self._shape = x.shape

    def _evaluate(self, v, i, g):
        from ._dispatch import evaluate_iv_into

        evaluate_iv_into(self.model.model_id, v, self.state, self.model._P, i, g)
