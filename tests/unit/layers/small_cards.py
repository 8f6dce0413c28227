"""Small tile cards for the layer tests: the ISAAC-like periphery on arrays of a few rows."""

from __future__ import annotations

from cimphys.cards import card_from_mapping
from cimphys.layers.config import CimConfig


def tile_card(rows=16, cols=16, *, r_wire=0.0, adc_bits=8, differential=False, mode=None, device="", **sections):
    """A ``tile`` card: 1-10 uS cells read at 0.2 V, 1-bit DACs, a TIA, an ideal ADC per column."""
    data = {
        "model": {"name": "tile"},
        "parameters": {"rows": rows, "cols": cols, "differential": differential, "g_min_s": 1e-6,
                       "g_max_s": 1e-5, "v_read_v": 0.2, "r_wire_per_cell_ohm": r_wire, "t_read_s": 1e-7},
        "dac": {"bits": 1, "energy_per_conversion_j": 3.9e-13},
        "sense": {"kind": "tia", "r_f_ohm": 1e5, "gain": 1e5, "v_swing_v": 10.0, "power_w": 1e-6,
                  "mode": mode or ("pair" if differential else "reference")},
        "adc": {"bits": adc_bits, "kind": "ideal", "sample_rate_hz": 1.28e9, "power_w": 2e-3},
        "energy": {"cols_per_adc": 1, "e_shift_add_j": 5e-14},
        "device": {"card": device},
        "provenance": {"source": "layer tests", "url": "https://example.org", "fitted": "none",
                       "method": "made up for the tests", "residual": "none"},
    }
    for name, table in sections.items():
        data[name] = {**data.get(name, {}), **table}
    return card_from_mapping(data, "circuit", "small test card", "small")


def config(rows=16, cols=16, *, r_wire=0.0, adc_bits=8, differential=False, mode=None, device="", sections=None,
           **layer) -> CimConfig:
    card = tile_card(rows, cols, r_wire=r_wire, adc_bits=adc_bits, differential=differential, mode=mode,
                     device=device, **(sections or {}))
    return CimConfig(card=card, **layer)
