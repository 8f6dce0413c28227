"""A model's declaration: its parameters (name, unit, range, default), tables and cross-checks.

Every model declares its card keys once, in a :class:`ModelSpec` registered with
:func:`register_model` when its module is imported; :mod:`cimphys.cards` checks every card
against it.  :data:`PLAUSIBLE` holds each unit's physical window, applied on top of a
parameter's own range.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "PLAUSIBLE", "ModelSpec", "Parameter", "register_model", "registered_models"]

KINDS = ("device", "circuit")
_PARAMETER_KINDS = ("float", "int", "bool", "str", "floats")
#: Physical window of a parameter by unit, ``unit: (floor, cap)``: every parameter declared in
#: that unit is held to ``|value| <= cap``, and one declared strictly positive to ``value >=
#: floor``, on top of its own range, so that a unit slip in a card (S for uS, ohm for Mohm, a
#: lost exponent sign) fails loudly instead of loading.  The bounds are far outside any memory
#: device or periphery: a cell of more than 1 S or less than 1 mohm is a wire, above 1e15 ohm
#: an open; TEAM/VTEAM rate constants, fit constants rather than velocities, span 4.7e-13 to
#: 216 m/s in the published fits (Kvatinsky 2013, 2015); no cell or periphery sees 1 kV or 1 kA.
PLAUSIBLE = {
    "S": (1e-15, 1.0),
    "ohm": (1e-3, 1e15),
    "m/s": (1e-30, 1e6),
    "V": (1e-9, 1e3),
    "A": (1e-18, 1e3),
}


@dataclass(frozen=True)
class Parameter:
    """Declaration of one model parameter.

    Parameters
    ----------
    name : str
        Key in the card's table (snake_case, unit in the name where it helps).
    unit : str
        SI unit (``"ohm"``, ``"S"``, ``"V"``, ``"A"``, ``"s"``, ``"K"``, ``"m"``, ``"J"``,
        ``"W"``, ``"1"`` for dimensionless).
    doc : str
        One line saying what the parameter is.
    default : optional
        Value used when the card omits the key; ``None`` makes the key required.
    low, high : float
        Allowed range for numbers (bounds inclusive unless ``low_open``/``high_open``).
    kind : {"float", "int", "bool", "str", "floats"}
        Value type; ``"floats"`` is a list of numbers, each checked against the range.
    choices : tuple of str
        Allowed values of a ``"str"`` parameter (empty: any string).
    """

    name: str
    unit: str
    doc: str
    default: Any = None
    low: float = -math.inf
    high: float = math.inf
    kind: str = "float"
    choices: tuple[str, ...] = ()
    low_open: bool = False
    high_open: bool = False

    def __post_init__(self):
        if self.kind not in _PARAMETER_KINDS:
            raise ValueError(f"Parameter {self.name}: kind {self.kind!r} not in {_PARAMETER_KINDS}")
        if self.kind in ("float", "floats") and self.unit in PLAUSIBLE:
            floor, cap = PLAUSIBLE[self.unit]
            if self.low == 0.0 and self.low_open:  # strictly positive: at least the floor
                object.__setattr__(self, "low", floor)
                object.__setattr__(self, "low_open", False)
            if self.low < -cap:
                object.__setattr__(self, "low", -cap)
            if self.high > cap:
                object.__setattr__(self, "high", cap)

    @property
    def required(self) -> bool:
        return self.default is None

    def expectation(self) -> str:
        """Human-readable description of an acceptable value."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return f"one of {list(self.choices)}" if self.choices else "a string"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        rng = f"{left}{self.low:g}, {self.high:g}{right}"
        noun = {"float": "a finite number", "int": "an integer", "floats": "a list of finite numbers"}
        unit = "" if self.unit in ("", "1") else f" {self.unit}"
        return f"{noun[self.kind]} in {rng}{unit} ({self.doc})"

    def check(self, value: Any) -> Any:
        """Return the value converted to its Python type; raise ``ValueError`` with the reason."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(self.expectation())
            return value
        if self.kind == "str":
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise ValueError(self.expectation())
            return value
        if self.kind == "floats":
            if not isinstance(value, list) or not value:
                raise ValueError(self.expectation())
            return tuple(self._number(v) for v in value)
        return self._number(value)

    def _number(self, value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(self.expectation())
        if self.kind == "int" and not isinstance(value, int):
            raise ValueError(self.expectation())
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(self.expectation()) from None
        below = number <= self.low if self.low_open else number < self.low
        above = number >= self.high if self.high_open else number > self.high
        if not math.isfinite(number) or below or above:
            raise ValueError(self.expectation())
        return int(value) if self.kind == "int" else number


@dataclass(frozen=True)
class ModelSpec:
    """The declaration of a model: its parameters, optional extra tables and cross-checks.

    ``checks`` holds ``(predicate, message)`` pairs evaluated on the full parameter mapping
    (defaults filled in), for constraints between parameters such as ``r_on < r_off``.
    """

    name: str
    kind: str
    doc: str
    parameters: tuple[Parameter, ...]
    sections: Mapping[str, tuple[Parameter, ...]] = field(default_factory=dict)
    checks: tuple[tuple[Callable[[Mapping[str, Any]], bool], str], ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"ModelSpec {self.name}: kind must be one of {KINDS}")

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        """Default values of the optional parameters."""
        return {p.name: p.default for p in self.parameters if not p.required}


_REGISTRY: dict[tuple[str, str], ModelSpec] = {}
# Modules whose import registers the models of each kind.
_MODEL_PACKAGES = {"device": "cimphys.devices", "circuit": "cimphys.circuits"}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model declaration to the registry (called once, at import of its module)."""
    key = (spec.kind, spec.name)
    if key in _REGISTRY and _REGISTRY[key] != spec:
        raise ValueError(f"model {spec.kind} {spec.name!r} registered twice")
    _REGISTRY[key] = spec
    return spec


def registered_models(kind: str) -> dict[str, ModelSpec]:
    """All registered models of one kind, importing the package that declares them."""
    importlib.import_module(_MODEL_PACKAGES[kind])
    return {name: spec for (k, name), spec in _REGISTRY.items() if k == kind}
