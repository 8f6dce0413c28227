"""Shichman-Hodges (SPICE level-1) n-channel MOSFET, as ngspice's ``level=1`` model computes it.

The access transistor of a 1T1R cell.  Same parameters and equations as ngspice's MOS1
(``mos1load.c``) at the nominal temperature, with ``LD = 0`` so that ``L_eff = L``::

    beta = KP * W / L
    sarg = sqrt(PHI - v_bs)                          (v_bs <= 0)
         = max(0, sqrt(PHI) - v_bs / (2 sqrt(PHI)))  (v_bs > 0, ngspice's linear continuation)
    V_th = VTO + GAMMA * (sarg - sqrt(PHI))
    v_gst = v_gs - V_th
    I_ds = 0                                                   v_gst <= 0   (cut-off)
         = beta/2 * v_gst**2 * (1 + LAMBDA v_ds)               v_gst <= v_ds (saturation)
         = beta * v_ds (v_gst - v_ds/2) * (1 + LAMBDA v_ds)    otherwise     (linear)

The device is symmetric: when ``v_d < v_s`` source and drain swap roles (the lower terminal is
the source, which also sets the body effect) and the current reverses.  The partial
derivatives returned are exact derivatives of these branches (ngspice's ``gm``, ``gds``,
``gmbs``); the current is continuous everywhere and once differentiable except at the
cut-off boundary, as in SPICE.  The junction diodes and charges of MOS1 are left out (the DC
read path with reverse-biased junctions; ngspice is run with ``IS = 0`` to match).

References
----------
.. [1] H. Shichman, D. A. Hodges, "Modeling and simulation of insulated-gate field-effect
   transistor switching circuits", IEEE J. Solid-State Circuits 3, 285 (1968),
   doi:10.1109/JSSC.1968.1049902.
.. [2] ngspice 39 manual, section 11.2 "MOSFET models (level 1)"; source ``src/spicelib/
   devices/mos1/mos1load.c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cards import ModelSpec, Parameter, register_model
from ..checks import as_array, as_scalar
from ..errors import InputError
from .laws.mosfet import mos1_array

__all__ = ["SPEC", "Level1Mosfet", "MosfetCurrents"]

SPEC = register_model(
    ModelSpec(
        name="level1_nmos",
        kind="device",
        doc="Shichman-Hodges (SPICE level-1) n-channel MOSFET, ngspice MOS1 equations",
        parameters=(
            Parameter("vto", "V", "zero-bias threshold voltage VTO", low=-5.0, high=5.0),
            Parameter("kp", "A/V^2", "transconductance parameter KP", low=0.0, high=1.0, low_open=True),
            Parameter("lambda_", "1/V", "channel-length modulation LAMBDA", default=0.0, low=0.0, high=10.0),
            Parameter("gamma", "V^0.5", "body-effect coefficient GAMMA", default=0.0, low=0.0, high=10.0),
            Parameter("phi", "V", "surface potential PHI", default=0.6, low=0.0, high=2.0, low_open=True),
            Parameter("w", "m", "channel width W", low=0.0, high=1e-3, low_open=True),
            Parameter("l", "m", "channel length L", low=0.0, high=1e-3, low_open=True),
        ),
    )
)


@dataclass(frozen=True)
class MosfetCurrents:
    """Drain current (A, into the drain) and its partial derivatives (S)."""

    i_d: np.ndarray
    di_dvd: np.ndarray
    di_dvg: np.ndarray
    di_dvs: np.ndarray
    di_dvb: np.ndarray


@dataclass(frozen=True)
class Level1Mosfet:
    """An n-channel level-1 MOSFET with ngspice's parameter names.

    Parameters
    ----------
    vto : float, V
        Zero-bias threshold voltage.
    kp : float, A/V^2
        Transconductance parameter (``mu_n C_ox``), > 0.
    lambda_ : float, 1/V
        Channel-length modulation, >= 0.
    gamma : float, V^0.5
        Body-effect coefficient, >= 0.
    phi : float, V
        Surface potential ``2 phi_F``, > 0.
    w, l : float, m
        Channel width and length, > 0.

    Examples
    --------
    >>> m = Level1Mosfet(vto=0.5, kp=2e-4, w=1e-6, l=1e-6)
    >>> float(m.currents(vd=1.0, vg=1.5, vs=0.0).i_d)  # 0.5 * 2e-4 * 1.0**2
    0.0001
    """

    vto: float
    kp: float
    w: float
    l: float  # noqa: E741 - SPICE's name for the channel length
    lambda_: float = 0.0
    gamma: float = 0.0
    phi: float = 0.6

    def __post_init__(self):
        for p in SPEC.parameters:
            kwargs = {"low": p.low, "high": p.high, "low_open": p.low_open, "high_open": p.high_open}
            object.__setattr__(self, p.name, as_scalar(p.name, getattr(self, p.name), unit=p.unit, **kwargs))

    @classmethod
    def from_card(cls, card) -> Level1Mosfet:
        """Build from a ``level1_nmos`` device card."""
        if card.model != SPEC.name:
            raise InputError(f"card: expected a {SPEC.name!r} card, got model {card.model!r}")
        return cls(**{p.name: card[p.name] for p in SPEC.parameters})

    @property
    def beta(self) -> float:
        """``KP * W / L`` in A/V^2."""
        return self.kp * self.w / self.l

    def packed(self) -> np.ndarray:
        """Parameters as the kernels take them: (vto, beta, lambda, gamma, phi)."""
        return np.array([self.vto, self.beta, self.lambda_, self.gamma, self.phi])

    def spice_model(self, name: str = "nacc") -> str:
        """The ngspice ``.model`` line with identical parameters (junction currents off)."""
        return (
            f".model {name} nmos level=1 vto={self.vto!r} kp={self.kp!r} lambda={self.lambda_!r} "
            f"gamma={self.gamma!r} phi={self.phi!r} is=0 js=0"
        )

    def currents(self, vd, vg, vs, vb=0.0) -> MosfetCurrents:
        """Drain current and its partial derivatives at terminal voltages in V (broadcast)."""
        arrays = [as_array(n, v, unit="V") for n, v in (("vd", vd), ("vg", vg), ("vs", vs), ("vb", vb))]
        try:
            shape = np.broadcast_shapes(*(a.shape for a in arrays))
        except ValueError as exc:
            raise InputError(f"vd, vg, vs, vb: shapes do not broadcast: {[a.shape for a in arrays]}") from exc
        flat = [np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1) for a in arrays]
        out = np.empty((5, flat[0].size))
        mos1_array(*flat, self.packed(), out)
        return MosfetCurrents(*(row.reshape(shape) for row in out))
