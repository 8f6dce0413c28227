"""Retention of a programmed conductance in filamentary cells (RRAM, CBRAM): relaxation over time.

The conductance relaxes from its programmed value ``G_0`` towards a rest value ``G_rest`` along
a stretched exponential (Kohlrausch-Williams-Watts), the form used to describe the retention
and relaxation of oxide RRAM states [1]_, [2]_::

    G(t) = G_rest + (G_0 - G_rest) exp(-(t / tau(T)) ** beta),     0 < beta <= 1

with an Arrhenius-activated time constant::

    tau(T) = tau_ref exp(E_a / k_B (1/T - 1/T_ref)).

Device-to-device spread of ``tau`` is lognormal (``tau_sigma``, log standard deviation).
PCM drift is a different law (a power law in time) and lives in :mod:`cimphys.devices.pcm`.
A memory card may carry the same parameters as a ``[retention]`` table
(:data:`cimphys.devices.variability.RETENTION_SECTION`; :meth:`RetentionModel.from_section`), which
the cell array (:mod:`cimphys.devices.cell_array`) applies to programmed cells; :func:`fit_retention`
gives the parameters and their intervals from a measured curve.

References
----------
.. [1] D. Ielmini, "Resistive switching memories based on metal oxides: mechanisms, reliability
   and scaling", Semicond. Sci. Technol. 31, 063002 (2016), doi:10.1088/0268-1242/31/6/063002.
.. [2] G. Williams, D. C. Watts, "Non-symmetrical dielectric relaxation behaviour arising from
   a simple empirical decay function", Trans. Faraday Soc. 66, 80 (1970), doi:10.1039/TF9706600080.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..cards import Card, ModelSpec, register_model
from ..checks import as_array, as_scalar
from ..errors import InputError
from ..results import variable
from .noise import BOLTZMANN
from .variability import RETENTION_SECTION, as_generator

__all__ = ["SPEC", "RetentionModel", "fit_retention"]

SPEC = register_model(
    ModelSpec(
        name="retention_kww",
        kind="device",
        doc="Stretched-exponential conductance relaxation with Arrhenius time constant",
        parameters=RETENTION_SECTION,  # a memory card's [retention] table has the same keys
    )
)


@dataclass(frozen=True)
class RetentionModel:
    """Stretched-exponential retention (module docstring); parameters as in :data:`SPEC`.

    Examples
    --------
    >>> m = RetentionModel(g_rest=1e-6, tau_ref=1e4, beta=1.0)
    >>> round(float(m.conductance(11e-6, 1e4)) * 1e6, 6)   # 1 + 10/e uS
    4.678794
    """

    g_rest: float
    tau_ref: float
    beta: float = 1.0
    activation_energy: float = 0.0
    temperature_ref: float = 300.0
    tau_sigma: float = 0.0

    def __post_init__(self):
        for p in SPEC.parameters:
            try:
                p.check(getattr(self, p.name))
            except ValueError as exc:
                raise InputError(f"{p.name}: got {getattr(self, p.name)!r}, expected {exc}") from None

    @classmethod
    def from_card(cls, card: Card) -> RetentionModel:
        if card.model != SPEC.name:
            raise InputError(f"card: expected a {SPEC.name!r} card, got model {card.model!r} ({card.name})")
        return cls(**dict(card.parameters))

    @classmethod
    def from_section(cls, card: Card) -> RetentionModel | None:
        """The ``[retention]`` table of a memory card, or None when it has none."""
        table = card.sections.get("retention")
        return None if table is None else cls(**dict(table))

    def tau(self, temperature=None) -> np.ndarray:
        """Relaxation time (s) at ``temperature`` (K; default ``temperature_ref``)."""
        temp = self.temperature_ref if temperature is None else temperature
        temp = as_array("temperature", temp, unit="K", low=0.0, high=2000.0, low_open=True)
        exponent = self.activation_energy / BOLTZMANN * (1.0 / temp - 1.0 / self.temperature_ref)
        if np.any(exponent > 700.0):
            raise InputError(f"temperature: {temp.min()!r} K makes tau overflow (exp({exponent.max():.0f}))")
        return self.tau_ref * np.exp(exponent)

    def remaining_fraction(self, t, temperature=None) -> np.ndarray:
        """``(G(t) - G_rest) / (G_0 - G_rest) = exp(-(t/tau)**beta)`` at times ``t`` (s)."""
        t = as_array("t", t, unit="s", low=0.0)
        return np.exp(-((t / self.tau(temperature)) ** self.beta))

    def time_to_fraction(self, fraction, temperature=None) -> np.ndarray:
        """Time (s) at which ``fraction`` (in (0, 1)) of the programmed window remains."""
        f = as_array("fraction", fraction, low=0.0, high=1.0, low_open=True, high_open=True)
        return self.tau(temperature) * (-np.log(f)) ** (1.0 / self.beta)

    def conductance(self, g0, t, temperature=None) -> np.ndarray:
        """Noise-free ``G(t)`` (S), shape ``t.shape + g0.shape``, for programmed ``g0`` (S)."""
        g0 = as_array("g0", g0, unit="S", low=0.0, ndim=(0, 1))
        t = as_array("t", t, unit="s", low=0.0, ndim=(0, 1))
        frac = self.remaining_fraction(t, temperature).reshape(t.shape + (1,) * g0.ndim)
        return self.g_rest + (g0 - self.g_rest) * frac

    def simulate(self, g0, times, seed, temperature=None) -> xr.Dataset:
        """Retention of cells programmed to ``g0`` (S, 1-D), each with its own lognormal ``tau``.

        Returns ``g`` (S) on dims ``(time, cell)`` and ``tau`` (s) on ``cell``.
        """
        g0 = as_array("g0", g0, unit="S", low=0.0, ndim=1)
        times = as_array("times", times, unit="s", low=0.0, ndim=1)
        tau = self.tau(temperature) * np.exp(self.tau_sigma * as_generator(seed).standard_normal(g0.size))
        frac = np.exp(-((times[:, None] / tau[None, :]) ** self.beta))
        return xr.Dataset(
            {
                "g": variable(("time", "cell"), self.g_rest + (g0 - self.g_rest) * frac, "S", "conductance"),
                "tau": variable("cell", tau, "s", "relaxation time of each cell"),
                "g0": variable("cell", g0, "S", "programmed conductance"),
            },
            coords={"time": variable("time", times, "s", "time since programming")},
            attrs={"model": SPEC.name},
        )


def fit_retention(t, g, g0: float, *, temperature_ref: float = 300.0, scale=None):
    """Fit ``g_rest``, ``tau_ref`` and ``beta`` to one retention curve ``g(t)`` (S) from ``g0`` (S).

    Returns ``(model, FitResult)``; ``tau_ref`` is fitted in log space.  ``t`` (s) should span
    the relaxation (the fit is ill-conditioned when the data see only its start or end).
    """
    from .calibration import fit

    t = as_array("t", t, unit="s", low=0.0, ndim=1)
    g = as_array("g", g, unit="S", low=0.0, shape=t.shape)
    g0 = as_scalar("g0", g0, unit="S", low=0.0)
    t_pos = t[t > 0]
    if t_pos.size < 3:
        raise InputError("t: expected at least 3 positive times")
    span = (t_pos.min() * 1e-3, t_pos.max() * 1e3)
    p0 = [float(np.clip(g[-1], 0.0, None)), math.sqrt(t_pos.min() * t_pos.max()), 0.7]

    def forward(p, tt):
        return RetentionModel(g_rest=p["g_rest"], tau_ref=p["tau_ref"], beta=p["beta"]).conductance(g0, tt)

    g_hi = max(float(g.max()), g0) * 2.0 + 1e-30
    res = fit(forward, t, g, ["g_rest", "tau_ref", "beta"], p0, ([0.0, span[0], 0.05], [g_hi, span[1], 1.0]),
              log=["tau_ref"], scale=scale)
    model = RetentionModel(temperature_ref=temperature_ref, **res.values)
    return model, res
