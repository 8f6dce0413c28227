"""Yakopcic generalised memristor model (Yakopcic et al. 2011, 2013).

State ``x`` (dimensionless) in ``[0, 1]``::

    I(t)  = a1 x sinh(b V)   (V >= 0),    a2 x sinh(b V)   (V < 0)
    g(V)  = Ap (e^V - e^Vp)    V > Vp
          = -An (e^-V - e^Vn)  V < -Vn
          = 0                  otherwise          (V in volts inside the exponentials)
    dx/dt = eta g(V) f(x)

with the window ``f(x) = e^(-alpha_p (x - x_p)) ((x_p - x)/(1 - x_p) + 1)`` for ``x >= x_p``
when ``eta V > 0``, ``f(x) = e^(alpha_n (x + x_n - 1)) x/(1 - x_n)`` for ``x <= 1 - x_n`` when
``eta V <= 0``, and ``f = 1`` otherwise ([2]_, eqs. 4-7).  Both windows vanish at the bound
the state is driven towards.  ``a1``, ``a2`` are in A, ``b`` in 1/V, ``Ap``, ``An`` in 1/s.

References
----------
.. [1] C. Yakopcic, T. M. Taha, G. Subramanyam, R. E. Pino, S. Rogers, "A Memristor Device
   Model", IEEE Electron Device Lett. 32, 1436 (2011). doi:10.1109/LED.2011.2163292
.. [2] C. Yakopcic, T. M. Taha, G. Subramanyam, R. E. Pino, "Generalized Memristive Device
   SPICE Model and its Application in Circuit Design", IEEE Trans. CAD 32, 1201 (2013).
   doi:10.1109/TCAD.2013.2252057
"""

from __future__ import annotations

from ..cards import ModelSpec, Parameter, register_model
from .dynamic_model import DynamicModel
from .variability import MEMORY_SECTIONS

__all__ = ["SPEC", "Yakopcic"]

_POS = {"low": 0.0, "low_open": True}
SPEC = register_model(
    ModelSpec(
        name="yakopcic",
        kind="device",
        doc="Yakopcic generalised memristor model (2011/2013)",
        parameters=(
            Parameter("a1", "A", "I-V amplitude, V >= 0", low=0.0, high=1e3, low_open=True),
            Parameter("a2", "A", "I-V amplitude, V < 0", low=0.0, high=1e3, low_open=True),
            Parameter("b", "1/V", "I-V curvature", low=0.0, high=1e3, low_open=True),
            Parameter("vp", "V", "positive threshold", low=0.0, high=100.0),
            Parameter("vn", "V", "magnitude of the negative threshold", low=0.0, high=100.0),
            Parameter("ap", "1/s", "positive switching rate", low=0.0, low_open=True),
            Parameter("an", "1/s", "negative switching rate", low=0.0, low_open=True),
            Parameter("xp", "1", "state where positive motion starts to slow", low=0.0, high=1.0, high_open=True),
            Parameter("xn", "1", "1 - state where negative motion starts to slow", low=0.0, high=1.0, high_open=True),
            Parameter("alphap", "1", "positive window decay", low=0.0, high=1e3),
            Parameter("alphan", "1", "negative window decay", low=0.0, high=1e3),
            Parameter("eta", "1", "direction of motion relative to voltage (+1 or -1)", default=1.0, low=-1.0, high=1.0),
        ),
        sections=MEMORY_SECTIONS,
        checks=((lambda p: p["eta"] in (-1.0, 1.0), "eta: expected +1 or -1"),),
    )
)

class Yakopcic(DynamicModel):
    """Yakopcic generalised memristor model; parameters as in :data:`SPEC` (per-cell allowed)."""

    model_id = 3
    spec = SPEC
    state_name = "x"
    state_unit = "1"
    state_long_name = "normalised state variable"

    def __init__(self, *, a1, a2, b, vp, vn, ap, an, xp, xn, alphap, alphan, eta=1.0):
        nonneg = {"low": 0.0}
        self._pack([
            ("x_low", 0.0, {}),
            ("x_high", 1.0, {}),
            ("a1", a1, {"unit": "A", **_POS}),
            ("a2", a2, {"unit": "A", **_POS}),
            ("b", b, {"unit": "1/V", **_POS}),
            ("vp", vp, {"unit": "V", **nonneg}),
            ("vn", vn, {"unit": "V", **nonneg}),
            ("ap", ap, {"unit": "1/s", **_POS}),
            ("an", an, {"unit": "1/s", **_POS}),
            ("xp", xp, {"unit": "1", "low": 0.0, "high": 1.0, "high_open": True}),
            ("xn", xn, {"unit": "1", "low": 0.0, "high": 1.0, "high_open": True}),
            ("alphap", alphap, {"unit": "1", **nonneg}),
            ("alphan", alphan, {"unit": "1", **nonneg}),
            ("eta", eta, {"unit": "1", "low": -1.0, "high": 1.0}),
        ])
        if not ((self._P[13] == 1.0) | (self._P[13] == -1.0)).all():
            from ..errors import InputError

            raise InputError(f"eta: expected +1 or -1, got {eta!r}")

    @property
    def thresholds(self) -> tuple[float, ...]:
        return (float(-self._P[6].min()), float(self._P[5].min()))
