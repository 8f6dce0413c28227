"""Every key of every shipped tile card has an effect on what the chain computes.

Each key is perturbed on a 16 x 16 copy of the card (a matrix product through the layer chain:
device programming, tiles, periphery, energy) and the product, the energy or the latency must
change.  A key whose effect depends on another key is tested where it acts (``CONTEXT``: e.g. a
SAR-only key on a SAR converter); the few keys that cannot act on a read are listed with the
reason in ``NO_READ_EFFECT``.  The device cards' own keys are walked in
``tests/unit/devices/test_cell_array.py``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from cimphys.cards import load_circuit
from cimphys.layers.analog import AnalogMatrix, program_matrix
from cimphys.layers.config import CimConfig
from cimphys.layers.mapping import map_matrix

CARDS = ("isaac_128x128", "neurram_256x256", "hermes_256x256")

_CELL = ("a [cell] table (cells with state) needs a device card whose read window holds the card's; its keys are "
         "walked in tests/unit/circuits/test_tile_cells.py and tests/unit/layers/test_cell_cards.py (with the chord "
         "surrogate, the default, they change the reported surrogate error, not the product)")

#: key -> why it cannot change a read of the layer chain
NO_READ_EFFECT = {
    "parameters.input_bits": "the default resolution of Tile.mvm; a layer run quantises activations to its own "
                             "input_bits (CimConfig.input_bits, cimphys run --input-bits): a model choice",
    "cell.kind": _CELL,
    "cell.access": _CELL,
    "cell.v_gate_v": _CELL,
    "cell.selector": _CELL,
    "cell.read": _CELL,
    "cell.check_reads": _CELL,
}

#: key -> card changes under which the key acts (kind-specific keys, seeds of mismatch draws, ...)
CONTEXT = {
    "adc.offset_sigma_lsb": {"adc": {"kind": "flash"}},
    "adc.cap_mismatch_sigma": {"adc": {"kind": "sar"}},
    "adc.comparator_noise_lsb": {"adc": {"kind": "sar"}},
    "adc.ramp_rc_s": {"adc": {"kind": "ramp"}},
    "adc.f_clk_hz": {"adc": {"kind": "ramp"}},
    "adc.fom_schreier_db": {"adc": {"fom_walden_j": 0.0, "fom_schreier_db": 150.0}},
    "adc.power_w": {"adc": {"fom_walden_j": 0.0, "fom_schreier_db": 0.0, "power_w": 1e-3}},
    "adc.fom_walden_j": {"adc": {"fom_walden_j": 1e-14}},
    "adc.seed": {"adc": {"kind": "sar", "cap_mismatch_sigma": 0.02}},
    "sense.seed": {"sense": {"offset_sigma_v": 1e-3}},
    "dac.seed": {"dac": {"mismatch_sigma": 0.02}},
    "dac.inl_lsb": {"dac": {"kind": "voltage", "bits": 2}},
    "dac.tau_s": {"dac": {"kind": "voltage"}},
    "sense.r_f_ohm": {"sense": {"kind": "tia"}},
    "sense.gain": {"sense": {"kind": "tia"}},
    "sense.c_int_f": {"sense": {"kind": "integrator"}},
    "sense.t_int_s": {"sense": {"kind": "integrator"}},
    "sense.r_leak_ohm": {"sense": {"kind": "integrator"}},
    "sense.r_load_ohm": {"sense": {"kind": "load"}},
    "sense.v_swing_v": {"sense": {"v_swing_v": 2e-4}},
    "adc.sample_rate_hz": {"adc": {"kind": "sar"}},  # a ramp converts in 2**bits clock periods instead
    "dac.kind": {"dac": {"bits": 3}},  # a 1-bit voltage DAC and a one-slot pulse are the same drive
    "adc.kind": {"adc": {"cap_mismatch_sigma": 0.02, "offset_sigma_lsb": 0.3}},  # ideal converters agree
    "parameters.r_driver_ohm": {"parameters": {"r_wire_per_cell_ohm": 1.0}},
}


def small(card, changes=None):
    """A 16-row copy of ``card`` (16 columns), with table changes ``{table: {key: value}}``."""
    card = card.with_parameters(rows=16, cols=16)
    for table, values in (changes or {}).items():
        card = card.with_parameters(**values) if table == "parameters" else card.with_section(table, **values)
    return card


#: values for keys that are 0 on a card (0 means "off"; a value where the key acts)
FROM_ZERO = {"r_leak_ohm": 1e6, "ramp_rc_s": 2e-7, "tau_s": 2e-8, "r_driver_ohm": 50.0, "r_wire_per_cell_ohm": 1.0,
             "offset_sigma_v": 1e-3, "noise_v_rms": 1e-3, "mismatch_sigma": 0.02, "offset_sigma_lsb": 0.3,
             "cap_mismatch_sigma": 0.02, "comparator_noise_lsb": 0.3, "noise_lsb": 0.3, "gain_error": 0.02,
             "offset_lsb": 0.7, "c_wordline_f": 1e-13, "e_shift_add_j": 1e-13, "energy_per_conversion_j": 1e-13,
             "power_w": 1e-3, "g_min_s": 1e-7, "fom_walden_j": 1e-14, "fom_schreier_db": 150.0}


def perturbed(value, param):
    """A different valid value of a key."""
    if param.kind == "float" and value == 0.0 and param.name in FROM_ZERO:
        return FROM_ZERO[param.name]
    if param.kind == "bool":
        return not value
    if param.kind == "str":
        if param.choices:
            return next(c for c in param.choices if c != value)
        return "nandakumar2019_pcm" if value != "nandakumar2019_pcm" else "yakopcic2011_oblea"
    if param.kind == "floats":
        return [v + 0.3 for v in value] if len(value) > 1 else [0.0, 0.2, -0.1, 0.1]
    if param.kind == "int":
        return value + 1 if value + 1 <= param.high else value - 1
    if param.name == "t_int_s":  # an integrator integrates within the read: shorter
        return value * 0.6
    new = value * 1.7 if value else (param.high if np.isfinite(param.high) and param.high < 1 else 1e-3)
    return min(new, param.high * 0.99) if np.isfinite(param.high) else new


@functools.lru_cache(maxsize=None)
def _cells(device_toml: str, g_min, g_max, v_read, bandwidth):
    from cimphys.cards import load_device
    from cimphys.devices.cell_array import CellArrayModel

    name = device_toml
    return CellArrayModel.from_card(load_device(name), g_min=g_min, g_max=g_max, v_read=v_read, bandwidth=bandwidth)


def signature(card) -> np.ndarray:
    """Product, energies and latency of a fixed product through the chain on ``card``."""
    cfg = CimConfig(card=card, time=3600.0)
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((20, 7)), rng.standard_normal((3, 20))
    mapped = map_matrix(w, cfg.mapping)
    device = cfg.device_card
    cells = None if device is None else _cells(device.name, cfg.g_min, cfg.g_max, cfg.design.v_read,
                                                cfg.design.bandwidth)
    prog = program_matrix(mapped.digits, cfg, np.random.default_rng(1), cells=cells)
    am = AnalogMatrix(mapped, cfg, prog, np.arange(np.prod(mapped.digits.shape[:3])) + 5)
    am.calibrate(rng.standard_normal((4, 20)), np.random.default_rng(2))
    am.finish_calibration()
    y, costs = am.matmul(x)
    return np.concatenate([y.ravel(), [costs.array, costs.dac, costs.sense, costs.adc, costs.digital, costs.latency,
                                       prog.write_energy, prog.write_time]])


def keys(name):
    card = load_circuit(name)
    spec = card.spec
    out = [("parameters", p) for p in spec.parameters if p.name not in ("rows", "cols")]
    for table, declared in spec.sections.items():
        out += [(table, p) for p in declared]
    return [(name, table, p) for table, p in out]


@pytest.mark.slow
@pytest.mark.parametrize("name", CARDS)
def test_every_tile_card_key_changes_the_chain(name):
    card = load_circuit(name)
    changed_nothing = []
    for _, table, param in keys(name):
        key = f"{table}.{param.name}"
        if key in NO_READ_EFFECT:
            continue
        if key == "parameters.differential":
            continue  # changes the tile layout itself (pairs vs reference column): tested by the sensing tests
        context = CONTEXT.get(key, {})
        if table == "sense" and param.name == "mode":
            continue  # the scheme must match the card's layout; every scheme is tested in test_tile_stack
        if table == "dac" and param.name == "kind" and card.sections.get("dac", {}).get("bits", 1) > 7:
            continue
        base_card = small(card, context)
        current = (base_card.parameters if table == "parameters" else
                   {**{p.name: p.default for p in base_card.spec.sections[table]}, **base_card.sections.get(table, {})})
        value = perturbed(current[param.name], param)
        try:
            other = small(card, {**context, table: {**context.get(table, {}), param.name: value}})
        except ValueError as exc:  # a card check refuses this change: try the other direction
            raise AssertionError(f"{name}: {key} = {value!r} refused ({exc})") from exc
        if not np.array_equal(signature(base_card), signature(other)):
            continue
        changed_nothing.append(key)
    assert not changed_nothing, f"{name}: keys without effect: {changed_nothing}"
