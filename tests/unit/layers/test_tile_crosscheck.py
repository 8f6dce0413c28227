"""The layer adapter's fused tile path against the periphery's own Tile (cimphys.circuits.tile).

Two independent implementations of the same chain — bit-sliced DAC reads of one crossbar with
wire resistance and a voltage-mode sense resistor solved with the array, per-column ADCs and
shift-add — must give the same product.  Differences left: the Tile quantises each column of a
pair over its own [min, max] range, the adapter quantises their difference; at 14 bits both
quantisation errors are ~1e-4 of full scale.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cimphys.cards import load_circuit
from cimphys.circuits.tile import Tile
from cimphys.layers.analog import AnalogMatrix
from cimphys.layers.config import CimConfig
from cimphys.layers.mapping import map_matrix

# 14-bit converters over ranges set by the same calibration batch: ~2^-13 of full scale per
# read, a few reads summed with weights up to 2^6 — 2e-3 of the largest output bounds it.
RTOL_TILE = 2e-3


def test_fused_path_matches_periphery_tile(rng):
    card = load_circuit("neurram_256x256").with_parameters(rows=16, cols=16)
    sections = {**card.sections, "adc": {**card.sections["adc"], "bits": 14, "kind": "ideal"}}
    card = dataclasses.replace(card, sections=sections)
    cfg = CimConfig.from_card(card, input_bits=8, n_slices=1, column_gain_calibration=False)
    assert cfg.r_sense == 100.0 and cfg.mapping.dac_bits == 2 and cfg.mapping.sign == "differential"
    w = rng.standard_normal((16, 8))
    x = rng.integers(-127, 128, size=(6, 16)).astype(float)
    x[:, 0] = 127  # per-row scale 1: the adapter's inputs are exactly these integers
    mapped = map_matrix(w, cfg.mapping)
    ours = AnalogMatrix(mapped, cfg, rng)
    ours.calibrate(x)
    y_ours, _ = ours.matmul(x)

    g = cfg.g_min + mapped.digits[0, 0, 0].astype(float) * cfg.delta_g  # (16, 16), pairs interleaved
    tile = Tile(card, g, seed=0)
    tile.calibrate(x.astype(np.int64), input_bits=8, signed=True)
    codes, record = tile.mvm(x.astype(np.int64), input_bits=8, signed=True)
    dot = tile.codes_to_dot(codes, input_bits=8, signed=True)  # ≈ (G+ - G-).T x, S
    y_tile = dot / cfg.delta_g * mapped.scale
    np.testing.assert_allclose(y_ours, y_tile, rtol=0, atol=RTOL_TILE * np.abs(y_tile).max())
    # and both carry the IR drop: neither equals the ideal product
    assert np.abs(y_tile - x @ (mapped.q * mapped.scale)).max() > 10 * RTOL_TILE * np.abs(y_tile).max()


def test_card_periphery_the_adapter_does_not_model_is_named():
    """A card's converter/sense non-idealities reach Tile but not the adapter: say so, by name."""
    import warnings

    from cimphys.errors import CimphysWarning

    card = load_circuit("isaac_128x128")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CimConfig.from_card(card)  # the bundled card: nothing ignored, no warning
    sections = {**card.sections, "adc": {**card.sections["adc"], "gain_error": 0.01},
                "sense": {**card.sections["sense"], "v_swing_v": 0.5}}
    with pytest.warns(CimphysWarning, match=r"\[adc\] gain_error = 0.01.*\[sense\] v_swing_v = 0.5"):
        CimConfig.from_card(dataclasses.replace(card, sections=sections))
