"""The cells of a tile as their device card makes them: program, age and read through the device models.

:class:`CellArrayModel` characterises a device card once for a tile's conductance window, read
voltage and read bandwidth (:func:`~cimphys.devices.programming_statistics.device_statistics`:
the PCM card's statistical model, or write-verify Monte-Carlo of a dynamic RRAM model -- the same
object the exports use).  :meth:`CellArrayModel.program` turns target conductances into
:class:`ProgrammedCells`; :meth:`ProgrammedCells.conductance` ages them to a time after
programming; :meth:`CellArrayModel.read_noise` gives the variance coefficients of one read.
Nothing here knows a crossbar: arrays are ``(..., M, N)`` and the tile does the sums.

Programming, per cell, in this order (every draw from the Generator passed in):

1. the device target ``G_T = G_lo + u (G_hi - G_lo)`` for the level ``u = (g - g_min) / (g_max - g_min)``
   of the tile target ``g`` (the linear map of :mod:`~cimphys.devices.programming_statistics`);
2. the programming error: PCM ``G_T + sigma_P(G_T) N`` (:meth:`PCMModel.program`) and a drift
   exponent ``nu`` (:meth:`PCMModel.drift_exponents`); dynamic RRAM: the measured error, pulse
   count and pulse energy of one Monte-Carlo cell drawn from the target's bin (jointly, so their
   correlation is kept: a target far up the window takes more pulses and more energy);
3. ``[variability]`` ``c2c_sigma``: dynamic RRAM has it inside the write-verify (each pulse's state
   change is spread); PCM, whose statistical model has no pulses, takes it as a factor
   ``exp(c2c_sigma N)`` (lognormal) or ``1 + c2c_sigma N`` (normal) on the programmed value;
4. ``d2d_sigma``: a factor of the same form (median-preserving, :func:`~cimphys.devices.variability.vary`);
5. clipping to the device's conductance bounds at the read voltage (and, with ``cycles``, to the
   ``[endurance]`` window after that many switching cycles, which write-verify cannot leave);
6. stuck-at faults at ``p_stuck_on`` / ``p_stuck_off``: the device's high / low conductance bound;
7. ``[retention]`` (when the card has it): one lognormal ``tau`` factor per cell (``tau_sigma``).

The device conductance ``G`` maps back to the tile as ``g = g_min + (G - G_lo)(g_max - g_min) /
(G_hi - G_lo)``; a stuck-on cell of a device whose range exceeds the window maps above ``g_max``
(it conducts what the device conducts), never below 0.

Temperature enters through: the thermal noise of a read (:meth:`CellArrayModel.read_noise`); the
Arrhenius ``tau`` of retention (:meth:`ProgrammedCells.conductance`); at characterisation, the
thermal noise of the verify reads and the ambient ``t0`` of Stanford-PKU's switching kinetics.
Not: the I-V of the cards (none has a temperature term, Stanford-PKU included), PCM drift (the
IBM fits carry none), shot noise and RTN (the card gives no temperature law).

References
----------
V. Joshi et al., Nat. Commun. 11, 2473 (2020), doi:10.1038/s41467-020-16108-9 (PCM programming,
drift, 1/f read noise).  D. Ielmini, Semicond. Sci. Technol. 31, 063002 (2016) (RRAM retention).
M. J. Kirton, M. J. Uren, Adv. Phys. 38, 367 (1989) (RTN: variance ``p (1 - p) dG**2``).
C. D. Motchenbacher, J. A. Connelly, *Low-Noise Electronic System Design*, Wiley (1993), ch. 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..cards import Card, load_device
from ..checks import as_array, as_scalar
from ..errors import InputError
from .noise import BOLTZMANN, ELEMENTARY_CHARGE
from .programming_statistics import PROG_BINS, PROG_PER_BIN, DeviceStatistics, device_statistics
from .retention import RetentionModel
from .variability import STUCK_OFF, STUCK_ON, EnduranceWindow, Variability, stuck_at_faults, vary

__all__ = ["CONDITIONAL_KEYS", "STATISTICS_TIME", "CellArrayModel", "ProgrammedCells"]

#: s: the time after programming that the statistics' export fields (PCM read noise, aihwkit
#: polynomial) are stated at; the tile reads at its own ``time``.
STATISTICS_TIME = 3600.0

#: Card keys (``table.key`` or ``model.key``) whose effect on what this module gives depends on an
#: argument, another key or the window, with the reason.  Every other key of a memory card changes
#: the programmed, aged or read-noise values (tests/unit/devices/test_cell_array.py walks the PCM and
#: Yakopcic cards; the VTEAM, TEAM, Stanford-PKU and HP entries come from the same walk, run once).
_RESET_SIDE = ("negative-polarity (RESET) branch: write-verify programs every cell from the window's low end "
               "with SET pulses that step at most the tolerance, so no RESET pulse is applied; it sets the "
               "v_reset amplitude in describe() and acts on a read only with v_read < 0")
CONDITIONAL_KEYS = {
    "endurance.cycles": "window narrowing after switching cycles: only with from_card(cycles=...)",
    "endurance.g_on": "as endurance.cycles",
    "endurance.g_off": "as endurance.cycles",
    "variability.distribution": "form of the d2d / PCM c2c factor: only when d2d_sigma or c2c_sigma > 0",
    "stanford_pku.t0": "ambient temperature of the switching kinetics: replaced by from_card(temperature=...)",
    "pcm_statistical.g_rel_min": "floor of G_T/G_max in the drift logarithms: acts only when above the level "
                                 "where mu_nu and sigma_nu reach their clips (published set: 1e-7, below it)",
    "pcm_statistical.read_q_floor": "floor of (G/G_max)**exponent in Q_s: acts only while read_q / read_q_floor "
                                    "< read_q_max (published set: 8.8 > 0.2, so the clip at read_q_max decides)",
    "yakopcic.a2": _RESET_SIDE,
    "yakopcic.vn": _RESET_SIDE,
    "yakopcic.an": _RESET_SIDE,
    "yakopcic.xn": _RESET_SIDE,
    "yakopcic.alphan": _RESET_SIDE,
    "yakopcic.xp": "SET-rate decay above state xp: acts only when the programming window reaches xp (the "
                   "Oblea card at 1-10 uS and 0.2 V stays below x = 0.01)",
    "yakopcic.alphap": "as yakopcic.xp",
    "yakopcic.eta": "sign of the state motion (+1 or -1): flips which polarity is SET; a card takes one",
    "vteam.k_off": _RESET_SIDE,
    "vteam.alpha_off": _RESET_SIDE,
    "vteam.v_off": _RESET_SIDE,
    "vteam.a_on": "parameter of the 'kvatinsky' window function: no effect with another window (Pickett: biolek)",
    "vteam.a_off": "as vteam.a_on",
    "vteam.w_c": "as vteam.a_on",
    "team.p": "Biolek window exponent: no effect with another window (Kvatinsky 2013 card: kvatinsky)",
    "linear_ion_drift.p": "window exponent: no effect with window = 'none' (the Strukov 2008 card)",
    "linear_ion_drift.j": "Prodromakis window scale: as linear_ion_drift.p",
}


@dataclasses.dataclass(frozen=True)
class ProgrammedCells:
    """Cells right after programming, and what programming them cost.

    Attributes (arrays of the targets' shape ``(..., M, N)``)
    ----------
    g_target, g : S
        Tile target and the conductance right after programming (``time = 0``).
    faults : int8
        ``1`` stuck on, ``-1`` stuck off, ``0`` healthy.
    nu : 1 or None
        PCM drift exponents (None for RRAM).
    tau_factor : 1 or None
        Per-cell lognormal factor on the retention time (None without ``[retention]``).
    pulses : int or None
        Programming pulses (dynamic RRAM; None for PCM, whose statistical model has no pulses).
    write_energy : J or None
        Energy of the programming pulses (``sum V I width``, from the write-verify Monte-Carlo).
    write_time : s or None
        ``pulses * width + (pulses + 1) * t_verify``: pulses plus a verify read before each and one
        after the last, ``t_verify = 1 / (2 bandwidth)`` the duration of one read.
    """

    cells: CellArrayModel
    g_target: np.ndarray
    g_device: np.ndarray
    faults: np.ndarray
    nu: np.ndarray | None = None
    tau_factor: np.ndarray | None = None
    pulses: np.ndarray | None = None
    write_energy: np.ndarray | None = None
    write_time: np.ndarray | None = None

    @property
    def g(self) -> np.ndarray:
        """Tile conductance right after programming (S)."""
        return self.cells.to_tile(self.g_device)

    def conductance(self, time=0.0, temperature=None) -> np.ndarray:
        """Tile conductance (S) ``time`` seconds after programming, at ``temperature`` (K).

        PCM: drift ``G (t / t0) ** -nu`` (no drift before ``t0``; no global compensation here);
        RRAM with ``[retention]``: ``G_rest + (G - G_rest) exp(-(t / tau(T))**beta)``; otherwise
        the programmed value.  Stuck cells stay stuck.  ``temperature`` (default: the model's)
        changes only retention, and is the temperature of the whole interval (an isothermal bake).
        """
        t = as_scalar("time", time, unit="s", low=0.0)
        temp = self.cells.check_temperature(temperature)
        g = self.g_device
        if self.nu is not None and t > 0.0:
            pcm = self.cells.statistics.model
            g = g * max(t / pcm.t0, 1.0) ** (-self.nu)
        elif self.tau_factor is not None and t > 0.0:
            ret = self.cells.retention
            tau = ret.tau(temp) * self.tau_factor
            g = ret.g_rest + (g - ret.g_rest) * np.exp(-((t / tau) ** ret.beta))
        lo, hi = self.cells.statistics.bounds
        g = np.where(self.faults == STUCK_ON, hi, np.where(self.faults == STUCK_OFF, lo, g))
        return self.cells.to_tile(g)

    def read_noise(self, time=0.0, temperature=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`CellArrayModel.read_noise` of these cells at ``time`` (s) and ``temperature`` (K)."""
        return self.cells.read_noise(self.conductance(time, temperature), temperature=temperature, time=time,
                                     g_programmed=self.g)

    def to_xarray(self, time=None, temperature=None):
        """The cells as a Dataset: dims ``(tile, row, col)`` (``(row, col)`` for one array; more
        leading axes are named ``stack_0``, ...), with units; ``g_t`` at ``time`` (s) if given."""
        import xarray as xr

        from ..results import variable

        lead = self.g.ndim - 2
        dims = (("tile",) if lead == 1 else tuple(f"stack_{k}" for k in range(lead))) + ("row", "col")
        data = {"g_target": variable(dims, self.g_target, "S", "target conductance"),
                "g": variable(dims, self.g, "S", "conductance right after programming"),
                "faults": variable(dims, self.faults, "1", "stuck-at fault (1 on, -1 off, 0 healthy)")}
        extra = (("nu", "1", "PCM drift exponent"), ("pulses", "1", "programming pulses"),
                 ("write_energy", "J", "energy of the programming pulses"),
                 ("write_time", "s", "programming time (pulses and verify reads)"))
        for name, unit, long_name in extra:
            if getattr(self, name) is not None:
                data[name] = variable(dims, getattr(self, name), unit, long_name)
        if time is not None:
            data["g_t"] = variable(dims, self.conductance(time, temperature), "S", f"conductance at t = {time:g} s")
        return xr.Dataset(data, attrs={"device_card": self.cells.card.name, "family": self.cells.statistics.family})


@dataclasses.dataclass(frozen=True)
class CellArrayModel:
    """A device card characterised for a tile's window, read voltage and bandwidth (module doc).

    Build with :meth:`from_card`.  ``statistics`` is the shared
    :class:`~cimphys.devices.programming_statistics.DeviceStatistics`.

    Examples
    --------
    >>> cells = CellArrayModel.from_card("nandakumar2019_pcm", g_min=1e-6, g_max=1e-5, v_read=0.2, bandwidth=5e6)
    >>> prog = cells.program(np.full((2, 3), 5e-6), np.random.default_rng(0))
    >>> prog.conductance(time=3600.0).shape, cells.describe()["family"]
    ((2, 3), 'pcm')
    """

    card: Card
    statistics: DeviceStatistics
    g_min: float
    g_max: float
    v_read: float
    bandwidth: float
    temperature: float
    variability: Variability
    retention: RetentionModel | None = None
    rtn: dict | None = None
    endurance_window: tuple[float, float] | None = None
    cycles: float | None = None
    seed: int = 0

    @classmethod
    def from_card(cls, device_card, *, g_min, g_max, v_read, bandwidth, seed=0, temperature=None,
                  cycles=None, statistics: DeviceStatistics | None = None) -> CellArrayModel:
        """Characterise ``device_card`` (Card or name) once.

        Parameters
        ----------
        g_min, g_max : float, S
            The tile card's conductance window (``0 < g_min < g_max``).
        v_read : float, V
            Read (and verify) voltage (non-zero).
        bandwidth : float, Hz
            Noise bandwidth of one read.
        seed : int
            Seeds the write-verify Monte-Carlo of a dynamic card.
        temperature : float, K, optional
            Default temperature of reads and of programming (verify-read noise, Stanford-PKU
            kinetics).  None: 300 K, and the card's own ambient for Stanford-PKU.
        cycles : float, optional
            Switching cycles the cells have seen: with an ``[endurance]`` table, programmed
            conductances stay inside the window after that many cycles.
        statistics : DeviceStatistics, optional
            The card's statistics for exactly these inputs, computed before (a disk cache:
            :func:`~cimphys.devices.statistics_arrays.statistics_from_arrays`); None: computed here.
        """
        card = device_card if isinstance(device_card, Card) else load_device(device_card)
        g_min = as_scalar("g_min", g_min, unit="S", low=0.0, low_open=True, high=1.0)
        g_max = as_scalar("g_max", g_max, unit="S", low=g_min, low_open=True, high=1.0)
        v_read = as_scalar("v_read", v_read, unit="V", low=-100.0, high=100.0)
        if v_read == 0.0:
            raise InputError("v_read: expected a non-zero read voltage, got 0.0 V")
        bandwidth = as_scalar("bandwidth", bandwidth, unit="Hz", low=0.0, low_open=True)
        if temperature is not None:
            temperature = as_scalar("temperature", temperature, unit="K", low=0.0, low_open=True, high=2000.0)
        seed = int(as_scalar("seed", seed, low=0, high=2**63 - 1))
        stats = statistics if statistics is not None else device_statistics(
            card, g_min=g_min, g_max=g_max, v_read=v_read, bandwidth=bandwidth, t=STATISTICS_TIME, seed=seed,
            temperature=temperature)
        window = None
        endurance = EnduranceWindow.from_card(card)
        if cycles is not None:
            cycles = as_scalar("cycles", cycles, low=1.0, high=1e15)
            if endurance is not None:
                on, off = endurance.window(cycles)
                window = (float(off), float(on))
        rtn = card.sections.get("rtn")
        if stats.family == "pcm" and "retention" in card.sections:
            raise InputError(f"device: card {card.name!r}: a pcm_statistical card's retention law is its drift "
                             f"(nu_* keys); a [retention] table would be a second one, remove it")
        return cls(card, stats, g_min, g_max, v_read, bandwidth, 300.0 if temperature is None else temperature,
                   Variability.from_card(card), RetentionModel.from_section(card),
                   None if rtn is None else dict(rtn), window, cycles, seed)

    # ------------------------------------------------------------------ window maps
    def to_tile(self, g_device) -> np.ndarray:
        """Device conductance (S) -> tile conductance (S), the linear map of the window, floored at 0."""
        lo, hi = self.statistics.window
        return np.maximum(self.g_min + (np.asarray(g_device) - lo) * (self.g_max - self.g_min) / (hi - lo), 0.0)

    def to_device(self, g_tile) -> np.ndarray:
        """Tile conductance (S) -> device conductance (S)."""
        lo, hi = self.statistics.window
        return lo + (np.asarray(g_tile) - self.g_min) * (hi - lo) / (self.g_max - self.g_min)

    def check_temperature(self, temperature) -> float:
        """``temperature`` (K) checked, or the model's default when None."""
        if temperature is None:
            return self.temperature
        return as_scalar("temperature", temperature, unit="K", low=0.0, low_open=True, high=2000.0)

    # ------------------------------------------------------------------ programming
    def program(self, targets, rng) -> ProgrammedCells:
        """Program tile targets (S, ``(..., M, N)`` inside ``[g_min, g_max]``) with ``rng`` (a Generator)."""
        if not isinstance(rng, np.random.Generator):
            raise InputError(f"rng: expected a numpy.random.Generator (seeded), got {type(rng).__name__}")
        g_t = as_array("targets", targets, unit="S", low=self.g_min * (1 - 1e-12), high=self.g_max * (1 + 1e-12))
        if g_t.ndim < 2:
            raise InputError(f"targets: expected an (..., M, N) array, got shape {g_t.shape}")
        level = np.clip((g_t - self.g_min) / (self.g_max - self.g_min), 0.0, 1.0)
        lo, hi = self.statistics.window
        target = lo + level * (hi - lo)
        stats, var = self.statistics, self.variability
        out = {}
        if stats.family == "pcm":
            g = stats.model.program(target, rng)
            out["nu"] = stats.model.drift_exponents(target, rng)
            if var.c2c_sigma > 0:
                g = vary(g, var.c2c_sigma, g.shape, rng, var.distribution)
        else:
            table = stats.table
            row = np.minimum((level * PROG_BINS).astype(np.int64), PROG_BINS - 1)
            pick = rng.integers(0, PROG_PER_BIN, level.shape)
            g = target + table["error"][row, pick] * (hi - lo)
            out["pulses"] = table["pulses"][row, pick]
            out["write_energy"] = table["energy"][row, pick]
            t_verify = 0.5 / self.bandwidth
            out["write_time"] = out["pulses"] * table["width"] + (out["pulses"] + 1) * t_verify
        if var.d2d_sigma > 0:
            g = vary(g, var.d2d_sigma, g.shape, rng, var.distribution)
        g = np.clip(g, *stats.bounds)
        if self.endurance_window is not None:
            g = np.clip(g, *self.endurance_window)
        faults = stuck_at_faults(g.shape, var.p_stuck_on, var.p_stuck_off, rng)
        g = np.where(faults == STUCK_ON, stats.bounds[1], np.where(faults == STUCK_OFF, stats.bounds[0], g))
        if self.retention is not None:
            out["tau_factor"] = np.exp(self.retention.tau_sigma * rng.standard_normal(g.shape))
        return ProgrammedCells(self, g_t, g, faults, **out)

    # ------------------------------------------------------------------ reading
    def read_noise(self, g, *, temperature=None, time=None,
                   g_programmed=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Variance coefficients of the current noise of cells ``g`` (S) on one read of bandwidth ``df``.

        Returns ``thermal`` (A**2, ``4 k T G df``), ``shot`` (A**2/V, ``2 q G df``: times ``|v|``) and
        ``flicker`` (A**2/V**2 = S**2: times ``v**2``), each of ``g``'s shape; a column's variance is
        ``sum_i thermal_ij + |v_i| shot_ij + v_i**2 flicker_ij``.

        ``flicker`` is the PCM card's 1/f read noise ``(sigma_nG(G, t) G)**2`` at ``time`` (s after
        programming; required for PCM: the noise accumulates as ``sqrt(ln((t + t_read) /
        (2 t_read)))``, zero before ``t_read``) mapped into the tile window, plus, with an ``[rtn]``
        table, ``p (1 - p) (a G)**2`` of one two-level trap (``a`` its relative step, ``p =
        tau_high / (tau_low + tau_high)`` the probability of finding it high).  Both are treated as
        one independent Gaussian draw per read: exact in variance; the RTN of a read much shorter
        than the dwell times is a two-point value correlated between reads, which this ignores.
        ``g_programmed`` (S, ``g``'s shape), when given, is where the PCM law's ``Q_s`` is evaluated,
        as :meth:`PCMModel.read` does (the noise of the drifted ``G(t)`` with the amplitude of the
        programmed state); otherwise at ``g``.  :meth:`ProgrammedCells.read_noise` passes it.
        """
        g = as_array("g", g, unit="S", low=0.0)
        temp = self.check_temperature(temperature)
        df = self.bandwidth
        thermal = 4.0 * BOLTZMANN * temp * g * df
        shot = 2.0 * ELEMENTARY_CHARGE * g * df
        flicker = np.zeros_like(g)
        if self.statistics.family == "pcm":
            if time is None:
                raise InputError("time: a PCM card's 1/f read noise grows with the time since programming; "
                                 "give time (s), got None")
            t = as_scalar("time", time, unit="s", low=0.0)
            pcm = self.statistics.model
            g_dev = np.maximum(self.to_device(g), 0.0)
            g_q = g_dev
            if g_programmed is not None:
                g_q = as_array("g_programmed", g_programmed, unit="S", low=0.0, shape=g.shape)
                g_q = np.maximum(self.to_device(g_q), 0.0)
            log_t = max(np.log((t + pcm.t_read) / (2.0 * pcm.t_read)), 0.0)
            scale = (self.g_max - self.g_min) / (self.statistics.window[1] - self.statistics.window[0])
            flicker += (pcm.read_q_s(g_q) * np.sqrt(log_t) * g_dev * scale) ** 2
        elif time is not None:
            as_scalar("time", time, unit="s", low=0.0)
        if self.rtn is not None:
            p = self.rtn["tau_high"] / (self.rtn["tau_low"] + self.rtn["tau_high"])
            flicker += p * (1.0 - p) * (self.rtn["amplitude_rel"] * g) ** 2
        return thermal, shot, flicker

    # ------------------------------------------------------------------ provenance
    def _temperature_dependence(self) -> list[str]:
        found = ["read: thermal noise 4 k T G df"]
        if self.retention is not None:
            found.append("ageing: Arrhenius retention time (activation_energy)")
        if self.statistics.family == "dynamic":
            found.append("programming: thermal noise of the verify reads")
        if self.card.model == "stanford_pku":
            found.append("programming: switching kinetics and Joule heating at ambient t0")
        return found

    def describe(self) -> dict:
        """What a report needs: family, card, sample size, programming spread, pulses, notes."""
        s = self.statistics
        d = {"family": s.family, "card": self.card.name, "model": self.card.model,
             "g_window_tile_s": [self.g_min, self.g_max], "g_window_device_s": list(s.window),
             "g_bounds_device_s": list(s.bounds), "v_read_v": self.v_read, "bandwidth_hz": self.bandwidth,
             "temperature_k": self.temperature, "seed": self.seed,
             "variability": dataclasses.asdict(self.variability),
             "retention": None if self.retention is None else dataclasses.asdict(self.retention),
             "rtn": self.rtn, "cycles": self.cycles, "endurance_window_s": self.endurance_window,
             "temperature_dependence": self._temperature_dependence(),
             "conditional_keys": {k: v for k, v in CONDITIONAL_KEYS.items()
                                  if k.split(".")[0] in (self.card.model, *self.card.sections)}}
        if s.family == "pcm":
            d.update(sample_size=0, sigma_prog_rms_rel=s.params["prog_rms_rel"], mean_pulses=None, n_failed=0,
                     notes="PCM: the card's closed-form statistics (no Monte-Carlo sample); its statistical model "
                           "has no programming pulses, so pulses, write energy and write time are not modelled")
        else:
            t = s.table
            wv = s.params["write_verify"]
            per_pulse = t["energy"].sum(axis=1) / np.maximum(t["pulses"].sum(axis=1), 1)
            d.update(sample_size=int(t["error"].size), sigma_prog_rms_rel=float(np.sqrt(np.mean(t["error"] ** 2))),
                     mean_pulses=wv["mean_pulses"], n_failed=wv["n_failed"], pulse_width_s=t["width"],
                     energy_per_pulse_j=per_pulse.tolist(), mean_write_energy_j=float(t["energy"].mean()),
                     notes=s.notes)
        return d
