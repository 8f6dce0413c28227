"""The interface every memristive model with a state variable offers.

A dynamic model holds its parameters packed in one float64 table ``P`` of shape
``(n_parameters, K)``: column ``k`` is the parameter set of cells ``c`` with ``c % K == k``, so
``K = 1`` means one set for every cell and ``K = n_cells`` means per-cell parameters
(device-to-device variation).  Rows 0 and 1 are always the lower and upper physical bounds of the
state.  The Numba kernels that evaluate a model are plain functions of ``(model_id, v, x, P, c)``
(see :mod:`cimphys.devices.laws.dispatch`), so that one compiled integrator serves every model.

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
from .laws.dispatch import evaluate_iv, evaluate_iv_into, evaluate_rate, first_bad_state

__all__ = ["DynamicModel", "FixedStateCell", "model_class"]


#: The class of each dynamic card model, by the name of its spec (filled as the classes are defined:
#: importing ``cimphys.devices`` defines them all).
_CLASSES: dict[str, type] = {}


def model_class(card) -> type:
    """The :class:`DynamicModel` subclass of a device card's ``[model] name``.

    The one resolver from card to class: each class's ``spec`` names its card model.

    Raises
    ------
    InputError
        When the card's model has no state dynamics (PCM, a selector, an access transistor).
    """
    if card.model not in _CLASSES:
        raise InputError(f"card {card.name!r}: model {card.model!r} has no state dynamics; "
                         f"expected one of {sorted(_CLASSES)}")
    return _CLASSES[card.model]


def _as_float(name: str, value) -> np.ndarray:
    """``value`` as a contiguous float64 array; InputError if it is not numeric."""
    try:
        return np.asarray(value, dtype=np.float64, order="C")  # keeps 0-d inputs 0-d
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected numbers, got {value!r:.80}") from exc


class DynamicModel:
    """Base class: parameter packing, argument checks and the vectorised entry points.

    Subclasses set ``model_id`` (the branch of the dispatch kernels), ``spec`` (their
    :class:`~cimphys.cards.ModelSpec`), ``state_name``, ``state_unit``, ``state_long_name`` and
    build ``self._P`` with :meth:`_pack`.  A subclass with a ``spec`` is the class of the card
    model its spec names (:func:`model_class`).
    """

    model_id: int = -1
    spec = None
    state_name = "x"
    state_unit = "1"
    state_long_name = "state variable"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if spec is not None:
            _CLASSES[spec.name] = cls

    # -- construction -------------------------------------------------------------------
    def _pack(self, rows: list[tuple[str, object, dict]]) -> None:
        """Check each ``(name, value, limits)`` and pack them into ``self._P``.

        Values may be scalars or arrays of one common shape (per-cell parameters).
        """
        arrays, shapes = [], set()
        for name, value, limits in rows:
            arr = as_array(name, value, ndim=(0, 1, 2), **_physical(limits))
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
        """``v`` and ``state`` as flat contiguous float64 arrays of one shape (values unchecked)."""
        v = _as_float("v", v)
        x = _as_float("state", state)
        if v.shape != x.shape:
            try:
                shape = np.broadcast_shapes(v.shape, x.shape)
            except ValueError:
                raise InputError(f"v and state: shapes {v.shape} and {x.shape} do not broadcast") from None
            v = np.ascontiguousarray(np.broadcast_to(v, shape))
            x = np.ascontiguousarray(np.broadcast_to(x, shape))
        if self._P.shape[1] > 1 and x.size % self._P.shape[1]:
            raise InputError(f"state: {x.size} cells do not match {self._P.shape[1]} per-cell parameter sets")
        return v.reshape(-1), x.reshape(-1), v.shape

    def _explain(self, v: np.ndarray, x: np.ndarray) -> None:
        """Raise the InputError that names the first bad voltage or state."""
        as_array("v", v, unit="V")
        as_array("state", x, unit=self.state_unit)
        self._check_state(x)
        raise InputError("v or state: invalid value")  # pragma: no cover - one of the above raised

    def _check_state(self, x: np.ndarray) -> None:
        """Raise InputError unless every state lies in its bounds (to 1e-9 of the range).

        ``x`` is flat float64; the scan is a Numba loop that allocates nothing.
        """
        k = self._P.shape[1]
        if k > 1 and x.size % k:
            raise InputError(f"state: {x.size} cells do not match {k} per-cell parameter sets")
        i = int(first_bad_state(np.ascontiguousarray(x, dtype=np.float64).reshape(-1), self._P))
        if i >= 0:
            lo, hi = self._P[0, i % k], self._P[1, i % k]
            raise InputError(
                f"state: expected finite values in [{lo:g}, {hi:g}] {self.state_unit}, "
                f"got {float(x.reshape(-1)[i])!r} at flat index {i}"
            )

    def current_and_conductance(self, v, state) -> tuple[np.ndarray, np.ndarray]:
        """Current (A) and differential conductance dI/dV (S) at voltage ``v`` (V) and ``state``."""
        v_f, x_f, shape = self._broadcast(v, state)
        i, g, bad = evaluate_iv(self.model_id, v_f, x_f, self._P)
        if bad >= 0:
            self._explain(v_f, x_f)
        return i.reshape(shape), g.reshape(shape)

    def current(self, v, state) -> np.ndarray:
        """Current in A at voltage ``v`` (V) and ``state``."""
        return self.current_and_conductance(v, state)[0]

    def conductance(self, v, state) -> np.ndarray:
        """Differential conductance dI/dV in S at voltage ``v`` (V) and ``state``."""
        return self.current_and_conductance(v, state)[1]

    def rate(self, v, state) -> np.ndarray:
        """Rate of change of the state, in ``state_unit`` per second."""
        v_f, x_f, shape = self._broadcast(v, state)
        r, bad = evaluate_rate(self.model_id, v_f, x_f, self._P)
        if bad >= 0:
            self._explain(v_f, x_f)
        return r.reshape(shape)

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
        model._check_state(x.reshape(-1))
        if model.shape and x.shape != model.shape:
            raise InputError(f"state: expected shape {model.shape} to match the per-cell parameters, got {x.shape}")
        self.model = model
        self.state = x.reshape(-1).copy()
        self._shape = x.shape

    def _evaluate(self, v, i, g):
        if evaluate_iv_into(self.model.model_id, v, self.state, self.model._P, i, g) >= 0:
            as_array("v", v, unit="V")  # the state was checked on construction


def _physical(limits: dict) -> dict:
    """``limits`` tightened to the physical window of their unit (:data:`cimphys.model_spec.PLAUSIBLE`),
    so that a model built directly refuses the unit slips a card would (r_on = 1e-30 ohm)."""
    from ..cards import PLAUSIBLE

    if limits.get("unit") not in PLAUSIBLE:
        return limits
    floor, cap = PLAUSIBLE[limits["unit"]]
    out = dict(limits)
    if out.get("low") == 0.0 and out.get("low_open"):
        out["low"], out["low_open"] = floor, False
    out["low"] = max(out.get("low", -np.inf), -cap)
    out["high"] = min(out.get("high", np.inf), cap)
    return out
