"""Linear ion drift memristor (Strukov et al. 2008) with the Joglekar, Biolek and Prodromakis windows.

State ``w`` (m), the width of the doped (low-resistance) region, in ``[0, D]``::

    R(w)  = R_on w/D + R_off (1 - w/D),        i = v / R(w)
    dw/dt = mu_v R_on / D * i(t) * f(w/D, i)

Windows of the normalised state ``u = w/D``:

- ``"none"``: ``f = 1`` (the ideal model of [1]_; the integrator still bounds ``w`` to [0, D]);
- ``"joglekar"`` [2]_: ``f = 1 - (2u - 1)^(2p)``;
- ``"biolek"`` [3]_: ``f = 1 - (u - stp(-i))^(2p)``, ``stp(s) = 1`` for ``s >= 0`` else 0, so that
  the window closes at the boundary the current drives the state towards and not at the other;
- ``"prodromakis"`` [4]_: ``f = j (1 - ((u - 1/2)^2 + 3/4)^p)``.

References
----------
.. [1] D. B. Strukov, G. S. Snider, D. R. Stewart, R. S. Williams, "The missing memristor found",
   Nature 453, 80 (2008). doi:10.1038/nature06932
.. [2] Y. N. Joglekar, S. J. Wolf, "The elusive memristor: properties of basic electrical
   circuits", Eur. J. Phys. 30, 661 (2009). doi:10.1088/0143-0807/30/4/001
.. [3] Z. Biolek, D. Biolek, V. Biolkova, "SPICE model of memristor with nonlinear dopant
   drift", Radioengineering 18, 210 (2009).
.. [4] T. Prodromakis, B. P. Peh, C. Papavassiliou, C. Toumazou, "A versatile memristor model
   with nonlinear dopant kinetics", IEEE Trans. Electron Devices 58, 3099 (2011).
   doi:10.1109/TED.2011.2158004
"""

from __future__ import annotations

from ..cards import ModelSpec, Parameter, register_model
from ..errors import InputError
from .dynamic_model import DynamicModel
from .variability import MEMORY_SECTIONS

__all__ = ["SPEC", "LinearIonDrift"]

WINDOWS = ("none", "joglekar", "biolek", "prodromakis")

SPEC = register_model(
    ModelSpec(
        name="linear_ion_drift",
        kind="device",
        doc="Linear ion drift memristor (Strukov 2008) with optional window",
        parameters=(
            Parameter("r_on", "ohm", "resistance when fully doped (w = D)", low=0.0, low_open=True),
            Parameter("r_off", "ohm", "resistance when undoped (w = 0)", low=0.0, low_open=True),
            Parameter("d", "m", "device thickness D", low=0.0, high=1e-6, low_open=True),
            Parameter("mu_v", "m^2/(V*s)", "average ion mobility", low=0.0, high=1.0, low_open=True),
            Parameter("window", "1", "window function", default="none", kind="str", choices=WINDOWS),
            Parameter("p", "1", "window exponent", default=1.0, low=0.0, high=100.0, low_open=True),
            Parameter("j", "1", "Prodromakis window scale", default=1.0, low=0.0, high=10.0, low_open=True),
        ),
        sections=MEMORY_SECTIONS,
        checks=((lambda p: p["r_off"] > p["r_on"], "expected r_off > r_on"),),
    )
)

class LinearIonDrift(DynamicModel):
    """Linear ion drift memristor; parameters as in :data:`SPEC` (any may be per-cell arrays).

    Examples
    --------
    >>> m = LinearIonDrift(r_on=100.0, r_off=16e3, d=10e-9, mu_v=1e-14)
    >>> float(m.current(1.0, 5e-9))  # R = (100 + 16000)/2
    0.00012422360248447205
    """

    model_id = 0
    spec = SPEC
    state_name = "w"
    state_unit = "m"
    state_long_name = "width of the doped region"

    def __init__(self, *, r_on, r_off, d, mu_v, window="none", p=1.0, j=1.0):
        if window not in WINDOWS:
            raise InputError(f"window: expected one of {WINDOWS}, got {window!r}")
        pos = {"low": 0.0, "low_open": True}
        self._pack([
            ("w_low", 0.0, {}),
            ("d", d, {"unit": "m", **pos}),
            ("r_on", r_on, {"unit": "ohm", **pos}),
            ("r_off", r_off, {"unit": "ohm", **pos}),
            ("mu_v", mu_v, {"unit": "m^2/(V*s)", **pos}),
            ("window", float(WINDOWS.index(window)), {}),
            ("p", p, {"unit": "1", **pos}),
            ("j", j, {"unit": "1", **pos}),
        ])
        if (self._P[3] <= self._P[2]).any():
            raise InputError("r_off: expected > r_on")
        self.window = window
