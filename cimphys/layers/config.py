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
doi:10.1109/ISSCC.2014.6757323 (45 nm: 32-bit integer add 0.1 pJ, fp32 multiply-add 4.6 pJ).
Write figures: 1 pJ and 100 ns per cell SET/RESET, endurance 1e6 cycles (assumed, typical HfOx
RRAM, Wong et al., Proc. IEEE 100, 1951 (2012), doi:10.1109/JPROC.2012.2190369).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import InputError
from .mapping import Mapping

__all__ = ["CimConfig"]

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
    write_energy: float = 1e-12    # J per cell write
    write_time: float = 100e-9     # s per row written (row-parallel programming)
    endurance: float = 1e6         # write cycles a cell survives
    programming: str = "ideal"     # ideal | gaussian | pcm | write_verify
    programming_sigma: float = 0.0  # relative to g_max - g_min (gaussian)
    device_card: str = ""          # device card for pcm / write_verify programming
    drift_time: float = 0.0        # s after programming (pcm), 0: no drift
    adc_calibration: str = "max"   # "max" or "p99.9" (percentile of |I| over the calibration reads)
    card_name: str = "default (ISAAC-like, built in)"

    def __post_init__(self):
        positive = ("g_max", "v_read", "t_read", "adc_time")
        nonneg = ("g_min", "r_wl", "r_bl", "r_driver", "r_sense", "adc_energy", "dac_energy", "sense_energy",
                  "sense_noise", "digital_add_energy", "digital_mac_energy", "digital_mac_time", "write_energy",
                  "write_time", "programming_sigma", "drift_time")
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
        """Read a circuit card (a :class:`cimphys.cards.Card` or name/path of one)."""
        from ..cards import Card, load_circuit

        if not isinstance(card, Card):
            card = load_circuit(card)
        values = _card_values(card)
        values["card_name"] = card.name if getattr(card, "name", None) else str(card.path)
        return cls().with_(**values).with_(**overrides)


# Circuit-card keys (periphery tile cards) -> CimConfig fields.  A key absent from a card
# keeps the default above.
_CARD_KEYS = {
    "rows": "rows", "cols": "cols", "g_min_s": "g_min", "g_max_s": "g_max", "v_read_v": "v_read",
    "t_read_s": "t_read", "r_wl_ohm": "r_wl", "r_bl_ohm": "r_bl", "r_driver_ohm": "r_driver",
    "r_sense_ohm": "r_sense", "cell_bits": "cell_bits", "adcs_per_tile": "adcs_per_tile",
    "adc_bits": "adc_bits", "dac_bits": "dac_bits", "input_bits": "input_bits",
    "adc_energy_j": "adc_energy", "adc_time_s": "adc_time", "dac_energy_j": "dac_energy",
    "sense_energy_j": "sense_energy", "write_energy_j": "write_energy", "write_time_s": "write_time",
    "endurance_cycles": "endurance",
}


def _card_values(card) -> dict:
    out = {}
    tables = [card.parameters] + [t for t in getattr(card, "extra", {}).values() if hasattr(t, "items")]
    for table in tables:
        for key, value in table.items():
            if key in _CARD_KEYS:
                field_name = _CARD_KEYS[key]
                out[field_name] = int(value) if field_name in _INT_FIELDS else float(value)
    return out


_INT_FIELDS = {"rows", "cols", "cell_bits", "adcs_per_tile", "adc_bits", "dac_bits", "input_bits"}
