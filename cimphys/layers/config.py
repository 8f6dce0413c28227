"""The numbers the layer adapter needs from a circuit card, in one frozen dataclass.

:class:`CimConfig` gathers the array geometry and wire resistance, the conductance window,
the read voltage and time, converter resolutions, the energy and time figures of DACs, sense
amplifiers, ADCs and the digital periphery, and the write/endurance figures used when dynamic
products are written into arrays.  :meth:`CimConfig.from_card` reads a circuit card (the
periphery helper's tile cards in ``circuits/``); ``with_(...)`` returns a changed copy.

Defaults are an ISAAC-like tile (Shafiee et al., ISCA 2016, doi:10.1109/ISCA.2016.12: 128×128
arrays, 1-bit DACs, 8-bit ADC at 1.28 GS/s and 2 mW, i.e. 1.6 pJ per conversion, 100 ns
read cycle) with conductances 1-100 uS and 0.2 V reads (assumed, typical of HfOx RRAM), and
digital costs from M. Horowitz, "Computing's energy problem", ISSCC 2014,
doi:10.1109/ISSCC.2014.6757323 (45 nm: 32-bit integer add 0.1 pJ, fp32 add 0.9 pJ, fp32 multiply
3.7 pJ, so an fp32 multiply-add 4.6 pJ).
Write figures: 1 pJ and 100 ns per cell SET/RESET, endurance 1e6 cycles (assumed, typical HfOx
RRAM, Wong et al., Proc. IEEE 100, 1951 (2012), doi:10.1109/JPROC.2012.2190369).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import InputError
from .mapping import Mapping

__all__ = ["DEFAULT_CARD", "CimConfig", "default_card"]

PROGRAMMING = ("ideal", "gaussian", "pcm", "write_verify")


@dataclass(frozen=True)
class CimConfig:
    """Physical and cost parameters of the tiles a model runs on (SI units)."""

    mapping: Mapping = field(default_factory=Mapping)
    g_min: float = 1e-6            # S, lowest programmable conductance
    g_max: float = 100e-6          # S, highest programmable conductance
    v_read: float = 0.2            # V, read voltage of the top DAC code
    t_read: float = 100e-9         # s, one array read (drive + settle + sense)
    r_wl: float = 0.0              # ohm, word-line segment between adjacent cells
    r_bl: float = 0.0              # ohm, bit-line segment between adjacent cells
    r_driver: float = 0.0          # ohm, DAC/driver output resistance
    r_sense: float = 0.0           # ohm, sense-amplifier input resistance (virtual ground)
    adc_bits: int = 8
    adc_energy: float = 1.6e-12    # J per conversion
    adc_time: float = 0.78e-9      # s per conversion
    adcs_per_tile: int = 1         # columns share ADCs through a multiplexer
    dac_energy: float = 0.05e-12   # J per word-line drive per read
    sense_energy: float = 0.1e-12  # J per column per read
    sense_noise: float = 0.0       # A rms, input-referred current noise per read
    digital_add_energy: float = 0.1e-12   # J per shift-add accumulation
    digital_mac_energy: float = 4.6e-12   # J per fp32 multiply-add (ops kept digital)
    digital_mac_time: float = 1e-12       # s per MAC (1 TMAC/s digital unit)
    fp_add_energy: float = 0.9e-12  # J per fp32 add (softmax, LayerNorm, GELU: always digital)
    fp_mul_energy: float = 3.7e-12  # J per fp32 multiply
    write_energy: float = 1e-12    # J per cell write
    write_time: float = 100e-9     # s per row written (row-parallel programming)
    endurance: float = 1e6         # write cycles a cell survives
    programming: str = "ideal"     # ideal | gaussian | pcm | write_verify
    programming_sigma: float = 0.0  # relative to g_max - g_min (gaussian)
    device_card: str = ""          # device card for pcm / write_verify programming
    drift_time: float = 0.0        # s after programming (pcm, write_verify), 0: no drift
    write_tolerance: float = 0.0   # S, write-verify acceptance (0: half a level step)
    cell_nonlinearity: float = 0.0  # 1/V, a of I = k sinh(a V) cells (0: linear cells)
    adc_calibration: str = "max"   # "max" or "p99.9" (percentile of |I| over the calibration reads)
    column_gain_calibration: bool = True  # divide out each column's measured gain (IR drop, drift)
    card_name: str = "default (ISAAC-like, built in)"

    def __post_init__(self):
        positive = ("g_max", "v_read", "t_read", "adc_time")
        nonneg = ("g_min", "r_wl", "r_bl", "r_driver", "r_sense", "adc_energy", "dac_energy", "sense_energy",
                  "sense_noise", "digital_add_energy", "digital_mac_energy", "digital_mac_time", "fp_add_energy",
                  "fp_mul_energy", "write_energy", "write_time", "programming_sigma", "drift_time", "write_tolerance",
                  "cell_nonlinearity")
        for name in positive + nonneg:
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > 0 if name in positive else value >= 0)
            if not ok:
                raise InputError(f"{name}: expected a finite {'positive' if name in positive else 'non-negative'} number, got {value!r}")
        if not self.g_min < self.g_max:
            raise InputError(f"g_min: expected below g_max = {self.g_max:g} S, got {self.g_min:g} S")
        if isinstance(self.adc_bits, bool) or not isinstance(self.adc_bits, int) or not 2 <= self.adc_bits <= 24:
            raise InputError(f"adc_bits: expected an integer in [2, 24], got {self.adc_bits!r}")
        if not isinstance(self.adcs_per_tile, int) or self.adcs_per_tile < 1:
            raise InputError(f"adcs_per_tile: expected a positive integer, got {self.adcs_per_tile!r}")
        if not (isinstance(self.endurance, (int, float)) and self.endurance >= 1):
            raise InputError(f"endurance: expected >= 1 cycles, got {self.endurance!r}")
        if self.programming not in PROGRAMMING:
            raise InputError(f"programming: expected one of {PROGRAMMING}, got {self.programming!r}")
        if self.adc_calibration != "max" and not self.adc_calibration.startswith("p"):
            raise InputError(f"adc_calibration: expected 'max' or 'pNN.N', got {self.adc_calibration!r}")

    @property
    def delta_g(self) -> float:
        """Conductance step between adjacent levels of a cell, S."""
        return (self.g_max - self.g_min) / (2**self.mapping.cell_bits - 1)

    @property
    def v_lsb(self) -> float:
        """Voltage of one DAC step, V."""
        return self.v_read / (2**self.mapping.dac_bits - 1)

    def tile_identity(self) -> tuple:
        """The fields that decide programmed conductances and transfer matrices (cache key)."""
        m = self.mapping
        return (m.rows, m.cols, m.cell_bits, m.n_slices, m.sign, self.g_min, self.g_max, self.r_wl, self.r_bl,
                self.r_driver, self.r_sense, self.programming, self.programming_sigma, self.device_card,
                self.drift_time, self.write_tolerance, self.cell_nonlinearity)

    def range_identity(self) -> tuple:
        """The fields that decide calibrated ADC ranges (not the ADC resolution or any cost)."""
        m = self.mapping
        return self.tile_identity() + (m.input_bits, m.dac_bits, self.v_read, self.adc_calibration)

    @property
    def has_wires(self) -> bool:
        return any(r > 0 for r in (self.r_wl, self.r_bl, self.r_driver, self.r_sense))

    def with_(self, **changes) -> CimConfig:
        """A copy with fields changed; mapping fields (rows, cell_bits, ...) may be given directly."""
        names = {f.name for f in dataclasses.fields(Mapping)}
        mapping_changes = {k: changes.pop(k) for k in list(changes) if k in names}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"config: unknown fields {sorted(unknown)}")
        if mapping_changes:
            changes["mapping"] = dataclasses.replace(self.mapping, **mapping_changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_card(cls, card, **overrides) -> CimConfig:
        """Read a ``tile`` circuit card (:mod:`cimphys.circuits.tile`), name, path or Card.

        Taken from the card: array size, conductance window, read voltage and time, wire
        resistance per cell (``r_wl = r_bl``), driver resistance, the sense amplifier's input
        resistance as ``r_sense`` (TIA: ``R_f / (1 + A)``, via the periphery's own model), DAC
        resolution and energy, ADC resolution, energy and conversion time (the periphery's
        :class:`~cimphys.circuits.adc.ADC`), columns per ADC, shift-add energy, sense power × read
        time, and the sign scheme (``differential = true``: G+/G- pairs, else an offset
        reference column, as ISAAC).  ``input_bits`` of the card is *not* used: transformer
        activations are quantised to 8 bits unless ``input_bits`` is overridden.
        """
        from ..cards import Card, load_circuit
        from ..circuits.adc import ADC, ADC_PARAMETERS
        from ..circuits.dac import DAC_PARAMETERS
        from ..circuits.energy import ENERGY_PARAMETERS
        from ..circuits.sense import SENSE_PARAMETERS, sense_from_parameters

        if not isinstance(card, Card):
            card = load_circuit(card)
        if card.model != "tile":
            raise InputError(f"card: {card.name} is a {card.model!r} card; the layer adapter needs a 'tile' card")
        p = card.parameters

        def section(name, declared):
            values = {q.name: q.default for q in declared}
            values.update(card.sections.get(name, {}))
            return values

        dac, sense_p, adc_p, energy = (section("dac", DAC_PARAMETERS), section("sense", SENSE_PARAMETERS),
                                       section("adc", ADC_PARAMETERS), section("energy", ENERGY_PARAMETERS))
        adc = ADC.from_parameters(adc_p)
        sense = sense_from_parameters(sense_p, int(p["cols"]))
        _warn_ignored(card, p, dac, sense_p, adc_p, sense)
        cols_per_adc = int(energy["cols_per_adc"])
        values = {
            "rows": int(p["rows"]), "cols": int(p["cols"]), "dac_bits": int(dac["bits"]),
            "sign": "differential" if p["differential"] else "offset",
            "g_min": float(p["g_min_s"]), "g_max": float(p["g_max_s"]), "v_read": float(p["v_read_v"]),
            "t_read": float(p["t_read_s"]), "r_wl": float(p["r_wire_per_cell_ohm"]),
            "r_bl": float(p["r_wire_per_cell_ohm"]), "r_driver": float(p["r_driver_ohm"]),
            "r_sense": float(sense.r_sense), "adc_bits": int(adc_p["bits"]),
            "adc_energy": float(adc.energy_per_conversion()), "adc_time": float(adc.conversion_time),
            "adcs_per_tile": max(1, int(p["cols"]) // cols_per_adc),
            "dac_energy": float(dac["energy_per_conversion_j"]),
            "sense_energy": float(sense_p["power_w"]) * float(p["t_read_s"]),
            "sense_noise": float(sense_p["noise_v_rms"]) / float(getattr(sense, "transimpedance", 1.0) or 1.0),
            "digital_add_energy": float(energy["e_shift_add_j"]) or cls.digital_add_energy,
            "card_name": card.name,
        }
        return cls().with_(**values).with_(**overrides)


#: Card values the layer adapter's fused periphery does not model (it has ideal DACs, ideal
#: uniform ADCs over calibrated ranges, and a sense amplifier with input-referred noise only).
IGNORED_PERIPHERY = {
    "dac": ("mismatch_sigma", "tau_s"),
    "sense": ("offset_sigma_v",),
    "adc": ("offset_sigma_lsb", "cap_mismatch_sigma", "comparator_noise_lsb", "noise_lsb", "gain_error", "offset_lsb",
            "ramp_rc_s"),
}


def _warn_ignored(card, p, dac, sense_p, adc_p, sense) -> None:
    """Warn about the card's periphery non-idealities that the adapter would silently drop.

    Also warns when a column at full current (every cell at ``g_max``, every input at
    ``v_read``) would drive the sense amplifier past its output swing: the adapter does not
    saturate (:class:`cimphys.circuits.tile.Tile` does).
    """
    import warnings

    from ..errors import CimphysWarning

    values = {"dac": dac, "sense": sense_p, "adc": adc_p}
    ignored = [f"[{sec}] {name} = {values[sec][name]!r}" for sec, names in IGNORED_PERIPHERY.items()
               for name in names if float(values[sec][name]) != 0.0]
    if any(float(v) != 0.0 for v in dac["inl_lsb"]):
        ignored.append(f"[dac] inl_lsb = {list(dac['inl_lsb'])!r}")
    swing = sense_p.get("v_swing_v")
    gain = getattr(sense, "transimpedance", None)
    if swing and gain:
        v_full = float(gain) * int(p["rows"]) * float(p["g_max_s"]) * float(p["v_read_v"])
        if v_full > float(swing):
            ignored.append(f"[sense] v_swing_v = {swing!r} (a full column reaches {v_full:.3g} V)")
    if ignored:
        warnings.warn(f"card {card.name}: the layer adapter models ideal converters and sense noise only; "
                      f"ignored: {'; '.join(ignored)}", CimphysWarning, stacklevel=3)


def default_card() -> str | None:
    """Name of the default tile card (:data:`DEFAULT_CARD`) when it is installed, else None."""
    from ..cards import list_cards

    names = {ref.name for ref in list_cards("circuit")}
    return DEFAULT_CARD if DEFAULT_CARD in names else None


DEFAULT_CARD = "isaac_128x128"
