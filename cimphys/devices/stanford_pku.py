"""Stanford-PKU RRAM model: filament tunnelling gap with field- and heat-driven dynamics.

State ``g`` (m), the tunnelling gap between the filament tip and the electrode, in
``[g_min, g_max]`` ([1]_, [2]_)::

    I     = I0 exp(-g/g0) sinh(V/V0)
    dg/dt = -v0 exp(-Ea/(kT)) sinh(gamma a0/L * qV/(kT)),   gamma = gamma0 - beta (g/g1)^3
    T     = T0 + |V I| R_th                                 (steady-state Joule heating)

``Ea`` is the activation energy of oxygen-vacancy migration, given in volts (energy /
elementary charge, numerically the value in eV).  ``L`` is the oxide thickness.  The temperature
follows the dissipated power instantly (steady-state heating); the minimum field for vacancy
generation (``F_min``) and the random gap variation of [2]_ are not modelled.

References
----------
.. [1] X. Guan, S. Yu, H.-S. P. Wong, "A SPICE compact model of metal oxide resistive switching
   memory with variations", IEEE Electron Device Lett. 33, 1405 (2012).
   doi:10.1109/LED.2012.2210856
.. [2] Z. Jiang, S. Yu, Y. Wu, J. H. Engel, X. Guan, H.-S. P. Wong, "Verilog-A compact model
   for oxide-based resistive random access memory (RRAM)", SISPAD 2014, p. 41.
   doi:10.1109/SISPAD.2014.6931558
"""

from __future__ import annotations

import math

from .._numba import jit
from ..cards import ModelSpec, Parameter, register_model
from ._kernel_math import _exp, _sinh_cosh
from .dynamic_model import DynamicModel, FixedStateCell
from .variability import MEMORY_SECTIONS

__all__ = ["SPEC", "StanfordPKU", "StanfordPKUCell"]

K_B_OVER_Q = 8.617333262e-5  # V/K (CODATA 2018), passed to the kernel as a literal below

SPEC = register_model(
    ModelSpec(
        name="stanford_pku",
        kind="device",
        doc="Stanford-PKU oxide RRAM model (Guan 2012, Jiang 2014)",
        parameters=(
            Parameter("i0", "A", "current prefactor I0", low=0.0, high=1.0, low_open=True),
            Parameter("g0", "m", "gap decay length g0", low=0.0, high=1e-6, low_open=True),
            Parameter("v0", "V", "voltage scale V0", low=0.0, high=100.0, low_open=True),
            Parameter("vel0", "m/s", "gap velocity prefactor v0", low=0.0, low_open=True),
            Parameter("ea", "V", "activation energy / q (numerically in eV)", low=0.0, high=10.0),
            Parameter("a0", "m", "atomic hopping distance", low=0.0, high=1e-6, low_open=True),
            Parameter("t_ox", "m", "oxide thickness L", low=0.0, high=1e-5, low_open=True),
            Parameter("gamma0", "1", "field enhancement factor", low=0.0, high=1e3),
            Parameter("beta", "1", "gap dependence of the field enhancement", low=0.0, high=1e3),
            Parameter("g1", "m", "gap scale of the field enhancement", low=0.0, high=1e-6, low_open=True),
            Parameter("g_min", "m", "smallest gap", low=0.0, high=1e-6),
            Parameter("g_max", "m", "largest gap", low=0.0, high=1e-6, low_open=True),
            Parameter("t0", "K", "ambient temperature", default=298.0, low=0.0, high=2000.0, low_open=True),
            Parameter("r_th", "K/W", "effective thermal resistance", default=2.1e3, low=0.0, high=1e9),
        ),
        sections=MEMORY_SECTIONS,
        checks=((lambda p: p["g_max"] > p["g_min"], "expected g_max > g_min"),),
    )
)

# Rows: 0 g_min, 1 g_max, 2 i0, 3 g0, 4 v0, 5 vel0, 6 ea, 7 a0, 8 t_ox, 9 gamma0, 10 beta,
# 11 g1, 12 t0, 13 r_th


@jit(inline="always")
def _pku_iv(v, x, P, k):
    e = P[2, k] * math.exp(-x / P[3, k])
    v0 = P[4, k]
    z = v / v0
    if abs(z) < 0.5:
        # sinh and cosh from one expm1, without cancellation at small |z|:
        # sinh z = m (m + 2) / (2 (m + 1)), cosh z = 1 + m^2 / (2 (m + 1)), m = e^z - 1
        m = math.expm1(z)
        half = 0.5 / (m + 1.0)
        return e * m * (m + 2.0) * half, e * (1.0 + m * m * half) / v0
    # beyond, from exp(|z|): m + 1 above would lose digits as e^z -> 0 (1e-13 at z = -8)
    a = math.exp(abs(z))
    return e * math.copysign(0.5 * (a - 1.0 / a), z), e * 0.5 * (a + 1.0 / a) / v0


@jit(inline="always")
def _pku_iv_vec(v, x, i0, g0, v0):
    """As :func:`_pku_iv` in plain arithmetic (see _kernel_math) of scalar parameters, for
    loops that vectorise (no load from the parameter table inside the loop).

    Used only by the flat I-V kernel: the polynomial exp costs compile time wherever it is
    inlined, so the scalar paths (and the integrator) keep libm.
    """
    e = i0 * _exp(-x / g0)
    s, c = _sinh_cosh(v / v0)
    return e * s, e * c / v0


@jit(inline="always")
def _pku_rate(v, x, P, k):
    i, _ = _pku_iv(v, x, P, k)
    temp = P[12, k] + abs(v * i) * P[13, k]
    kt_q = 8.617333262e-5 * temp
    r = x / P[11, k]
    gamma = P[9, k] - P[10, k] * r * r * r
    return -P[5, k] * math.exp(-P[6, k] / kt_q) * math.sinh(gamma * P[7, k] / P[8, k] * v / kt_q)


class StanfordPKU(DynamicModel):
    """Stanford-PKU RRAM model; parameters as in :data:`SPEC` (per-cell arrays allowed).

    ``read_cell(gap)`` gives a :class:`StanfordPKUCell` for crossbar solves.
    """

    model_id = 4
    spec = SPEC
    state_name = "gap"
    state_unit = "m"
    state_long_name = "tunnelling gap"

    def __init__(self, *, i0, g0, v0, vel0, ea, a0, t_ox, gamma0, beta, g1, g_min, g_max,
                 t0=298.0, r_th=2.1e3):
        pos = {"low": 0.0, "low_open": True}
        nonneg = {"low": 0.0}
        self._pack([
            ("g_min", g_min, {"unit": "m", **nonneg}),
            ("g_max", g_max, {"unit": "m", **pos}),
            ("i0", i0, {"unit": "A", **pos}),
            ("g0", g0, {"unit": "m", **pos}),
            ("v0", v0, {"unit": "V", **pos}),
            ("vel0", vel0, {"unit": "m/s", **pos}),
            ("ea", ea, {"unit": "V", **nonneg}),
            ("a0", a0, {"unit": "m", **pos}),
            ("t_ox", t_ox, {"unit": "m", **pos}),
            ("gamma0", gamma0, {"unit": "1", **nonneg}),
            ("beta", beta, {"unit": "1", **nonneg}),
            ("g1", g1, {"unit": "m", **pos}),
            ("t0", t0, {"unit": "K", **pos}),
            ("r_th", r_th, {"unit": "K/W", **nonneg}),
        ])

    def read_cell(self, state) -> StanfordPKUCell:
        return StanfordPKUCell(self, state)


class StanfordPKUCell(FixedStateCell):
    """Read path of the Stanford-PKU model at a fixed gap: ``I = I0 exp(-g/g0) sinh(V/V0)``.

    A :class:`~cimphys.devices.cell.TwoTerminalCell`, so a crossbar solver can use it as its
    cell; ``gap`` (m) may be an ``(M, N)`` array of per-cell gaps.
    """
