"""How a model's matrices go onto the tiles of one card: the layer-level choices, in one frozen dataclass.

Every physical number -- array size, wires, conductance window, read voltage and time, DACs,
sense amplifiers, ADCs, their energies, the memory device -- comes from the ``tile`` circuit
card (:class:`cimphys.circuits.tile_design.TileDesign`) and reaches the matrix products through
:class:`cimphys.circuits.tile.TileStack`, the tile model the whole package uses.
:class:`CimConfig` adds only what is the layer's to choose: how weights are sliced onto cells,
the activation resolution, how cells are programmed, when and at what temperature they are read,
how the ADC ranges and the digital column corrections are calibrated, and the energy of the
work kept digital.  ``with_(...)`` returns a changed copy; changes to the card's own numbers
(``adc_bits``, ``r_wire``, ``rows``...) return a copy with a changed card, so the tile model sees them.

Digital costs: M. Horowitz, "Computing's energy problem", ISSCC 2014,
doi:10.1109/ISSCC.2014.6757323 (45 nm: fp32 add 0.9 pJ, fp32 multiply 3.7 pJ, an fp32
multiply-add 4.6 pJ).  Write costs of cards that name no device (ideal cells): 1 pJ and 100 ns
per cell, endurance 1e6 cycles (assumed, typical HfOx RRAM, Wong et al., Proc. IEEE 100, 1951
(2012), doi:10.1109/JPROC.2012.2190369); a card with a ``[device]`` card takes them from its
device model.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

from ..cards import Card, list_cards, load_circuit, load_device
from ..circuits.tile_design import TileDesign
from ..errors import InputError
from .mapping import Mapping

__all__ = ["DEFAULT_CARD", "PROGRAMMING", "CimConfig", "default_card"]

DEFAULT_CARD = "isaac_128x128"
#: ``device``: cells as the tile card's [device] card programs them (write error, variability,
#: stuck-at faults; ideal cells when the card names none); ``ideal``: exact targets (the device
#: still drifts and makes read noise); ``gaussian``: N(0, sigma (g_max - g_min)), clipped at 0.
PROGRAMMING = ("device", "ideal", "gaussian")


def default_card() -> str | None:
    """Name of the default tile card (:data:`DEFAULT_CARD`) when it is installed, else None."""
    names = {ref.name for ref in list_cards("circuit")}
    return DEFAULT_CARD if DEFAULT_CARD in names else None


@functools.lru_cache(maxsize=1)
def _default_tile() -> Card:
    return load_circuit(DEFAULT_CARD)


@dataclass(frozen=True)
class CimConfig:
    """Layer-level choices for running a model on the tiles of one card (SI units)."""

    card: Card = field(default_factory=_default_tile)
    cell_bits: int = 4             # bits stored per cell
    n_slices: int = 2              # cells (slices) per weight magnitude
    input_bits: int = 8            # activation resolution incl. sign
    programming: str = "device"    # see PROGRAMMING
    programming_sigma: float = 0.0  # relative to g_max - g_min (gaussian)
    time: float = 0.0              # s after programming at which the model is read (drift, retention)
    temperature: float = 300.0     # K, of the cells during the reads
    drift_compensation: bool = True  # global drift compensation (one factor per matrix, from a calibration read)
    adc_calibration: str = "max"   # "max" or "p99.9": |sense output| over the calibration reads
    column_gain_calibration: bool = True  # divide out each column's measured gain (IR drop, drift)
    cell_read_noise: bool = True   # the cells' thermal, shot, 1/f and RTN noise on every read (device cards)
    cell_nonlinearity: float = 0.0  # 1/V, a of I = k sinh(a V) cells (0: linear cells; >0: a Newton solve per read)
    digital_mac_energy: float = 4.6e-12   # J per fp32 multiply-add (ops kept digital)
    digital_mac_time: float = 1e-12       # s per MAC (1 TMAC/s digital unit)
    fp_add_energy: float = 0.9e-12  # J per fp32 add (softmax, LayerNorm, GELU: always digital)
    fp_mul_energy: float = 3.7e-12  # J per fp32 multiply
    write_energy: float = 1e-12    # J per cell write (cards without a device card)
    write_time: float = 100e-9     # s per row written (cards without a device card)
    endurance: float = 1e6         # write cycles a cell survives (cards without a device card)

    def __post_init__(self):
        card = self.card if isinstance(self.card, Card) else load_circuit(self.card)
        object.__setattr__(self, "card", card)
        object.__setattr__(self, "design", TileDesign(card))  # checks the card (model, sensing, units)
        nonneg = ("programming_sigma", "time", "cell_nonlinearity", "digital_mac_energy", "digital_mac_time", "fp_add_energy",
                  "fp_mul_energy", "write_energy", "write_time")
        for name in nonneg + ("temperature",):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
                value > 0 if name == "temperature" else value >= 0)
            if not ok:
                raise InputError(f"{name}: expected a finite {'positive' if name == 'temperature' else 'non-negative'}"
                                 f" number, got {value!r}")
        if not (isinstance(self.endurance, (int, float)) and self.endurance >= 1):
            raise InputError(f"endurance: expected >= 1 cycles, got {self.endurance!r}")
        if self.programming not in PROGRAMMING:
            raise InputError(f"programming: expected one of {PROGRAMMING}, got {self.programming!r}")
        if self.adc_calibration != "max" and not (self.adc_calibration.startswith("p") and _is_percent(
                self.adc_calibration[1:])):
            raise InputError(f"adc_calibration: expected 'max' or 'pNN.N', got {self.adc_calibration!r}")
        self.mapping  # noqa: B018 - checks cell_bits, n_slices, input_bits against the card
        self.device_card  # noqa: B018 - a [device] card that does not load fails here, not mid-run

    # ------------------------------------------------------------------ derived from the card
    @property
    def mapping(self) -> Mapping:
        d = self.design
        return Mapping(rows=d.rows, cols=d.cols, cell_bits=self.cell_bits, n_slices=self.n_slices,
                       input_bits=self.input_bits, dac_bits=int(d.dac["bits"]),
                       sign="differential" if d.differential else "offset")

    @property
    def card_name(self) -> str:
        return self.card.name

    @property
    def g_min(self) -> float:
        return self.design.g_min

    @property
    def g_max(self) -> float:
        return self.design.g_max

    @property
    def delta_g(self) -> float:
        """Conductance step between adjacent levels of a cell, S."""
        return (self.g_max - self.g_min) / (2**self.cell_bits - 1)

    @property
    def v_lsb(self) -> float:
        """Voltage of one DAC step, V."""
        return self.design.v_read / (2 ** int(self.design.dac["bits"]) - 1)

    @property
    def adc_bits(self) -> int:
        return int(self.design.adc["bits"])

    @property
    def device_card(self) -> Card | None:
        """The device card of the tile's cells, or None (ideal cells)."""
        name = self.design.device["card"]
        return load_device(name) if name else None

    def identity(self) -> tuple:
        """Every input that decides programmed, characterised and calibrated tiles (cache keys):
        the tile card's full contents, the device card's, and every layer-level field."""
        device = self.device_card
        layer = tuple((f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "card")
        return (self.card.to_toml(), None if device is None else device.to_toml(), layer)

    # ------------------------------------------------------------------ copies
    def with_(self, **changes) -> CimConfig:
        """A copy with fields changed.  Besides the fields: ``adc_bits`` (the card's ``[adc]
        bits``), ``r_wire`` (its wire resistance per cell), ``rows``, ``cols`` and any other
        ``[parameters]`` key of the card by its card name."""
        card = self.card
        if "adc_bits" in changes:
            card = card.with_section("adc", bits=changes.pop("adc_bits"))
        if "r_wire" in changes:
            changes["r_wire_per_cell_ohm"] = changes.pop("r_wire")
        params = {k: changes.pop(k) for k in list(changes) if k in card.parameters or k in _card_keys(card)}
        if params:
            card = card.with_parameters(**params)
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(f"config: unknown fields {sorted(unknown)}")
        return dataclasses.replace(self, card=card, **changes)

    def with_card(self, card) -> CimConfig:
        """The same layer-level choices on another tile card."""
        return dataclasses.replace(self, card=card if isinstance(card, Card) else load_circuit(card))

    @classmethod
    def from_card(cls, card, **overrides) -> CimConfig:
        """The default layer-level choices on a ``tile`` card (name, path or Card), then ``overrides``."""
        return cls(card=card if isinstance(card, Card) else load_circuit(card)).with_(**overrides)


def _card_keys(card: Card) -> set:
    return {p.name for p in card.spec.parameters}


def _is_percent(text: str) -> bool:
    try:
        return 50.0 < float(text) <= 100.0
    except ValueError:
        return False
