"""One chain: the products of a model run are, tile by tile, what single Tiles of the same card and
seeds give; calibration never sees the evaluated inputs."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits.tile import Tile
from cimphys.errors import InputError
from cimphys.layers import run_model
from cimphys.layers.analog import SIGNED
from cimphys.layers.engine import AnalogEngine
from cimphys.layers.mapping import quantise_inputs
from cimphys.layers.tiny import write_tiny_bert
from cimphys.layers.transformer import BertEncoder
from cimphys.layers import load_model
from small_cards import config

EVERY_EFFECT = {"dac": {"mismatch_sigma": 0.02, "bits": 1},
                "sense": {"offset_sigma_v": 2e-3, "noise_v_rms": 1e-3},
                "adc": {"kind": "sar", "cap_mismatch_sigma": 0.01, "comparator_noise_lsb": 0.2, "noise_lsb": 0.2}}


def naive_back_end(am, tiles, x):
    """The layer's digital back end written out per tile: codes -> currents -> corrected integer
    dot products -> slices and row blocks shift-added -> offset encoding removed -> scales."""
    m, cfg = am.mapped.mapping, am.cfg
    p, s_x = quantise_inputs(x, m.input_bits)
    pad = np.zeros((p.shape[0], am.n_rb * m.rows), dtype=np.int64)
    pad[:, :p.shape[1]] = p
    acc = np.zeros((x.shape[0], am.n_cb * m.weight_cols))
    for r in range(am.n_rb):
        block = pad[:, r * m.rows:(r + 1) * m.rows]
        u = cfg.v_lsb * block.sum(axis=1)
        for k, tile in enumerate(tiles[r]):
            y, _ = tile.mvm(block, m.input_bits, signed=SIGNED)
            i = tile.codes_to_current(y, m.input_bits, signed=SIGNED)[..., :m.weight_cols]
            dot = (i - am.offset[r, k] * u[:, None]) / (am.gain[r, k] * cfg.v_lsb * cfg.delta_g)
            c, s = divmod(k, m.n_slices)
            acc[:, c * m.weight_cols:(c + 1) * m.weight_cols] += dot * 2.0 ** (s * m.cell_bits)
    q = acc[:, :am.mapped.shape[1]] * am.programmed.drift_factor
    if m.sign == "offset":
        q = q - m.offset_correction * p.sum(axis=1, keepdims=True)
    return q * s_x[:, None] * am.mapped.scale[None, :]


def single_tiles(cfg, stack) -> list:
    """Fresh single Tiles with a stack's conductances, seeds and ADC ranges (each Tile solves its
    own characterisation: the run's stacks are compacted and keep no T)."""
    lo, hi = (np.broadcast_to(a, (stack.n_tiles * stack.design.channels,)).reshape(stack.n_tiles, -1)
              for a in (stack.adc.lo, stack.adc.hi))
    assert stack.compacted
    return [Tile(cfg.card, stack.g[k], seed=int(stack.seeds[k])).set_adc_range(lo[k], hi[k])
            for k in range(stack.n_tiles)]


@pytest.mark.parametrize("differential", [False, True])
def test_run_products_are_exactly_single_tiles(tmp_path, differential):
    """Same card, same seeds: every number of an engine's product comes from Tiles (exact)."""
    model = BertEncoder(load_model(write_tiny_bert(tmp_path / "m", seed=3)))
    rng = np.random.default_rng(2)
    ids = rng.integers(1, 100, size=(3, 8))
    cfg = config(16, 16, r_wire=1.5, differential=differential, sections=EVERY_EFFECT)
    eng = AnalogEngine(cfg, seed=4, use_cache=False)
    eng.calibrate(model, ids[:1])
    (op, layer), am = next(iter(eng.matrices.items()))
    x = rng.standard_normal((5, am.mapped.shape[0]))
    tiles = [single_tiles(cfg, stack) for stack in am.stacks]
    # the ADC codes of the run's tiles are the single tiles' codes, exactly (a second, identical
    # engine, so that both read from fresh noise streams)
    twin = AnalogEngine(cfg, seed=4, use_cache=False)
    twin.calibrate(model, ids[:1])
    twin_am = twin.matrices[(op, layer)]
    m = am.mapped.mapping
    p, _ = quantise_inputs(x, m.input_bits)
    for r, stack in enumerate(twin_am.stacks):
        block = np.zeros((x.shape[0], m.rows), dtype=np.int64)
        part = p[:, r * m.rows:(r + 1) * m.rows]
        block[:, :part.shape[1]] = part
        codes, _ = stack.mvm(block, m.input_bits, signed=SIGNED)
        for k, tile in enumerate(single_tiles(cfg, stack)):
            np.testing.assert_array_equal(codes[:, k], tile.mvm(block, m.input_bits, signed=SIGNED)[0])
    # and the product is the digital back end of those codes (summation order aside)
    want = naive_back_end(am, tiles, x)
    got, _ = am.matmul(x)  # the run's first product of this matrix
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_calibration_inputs_are_disjoint_from_the_evaluated_ones():
    from cimphys.layers.sentences import CALIBRATION, sentences

    assert not set(CALIBRATION) & set(sentences())
    with pytest.raises(InputError, match="disjoint"):
        run_model(sentences=["A short test sentence."], calibration=["A short test sentence."], use_cache=False)
