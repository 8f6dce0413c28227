"""The aihwkit export, turned into aihwkit 1.1's own objects.

The argument mapping is checked without aihwkit; building the real ``InferenceRPUConfig`` and an
``AnalogLinear`` needs aihwkit 1.1.0 and skips without it.  Its compiled extension matches torch
2.10.0 only (with torch 2.9.1 an undefined c10 symbol, with the 2.13.0+cpu wheel "weights must be a
CPU tensor" on CPU tensors), and PyPI has only the CUDA build of torch 2.10.0, which runs on CPU:
``pip install torch==2.10.0 && pip install --no-deps aihwkit==1.1.0 && pip install scipy tqdm
protobuf requests`` (a venv of 7.7 GB, most of it the CUDA libraries torch pulls).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cimphys.errors import InputError
from cimphys.export import aihwkit_config, error_model
from cimphys.exports.aihwkit import IBM_PCM_FITS, noise_model_arguments, rpu_config, t_inference

AIHWKIT_INSTALL = "pip install torch==2.10.0 && pip install --no-deps aihwkit==1.1.0 (see the module docstring)"


@pytest.fixture(scope="module")
def pcm_config():
    ds = error_model("nandakumar2019_pcm", "isaac_128x128", adc_bits=(8,), input_magnitudes=(1.0,),
                     weight_magnitudes=(1.0,), rows=8, cols=4, n_tiles=1, batch=4, seed=2)
    return json.loads(json.dumps(aihwkit_config(ds)))  # as read back from the JSON file


def test_pcm_arguments_are_those_aihwkit_takes(pcm_config):
    name, kwargs = noise_model_arguments(pcm_config)
    assert name == "PCMLikeNoiseModel"
    # PCMLikeNoiseModel.__init__ of aihwkit 1.1.0 (aihwkit/inference/noise/pcm.py) takes no drift_nu_*
    assert set(kwargs) <= {"prog_coeff", "g_converter", "g_max", "t_read", "t_0", "prog_noise_scale",
                           "read_noise_scale", "drift_scale", "prog_coeff_g_max_reference"}
    assert kwargs["g_max"] == pytest.approx(25.0) and kwargs["t_0"] == 20.0
    np.testing.assert_allclose(kwargs["prog_coeff"], [0.26348, 1.9650, -1.1731], rtol=1e-12)  # uS
    # aihwkit drifts by ((t_inference + t_0) / t_0): 3600 s after programming is 3580 s after t_0
    assert t_inference(pcm_config) == pytest.approx(3580.0)


def test_card_fits_that_aihwkit_cannot_hold_are_refused(pcm_config):
    changed = json.loads(json.dumps(pcm_config))
    changed["cimphys"]["drift"]["nu_mean_offset"] = IBM_PCM_FITS["nu_mean_offset"] * 1.1
    with pytest.raises(InputError, match="nu_mean_offset"):
        noise_model_arguments(changed)


def test_reram_coefficient_keys_become_floats():
    config = {"noise_model": {"class": "ReRamWan2022NoiseModel", "g_max": 9.0, "noise_scale": 1.0,
                              "coeff_dic": {"3600.0": [0.1, 0.2, 0.0]}}, "cimphys": {}}
    name, kwargs = noise_model_arguments(config)
    assert name == "ReRamWan2022NoiseModel" and list(kwargs["coeff_dic"]) == [3600.0]


def test_real_rpu_config_and_analog_linear(pcm_config):
    pytest.importorskip("aihwkit", reason=AIHWKIT_INSTALL)
    import torch
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.nn import AnalogLinear

    rpu = rpu_config(pcm_config)
    assert isinstance(rpu.noise_model, PCMLikeNoiseModel) and isinstance(rpu.drift_compensation, GlobalDriftCompensation)
    assert rpu.forward.inp_res == pcm_config["rpu_config"]["forward"]["inp_res"]
    layer = AnalogLinear(8, 4, bias=False, rpu_config=rpu)
    layer.eval()
    layer.drift_analog_weights(t_inference(pcm_config))
    assert layer(torch.ones(2, 8)).shape == (2, 4)


@pytest.mark.slow
def test_aihwkit_noise_model_reproduces_the_cards_weight_statistics(pcm_config):
    """aihwkit's own PCMLikeNoiseModel, built from the export alone, drifts a layer of uniform
    weights to the error distribution cimphys's card gives a cell at the same time (programming,
    drift and 1/f read noise, no compensation): mean and std within the issue's 5 %.  Measured
    (200 000 weights, torch seed 0, one device per weight as the single-ended tile has it):
    aihwkit mean -0.1127, std 0.0771 of g_max; the card's fits -0.1124, 0.0763 (+0.3 %, +1.1 %;
    with aihwkit's default pair converter, whose unused minus device adds its programming noise,
    +3.0 % and +1.3 %).  Only the device statistics: the tile's IR drop and ADC are in
    forward.out_res/out_bound and the cimphys block; the MVM test below runs them."""
    pytest.importorskip("aihwkit", reason=AIHWKIT_INSTALL)
    import torch
    from aihwkit.nn import AnalogLinear

    from cimphys.exports.emulate import statistical_levels as _statistical_levels

    rpu = rpu_config(pcm_config)
    rpu.drift_compensation = None
    rpu.mapping.weight_scaling_omega = 0.0  # weights as given: w = 1 is g_max
    torch.manual_seed(0)
    w = torch.rand(400, 500)
    w[0, 0] = 1.0
    layer = AnalogLinear(500, 400, bias=False, rpu_config=rpu)
    layer.set_weights(w)
    layer.eval()
    layer.drift_analog_weights(t_inference(pcm_config))
    drifted = next(layer.analog_tiles()).get_weights(apply_weight_scaling=False)[0]
    theirs = (drifted - w).numpy().ravel()
    rng = np.random.default_rng(0)
    levels = rng.uniform(0.0, 1.0, 200_000)
    ours = _statistical_levels(pcm_config["cimphys"], levels, rng)[0] - levels
    assert theirs.mean() == pytest.approx(ours.mean(), rel=0.05)
    assert theirs.std() == pytest.approx(ours.std(), rel=0.05)


def _analog_linear_errors(config, rows, cols, n_tiles, batch, exported_alpha=None):
    """MVM errors of aihwkit ``AnalogLinear`` layers built from the export alone, on uniform
    weights and inputs drawn as the physics draws them.  aihwkit has no nodal IR-drop model: the
    exported per-column wire gain (``cimphys.ir_gain``) is applied to its output, on the signal
    and on the tile's g_min offset, as the physics sees them.  ``exported_alpha``: replace
    aihwkit's drift compensation by the exported factor."""
    import torch
    from aihwkit.nn import AnalogLinear

    c = config["cimphys"]
    x_full, gain = 2 ** c["input_bits"] - 1, np.asarray(c["ir_gain"]["value"])[0][0]
    rng = np.random.default_rng(5)
    torch.manual_seed(5)
    errors = []
    for _ in range(n_tiles):
        w = rng.uniform(0.0, 1.0, (rows, cols))
        w[0, 0], w[0, 1] = 1.0, 0.0  # span [0, 1]: aihwkit's single-device converter maps min..max
        rpu = rpu_config(config)
        if exported_alpha is not None:
            rpu.drift_compensation = None
        layer = AnalogLinear(rows, cols, bias=False, rpu_config=rpu)
        layer.set_weights(torch.tensor(w.T, dtype=torch.float32))
        layer.eval()
        layer.program_analog_weights()
        layer.drift_analog_weights(t_inference(config))
        x = rng.integers(0, x_full + 1, (batch, rows)) / x_full
        y = layer(torch.tensor(x, dtype=torch.float32)).detach().numpy().astype(float)
        y *= 1.0 if exported_alpha is None else exported_alpha
        offset = c["g_min_norm"] * x.sum(axis=1, keepdims=True)
        errors.append((gain * (y + offset) - offset - x @ w).ravel())
    return np.concatenate(errors)


def _pcm_on_isaac(rows, cols, n_tiles, batch=64):
    ds = error_model("nandakumar2019_pcm", "isaac_128x128", adc_bits=(8,), input_magnitudes=(1.0,),
                     weight_magnitudes=(1.0,), rows=rows, cols=cols, n_tiles=n_tiles, batch=batch, seed=2)
    return ds, json.loads(json.dumps(aihwkit_config(ds)))


@pytest.mark.slow
def test_analog_linear_mvm_reproduces_the_exported_error_spread():
    """PCM on a 32 x 16 corner of the ISAAC tile (16-bit bit-serial inputs, 8-bit ADC, 1 h after
    programming, aihwkit's own global drift compensation), against the error moments cimphys's
    physics exported.  The spread is the devices' (programming, drift, 1/f): std within the
    issue's 5 % (measured +0.6 %).  The mean (-0.067) is here the IR drop (-0.052) plus the
    sampling error of the static device error: it is fixed per column, so 16 tiles x 16 columns
    are 256 independent draws of std 0.18, a standard error of 0.011 per side; held to two
    combined standard errors (measured: aihwkit -0.049, 1.1 of them)."""
    pytest.importorskip("aihwkit", reason=AIHWKIT_INSTALL)
    rows, cols, n_tiles = 32, 16, 16
    ds, config = _pcm_on_isaac(rows, cols, n_tiles)
    err = _analog_linear_errors(config, rows, cols, n_tiles, 64)
    mean, std = float(ds.error_mean.squeeze()), float(ds.error_std.squeeze())
    assert err.std() == pytest.approx(std, rel=0.05)
    standard_error = np.sqrt(2.0) * std / np.sqrt(n_tiles * cols)
    assert abs(err.mean() - mean) < 2.0 * standard_error


@pytest.mark.slow
def test_analog_linear_mvm_on_the_full_isaac_tile():
    """The full 128 x 128 ISAAC tile, where the wires' IR drop dominates the mean (-4.48 against a
    standard error of 0.05): with the exported drift-compensation factor, aihwkit's MVM gives the
    mean within 5 % (measured -4.1 %).  Two gaps are held at their measured size: the std is 5.4 %
    low (the physics' IR drop depends on each input pattern and tile; one exported gain per column
    does not carry that spread), and with aihwkit's own GlobalDriftCompensation the mean is 17 %
    low: aihwkit reads one-hot inputs through the quantised output, whose step at 128 rows is a
    third of one weight, while the physics compensates on the conductance sums."""
    pytest.importorskip("aihwkit", reason=AIHWKIT_INSTALL)
    rows, cols, n_tiles = 128, 128, 4
    ds, config = _pcm_on_isaac(rows, cols, n_tiles)
    mean, std = float(ds.error_mean.squeeze()), float(ds.error_std.squeeze())
    err = _analog_linear_errors(config, rows, cols, n_tiles, 64, exported_alpha=float(ds.alpha.mean()))
    assert err.mean() == pytest.approx(mean, rel=0.05)
    assert 0.92 < err.std() / std < 0.97
    own = _analog_linear_errors(config, rows, cols, n_tiles, 64)
    assert 0.75 < own.mean() / mean < 0.90
