"""Stanford-PKU RRAM model: filament tunnelling gap with field- and heat-driven dynamics.

The equations of the Stanford RRAM Verilog-A release v1.0.0 ([2]_, [3]_; read in its source
``rram_v_1_0_0.va``), on the tunnelling gap between the filament tip and the electrode::

    g     = clip(w, g_min, g_max)                           (the gap the physics sees)
    dw/dt = -v0 exp(-Ea/(kT)) sinh(gamma a0/L * qV/(kT))    (w: the integrated gap, the state)
    gamma = gamma0 - beta (g/g1)^3,  gamma0 -> gamma_reset for V < 0
    gamma = 0 where gamma |V| / L < F_min                   (no motion below the minimum field)
    T     = T0 + |V I| R_th                                 (steady-state Joule heating)
    I     = I0 exp(-g/g0) sinh(V/V0)

As in the release, the *integral* ``w`` (``gap = idt(gap_ddt, gap_ini)`` there) is not
bounded; only the gap used in the current and in ``gamma`` is clipped to ``[g_min, g_max]``.
So an integrated gap may start beyond ``g_max`` (the release's own HRS decks start at 1.9 nm
with ``gap_max`` 1.7 nm: nothing happens until ``w`` is back below 1.7 nm), and overrun
``g_min`` during a SET.  The one departure: the integral is held in ``[0, L]`` (the oxide; the
state bounds of the integrators), where the release lets it run on without limit (hundreds of nm
in its 100 ns SET pulse; microns in its DC RESET sweep), after which its next opposite
operation waits until the integral has come back.  Here it waits at most the time to cross
``L``.  The release hard-codes ``gamma_ini = 16`` for ``V < 0`` whatever ``gamma0`` is: that is
``gamma_reset`` (16 by default).

``Ea`` is the activation energy of oxygen-vacancy migration, given in volts (energy /
elementary charge, numerically the value in eV).  ``L`` is the oxide thickness ``t_ox``.  The
temperature follows the dissipated power instantly, as in v1.0.0 (which has no thermal time
constant).  The release's dynamic variation of the gap (its ``model_switch = 1``) is :func:`simulate_release`.

The card :file:`devices/guan2012_stanford_pku.toml` holds the release's defaults; with them the
model reproduces the release's own benchmark checklist (sample_input_and_output.pdf of the
release's benchmark folder, tables 1 and 2: a DC RESET sweep and a 1.8 V SET pulse run in
HSPICE), see ``tests/unit/devices/test_stanford_release.py``.

References
----------
.. [1] X. Guan, S. Yu, H.-S. P. Wong, "A SPICE compact model of metal oxide resistive switching
   memory with variations", IEEE Electron Device Lett. 33, 1405 (2012).
   doi:10.1109/LED.2012.2210856
.. [2] Z. Jiang, S. Yu, Y. Wu, J. H. Engel, X. Guan, H.-S. P. Wong, "Verilog-A compact model
   for oxide-based resistive random access memory (RRAM)", SISPAD 2014, p. 41.
   doi:10.1109/SISPAD.2014.6931558
.. [3] Z. Jiang, H.-S. P. Wong, "Stanford University Resistive-Switching Random Access Memory
   (RRAM) Verilog-A Model" v1.0.0, nanoHUB (2014), doi:10.4231/D37H1DN48 (the Verilog-A, its
   quick user guide and its HSPICE benchmark decks with their sample outputs).
"""

from __future__ import annotations

import numpy as np

from ..cards import ModelSpec, Parameter, register_model
from ..errors import InputError
from .laws.stanford_pku import release_steps
from .dynamic_model import DynamicModel, FixedStateCell
from .variability import MEMORY_SECTIONS

__all__ = ["SPEC", "StanfordPKU", "StanfordPKUCell", "simulate_release"]

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
            Parameter("f_min", "V/m", "minimum field gamma |V| / t_ox for gap motion", default=1.4e9, low=0.0,
                      high=1e11),
            Parameter("gamma_reset", "1", "gamma0 used at V < 0 (the release's literal 16)", default=16.0, low=0.0,
                      high=1e3),
            Parameter("delta_gap0", "m/s", "amplitude of the random gap velocity (dynamic mode)", default=0.02,
                      low=0.0, high=1e3),
            Parameter("t_crit", "K", "temperature of significant random variation", default=450.0, low=0.0,
                      high=2000.0, low_open=True),
            Parameter("t_smth", "K", "smoothing temperature of the variation", default=500.0, low=0.0,
                      high=2000.0, low_open=True),
            Parameter("f_min_width", "1", "relative width of a smoothed F_min step (0: the release's)",
                      default=0.0, low=0.0, high=1.0),
        ),
        sections=MEMORY_SECTIONS,
        checks=((lambda p: p["g_max"] > p["g_min"], "expected g_max > g_min"),),
    )
)

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
                 t0=298.0, r_th=2.1e3, f_min=1.4e9, gamma_reset=16.0, delta_gap0=0.02, t_crit=450.0,
                 t_smth=500.0, f_min_width=0.0):
        pos = {"low": 0.0, "low_open": True}
        nonneg = {"low": 0.0}
        t_ox_arr = np.asarray(t_ox, dtype=float)
        self._pack([
            ("w_min", np.zeros_like(t_ox_arr), {"unit": "m", **nonneg}),
            ("w_max", t_ox_arr, {"unit": "m", **pos}),
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
            ("g_min", g_min, {"unit": "m", **nonneg}),
            ("g_max", g_max, {"unit": "m", **pos}),
            ("f_min", f_min, {"unit": "V/m", **nonneg}),
            ("gamma_reset", gamma_reset, {"unit": "1", **nonneg}),
            ("delta_gap0", delta_gap0, {"unit": "m/s", **nonneg}),
            ("t_crit", t_crit, {"unit": "K", **pos}),
            ("t_smth", t_smth, {"unit": "K", **pos}),
            ("f_min_width", f_min_width, {"unit": "1", "low": 0.0, "high": 1.0}),
        ])
        P = self._P
        if np.any(P[15] <= P[14]) or np.any(P[15] > P[1]):
            raise InputError(f"g_min, g_max: expected 0 <= g_min < g_max <= t_ox, got {g_min!r}, {g_max!r}, t_ox {t_ox!r}")

    def read_cell(self, state) -> StanfordPKUCell:
        return StanfordPKUCell(self, state)


class StanfordPKUCell(FixedStateCell):
    """Read path of the Stanford-PKU model at a fixed gap: ``I = I0 exp(-g/g0) sinh(V/V0)``.

    A :class:`~cimphys.devices.cell.TwoTerminalCell`, so a crossbar solver can use it as its
    cell; ``gap`` (m) may be an ``(M, N)`` array of per-cell gaps.
    """


def simulate_release(model: StanfordPKU, waveform, gap0, *, rng, time_step: float = 1e-9, dynamic: bool = True):
    """The release's dynamic mode (``model_switch = 1``): the gap with its random velocity.

    The release adds ``N(0, 1) deltaGap0 / (1 + exp((T_crit - T)/T_smth))`` to the gap velocity,
    a fresh normal draw at every time point, with the time step bounded by ``time_step``
    (``$bound_step``).  Here: forward Euler on the grid ``t0, t0 + time_step, ...`` of the
    waveform's span, one seeded draw per step and cell (so the spread of the gap after a time
    ``t`` scales as ``time_step^(1/2)``, as in the release, whose variation is tied to its step).

    Parameters
    ----------
    model : StanfordPKU
        Scalar parameters (one set for every cell).
    waveform : cimphys.devices.waveforms.Waveform
        The voltage across every cell.
    gap0 : float or array_like, m
        Initial integrated gaps, one per cell (the release's ``gap_ini``).
    rng : numpy.random.Generator or int
        The random draws (a seed gives the same gaps on any machine).
    time_step : float, s
        The step (the release's ``time_step`` parameter, 1 ns by default).
    dynamic : bool
        False: the standard mode (no variation), the same Euler steps.

    Returns
    -------
    xarray.Dataset
        ``voltage (time)`` V, ``state (time, cell)`` m (integrated gap) and ``current (time,
        cell)`` A on the step grid (the initial point included).
    """
    import xarray as xr

    from ..checks import as_array, as_scalar
    from ..results import variable

    if model.packed.shape[1] != 1:
        raise InputError("model: simulate_release takes one parameter set for every cell (scalar parameters)")
    dt = as_scalar("time_step", time_step, unit="s", low=1e-15, high=1.0)
    w = np.array(as_array("gap0", gap0, unit="m", ndim=(0, 1)), dtype=float).reshape(-1)
    model._check_state(w)
    t_knots = waveform.knots_t if waveform.kind == "pwl" else waveform.t
    n_steps = int(np.ceil((t_knots[-1] - t_knots[0]) / dt - 1e-9))
    if n_steps > 10_000_000:
        raise InputError(f"time_step: {n_steps} steps over the waveform; expected at most 1e7 (a larger time_step)")
    t = t_knots[0] + dt * np.arange(n_steps + 1)
    v = np.asarray(waveform(t), dtype=float)
    gen = np.random.default_rng(rng)
    normals = gen.standard_normal((n_steps, w.size)) if dynamic else np.zeros((n_steps, w.size))
    gaps = np.empty((n_steps + 1, w.size))
    gaps[0] = w
    release_steps(v[:-1], normals, w, np.ascontiguousarray(model.packed), dt, gaps[1:])
    current = model.current(np.broadcast_to(v[:, None], gaps.shape), gaps)
    return xr.Dataset(
        {
            "voltage": variable(("time",), v, "V", "cell voltage"),
            "state": variable(("time", "cell"), gaps, "m", "integrated tunnelling gap"),
            "current": variable(("time", "cell"), current, "A", "cell current"),
        },
        coords={"time": variable(("time",), t, "s", "time")},
        attrs={"model": "StanfordPKU", "method": "release dynamic mode, forward Euler", "time_step": dt,
               "dynamic": int(dynamic)},
    )
