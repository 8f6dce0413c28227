"""A weight matrix on the tiles of a card: the ideal limit, calibration, device programming."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.errors import InputError
from cimphys.layers.analog import AnalogMatrix, program_matrix
from cimphys.layers.config import CimConfig
from cimphys.layers.mapping import map_matrix
from small_cards import config


def matrix(w, cfg, seed=0) -> AnalogMatrix:
    rng = np.random.default_rng(seed)
    mapped = map_matrix(w, cfg.mapping)
    programmed = program_matrix(mapped.digits, cfg, rng)
    return AnalogMatrix(mapped, cfg, programmed, rng.integers(0, 2**62, size=mapped.digits.shape[:3]))


def product_error(cfg, w, x, seed=0):
    am = matrix(w, cfg, seed)
    am.calibrate(x, np.random.default_rng(seed + 1))
    am.finish_calibration()
    y, costs = am.matmul(x)
    return y, float(np.linalg.norm(y - x @ w) / np.linalg.norm(x @ w)), costs, am


@pytest.mark.parametrize("differential,mode", [(True, "pair"), (True, "column"), (False, "reference"),
                                               (False, "column")])
def test_ideal_tiles_reproduce_the_product(rng, differential, mode):
    """No wires, no device, 24-bit weights and inputs, 16-bit ideal ADCs over ranges that cover
    the inputs: the product to ~2^-15 of full scale (each read's quantisation, kept relative by
    the binary shift-add), for every sensing scheme."""
    cfg = config(16, 12, adc_bits=16, differential=differential, mode=mode, cell_bits=8, n_slices=3, input_bits=24)
    w, x = rng.standard_normal((40, 13)), rng.standard_normal((7, 40))
    y, _, costs, am = product_error(cfg, w, x)
    # single-ended columns read one by one carry the offset encoding's common mode through the
    # ADC (each quantised on the full column current, several times the signal): 5e-4
    tol = 5e-4 if (mode == "column" and not differential) else 1e-4
    assert np.abs(y - x @ w).max() < tol * np.abs(x @ w).max()
    channels = am.stacks[0].design.channels
    assert costs.conversions == 7 * 2 * 23 * am.n_tiles * channels  # 23 magnitude bits per sign phase
    assert costs.array > 0 and costs.adc == pytest.approx(am.stacks[0].energy.e_conversion * costs.conversions)


def test_error_grows_with_wires_and_falls_with_adc_bits(rng):
    w, x = rng.standard_normal((30, 10)), rng.standard_normal((6, 30))
    wires = [product_error(config(16, 12, r_wire=r, adc_bits=10, column_gain_calibration=False), w, x)[1]
             for r in (0.0, 20.0, 80.0)]
    assert wires[0] < wires[1] < wires[2], wires
    bits = [product_error(config(16, 12, adc_bits=b), w, x)[1] for b in (4, 6, 9)]
    assert bits[0] > bits[1] > bits[2], bits


def test_column_gain_calibration_removes_the_mean_ir_drop(rng):
    w, x = rng.standard_normal((30, 10)), rng.standard_normal((6, 30))
    x_cal = rng.standard_normal((12, 30))
    errs = []
    for on in (False, True):
        cfg = config(16, 12, r_wire=40.0, adc_bits=10, column_gain_calibration=on)
        am = matrix(w, cfg)
        am.calibrate(x_cal, np.random.default_rng(1))
        am.finish_calibration()
        y, _ = am.matmul(x)
        errs.append(float(np.linalg.norm(y - x @ w) / np.linalg.norm(x @ w)))
    assert errs[1] < 0.5 * errs[0], errs


@pytest.mark.parametrize("differential", [True, False])
def test_calibration_sums_by_matrix_products_match_the_direct_sums(rng, differential):
    """calibrate() forms the column-fit sums from products over the reads; the direct twin forms
    the no-wire target currents of every read and sums the element products."""
    cfg = config(16, 12, r_wire=2.0, differential=differential)
    w, x = rng.standard_normal((40, 13)), rng.standard_normal((9, 40))
    am = matrix(w, cfg)
    am.calibrate(x, np.random.default_rng(3))
    m = cfg.mapping
    p, _ = am._inputs(x)
    for r, stack in enumerate(am.stacks):
        res, digits = stack.sense_outputs(p[:, r * m.rows:(r + 1) * m.rows], m.input_bits, signed="magnitude",
                                          rng=np.random.SeedSequence(0))
        f = am._sense_currents(stack, res.v_sense).reshape(res.v_sense.shape[0], -1)
        v = digits.reshape(-1, m.rows) * cfg.v_lsb
        t = v @ am._targets()[r]
        u = v.sum(axis=1, keepdims=True)
        for k, direct in enumerate(((f * t).sum(0), (t * t).sum(0), (f * u).sum(0), (t * u).sum(0))):
            np.testing.assert_allclose(am._fit[k, r].reshape(-1), direct, rtol=1e-9, atol=1e-30)
        assert am._fit[4, r].flat[0] == pytest.approx(float((u * u).sum()), rel=1e-12)


def test_uncalibrated_matrix_refuses(rng):
    am = matrix(rng.standard_normal((8, 4)), config(8, 8))
    with pytest.raises(InputError, match="calibrat"):
        am.matmul(np.ones((1, 8)))


@pytest.mark.slow
def test_nonlinear_cells_through_newton(rng):
    w, x = rng.standard_normal((12, 6)), rng.standard_normal((4, 12))
    # a near-ideal virtual ground (TIA gain 1e12: input resistance 1e-7 ohm), so that every
    # selected cell sees v_read itself
    ground = {"sense": {"gain": 1e12}}
    base = config(16, 8, adc_bits=12, n_slices=1, cell_bits=6, sections=ground)
    linear = product_error(base, w, x)[0]
    # 1-bit DACs and no wires: every selected cell sees exactly v_read, where k sinh(a v_read) = g v_read
    same = product_error(base.with_(cell_nonlinearity=10.0), w, x)[0]
    np.testing.assert_allclose(same, linear, rtol=1e-6, atol=1e-9 * np.abs(linear).max())
    # 2-bit DACs: cells at v_read/3 and 2v_read/3 pass less than g v, more so as a grows
    two = config(16, 8, adc_bits=12, n_slices=1, cell_bits=6, sections={"dac": {"bits": 2}, **ground})
    errs = [product_error(two.with_(cell_nonlinearity=a), w, x)[1] for a in (1e-3, 8.0, 20.0)]
    assert errs[0] < errs[1] < errs[2], errs


def test_config_is_the_card_plus_layer_choices():
    cfg = CimConfig()
    assert cfg.card_name == "isaac_128x128" and cfg.mapping.rows == 128
    smaller = cfg.with_(adc_bits=6, r_wire=1.0, rows=64)
    assert smaller.adc_bits == 6 and smaller.design.r_wire == 1.0 and smaller.mapping.rows == 64
    assert smaller.identity() != cfg.identity() and cfg.with_().identity() == cfg.identity()
    assert cfg.with_(column_gain_calibration=False).identity() != cfg.identity()
    with pytest.raises(InputError, match="unknown"):
        cfg.with_(sense_noise=1.0)
    with pytest.raises(InputError, match="programming"):
        CimConfig(programming="pcm")


@pytest.mark.parametrize("table,key,values", [
    ("dac", "mismatch_sigma", (0.0, 0.05, 0.2)),
    ("sense", "offset_sigma_v", (0.0, 0.01, 0.04)),
    ("sense", "noise_v_rms", (0.0, 0.01, 0.04)),
    ("adc", "noise_lsb", (0.0, 1.0, 4.0)),
    ("adc", "gain_error", (0.0, 0.05, 0.2)),
])
def test_each_periphery_effect_grows_with_its_magnitude(rng, table, key, values):
    """Mean product error over seeds (common random numbers) grows with each effect's magnitude."""
    w, x = rng.standard_normal((30, 10)), rng.standard_normal((6, 30))
    errs = []
    for value in values:
        cfg = config(16, 12, adc_bits=10, column_gain_calibration=False,
                     sections={table: {key: value}, **({"dac": {"bits": 2, key: value}} if table == "dac" else {})})
        errs.append(np.mean([product_error(cfg, w, x, seed=s)[1] for s in (0, 1, 2)]))
    assert errs[0] < errs[1] < errs[2], errs


def test_device_effects_grow_with_their_magnitude(rng):
    """Programming spread and the time after programming (PCM drift, without the digital
    compensation) make the product worse, and more so as they grow."""
    w, x = rng.standard_normal((30, 10)), rng.standard_normal((6, 30))
    spread = [np.mean([product_error(config(16, 12, adc_bits=10, programming="gaussian", programming_sigma=s),
                                     w, x, seed=k)[1] for k in (0, 1, 2)]) for s in (0.0, 0.01, 0.04)]
    assert spread[0] < spread[1] < spread[2], spread
    pcm = config(16, 12, adc_bits=10, device="nandakumar2019_pcm", column_gain_calibration=False,
                 drift_compensation=False, cell_read_noise=False, programming="ideal")
    drift = [np.mean([product_error(pcm.with_(time=t), w, x, seed=k)[1] for k in (0, 1)]) for t in (0.0, 1e3, 1e7)]
    assert drift[0] < drift[1] < drift[2], drift
