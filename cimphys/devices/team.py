"""TEAM and VTEAM: threshold-adaptive memristor models (current- and voltage-controlled).

State ``x`` (m) lies in ``[x_on, x_off]``; the OFF direction increases ``x``.  VTEAM [2]_::

    dx/dt = k_off (v/v_off - 1)^alpha_off f_off(x)    v > v_off > 0
          = 0                                          v_on <= v <= v_off
          = k_on  (v/v_on  - 1)^alpha_on  f_on(x)     v < v_on < 0

with ``k_off > 0`` and ``k_on < 0``.  TEAM [1]_ is the same law driven by the current ``i``
with thresholds ``i_off > 0 > i_on``.  The read path is either linear in ``x``::

    R(x) = R_on + (R_off - R_on) (x - x_on)/(x_off - x_on),      i = v / R(x)

or exponential, ``R(x) = R_on exp(lambda (x - x_on)/(x_off - x_on))`` with
``lambda = ln(R_off/R_on)`` ([1]_, eq. 9).  Windows: ``"none"``; ``"kvatinsky"`` ([1]_, eq. 4),
``f_off = exp(-exp((x - a_off)/w_c))``, ``f_on = exp(-exp(-(x - a_on)/w_c))``; ``"biolek"``
([3]_, in the normalised state ``u = (x - x_on)/(x_off - x_on)``),
``f = 1 - (u - stp(-s))^(2p)`` where ``s`` is the sign of the drive (``stp(-s) = 0`` when
switching OFF so that ``f(u=1) = 0``, ``1`` when switching ON so that ``f(u=0) = 0``).

References
----------
.. [1] S. Kvatinsky, E. G. Friedman, A. Kolodny, U. C. Weiser, "TEAM: ThrEshold Adaptive
   Memristor Model", IEEE Trans. Circuits Syst. I 60, 211 (2013). doi:10.1109/TCSI.2012.2215714
.. [2] S. Kvatinsky, M. Ramadan, E. G. Friedman, A. Kolodny, "VTEAM: A General Model for
   Voltage-Controlled Memristors", IEEE Trans. Circuits Syst. II 62, 786 (2015).
   doi:10.1109/TCSII.2015.2433536
.. [3] Z. Biolek, D. Biolek, V. Biolkova, "SPICE model of memristor with nonlinear dopant
   drift", Radioengineering 18, 210 (2009).
"""

from __future__ import annotations

from ..cards import ModelSpec, Parameter, register_model
from .dynamic_model import DynamicModel
from .variability import MEMORY_SECTIONS

__all__ = ["SPEC_TEAM", "SPEC_VTEAM", "TEAM", "VTEAM"]

IV_KINDS = ("linear", "exponential")
WINDOWS = ("none", "kvatinsky", "biolek")

_COMMON = (
    Parameter("r_on", "ohm", "resistance at x = x_on", low=0.0, low_open=True),
    Parameter("r_off", "ohm", "resistance at x = x_off", low=0.0, low_open=True),
    Parameter("x_on", "m", "state bound of the ON (low-resistance) side", default=0.0, low=0.0, high=1e-6),
    Parameter("x_off", "m", "state bound of the OFF (high-resistance) side", default=3e-9, low=0.0, high=1e-6, low_open=True),
    Parameter("k_on", "m/s", "ON rate constant (negative)", high=0.0, high_open=True),
    Parameter("k_off", "m/s", "OFF rate constant (positive)", low=0.0, low_open=True),
    Parameter("alpha_on", "1", "ON nonlinearity exponent", low=0.0, high=50.0, low_open=True),
    Parameter("alpha_off", "1", "OFF nonlinearity exponent", low=0.0, high=50.0, low_open=True),
    Parameter("iv", "1", "read law: linear or exponential in x", default="linear", kind="str", choices=IV_KINDS),
    Parameter("window", "1", "window function", default="biolek", kind="str", choices=WINDOWS),
    Parameter("a_on", "m", "Kvatinsky window position, ON side", default=0.0, low=-1e-6, high=1e-6),
    Parameter("a_off", "m", "Kvatinsky window position, OFF side", default=3e-9, low=-1e-6, high=1e-6),
    Parameter("w_c", "m", "Kvatinsky window width", default=1e-10, low=0.0, high=1e-6, low_open=True),
    Parameter("p", "1", "Biolek window exponent", default=10.0, low=0.0, high=100.0, low_open=True),
)


def _ordered(params) -> bool:
    return params["x_off"] > params["x_on"] and params["r_off"] > params["r_on"]


SPEC_VTEAM = register_model(
    ModelSpec(
        name="vteam",
        kind="device",
        doc="VTEAM voltage-controlled threshold memristor (Kvatinsky 2015)",
        parameters=(
            *_COMMON,
            Parameter("v_on", "V", "ON threshold voltage (negative)", high=0.0, high_open=True),
            Parameter("v_off", "V", "OFF threshold voltage (positive)", low=0.0, low_open=True),
        ),
        sections=MEMORY_SECTIONS,
        checks=((_ordered, "expected x_off > x_on and r_off > r_on"),),
    )
)

SPEC_TEAM = register_model(
    ModelSpec(
        name="team",
        kind="device",
        doc="TEAM current-controlled threshold memristor (Kvatinsky 2013)",
        parameters=(
            *_COMMON,
            Parameter("i_on", "A", "ON threshold current (negative)", high=0.0, high_open=True),
            Parameter("i_off", "A", "OFF threshold current (positive)", low=0.0, low_open=True),
        ),
        sections=MEMORY_SECTIONS,
        checks=((_ordered, "expected x_off > x_on and r_off > r_on"),),
    )
)

class _TeamBase(DynamicModel):
    state_name = "x"
    state_unit = "m"
    state_long_name = "state variable (undoped / tunnel-gap width)"
    _thr: tuple[str, str, str] = ("", "", "")

    def __init__(self, *, r_on, r_off, k_on, k_off, alpha_on, alpha_off, x_on=0.0, x_off=3e-9,
                 iv="linear", window="biolek", a_on=0.0, a_off=3e-9, w_c=1e-10, p=10.0, **thresholds):
        if iv not in IV_KINDS:
            from ..errors import InputError

            raise InputError(f"iv: expected one of {IV_KINDS}, got {iv!r}")
        if window not in WINDOWS:
            from ..errors import InputError

            raise InputError(f"window: expected one of {WINDOWS}, got {window!r}")
        on_name, off_name, unit = self._thr
        missing = {on_name, off_name} - set(thresholds)
        extra = set(thresholds) - {on_name, off_name}
        if missing or extra:
            raise TypeError(f"{type(self).__name__}: missing {sorted(missing)}, unexpected {sorted(extra)}")
        pos = {"low": 0.0, "low_open": True}
        self._pack([
            ("x_on", x_on, {"unit": "m", "low": 0.0}),
            ("x_off", x_off, {"unit": "m", **pos}),
            ("r_on", r_on, {"unit": "ohm", **pos}),
            ("r_off", r_off, {"unit": "ohm", **pos}),
            ("k_on", k_on, {"unit": "m/s", "high": 0.0, "high_open": True}),
            ("k_off", k_off, {"unit": "m/s", **pos}),
            (on_name, thresholds[on_name], {"unit": unit, "high": 0.0, "high_open": True}),
            (off_name, thresholds[off_name], {"unit": unit, **pos}),
            ("alpha_on", alpha_on, {"unit": "1", **pos}),
            ("alpha_off", alpha_off, {"unit": "1", **pos}),
            ("iv", float(IV_KINDS.index(iv)), {}),
            ("window", float(WINDOWS.index(window)), {}),
            ("a_on", a_on, {"unit": "m"}),
            ("a_off", a_off, {"unit": "m"}),
            ("w_c", w_c, {"unit": "m", **pos}),
            ("p", p, {"unit": "1", **pos}),
        ])
        self.iv = iv
        self.window = window
        if (self._P[3] <= self._P[2]).any():
            from ..errors import InputError

            raise InputError("r_off: expected > r_on")


class VTEAM(_TeamBase):
    """VTEAM voltage-controlled threshold memristor (reference [2] of the module).

    Parameters (SI) are those of :data:`SPEC_VTEAM`; any may be a per-cell array.

    Examples
    --------
    >>> from cimphys.cards import load_device
    >>> m = VTEAM.from_card(load_device("kvatinsky2015_vteam_pickett"))
    >>> float(m.rate(0.1, 1.5e-9))   # below both thresholds: no motion
    0.0
    """

    model_id = 2
    spec = SPEC_VTEAM
    _thr = ("v_on", "v_off", "V")

    @property
    def thresholds(self) -> tuple[float, ...]:
        return (float(self._P[6].max()), float(self._P[7].min()))


class TEAM(_TeamBase):
    """TEAM current-controlled threshold memristor (reference [1] of the module), driven by voltage.

    The drive current is ``i = v / R(x)``; thresholds ``i_on < 0 < i_off`` are in A.
    """

    model_id = 1
    spec = SPEC_TEAM
    _thr = ("i_on", "i_off", "A")
