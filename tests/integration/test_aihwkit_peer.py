"""The aihwkit export, turned into aihwkit 1.1's own objects.

The argument mapping is checked without aihwkit; building the real ``InferenceRPUConfig`` and an
``AnalogLinear`` needs ``pip install aihwkit==1.1.0`` (it pulls torch; its compiled extension must
match the torch it was built against) and skips without it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cimphys.errors import InputError
from cimphys.export import aihwkit_config, error_model
from cimphys.exports.aihwkit import IBM_PCM_FITS, noise_model_arguments, rpu_config, t_inference


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
    pytest.importorskip("aihwkit", reason="pip install aihwkit==1.1.0 (pulls torch)")
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
    (200 000 weights, torch seed 0): aihwkit mean -0.1158, std 0.0772 of g_max; the card's fits
    -0.1124, 0.0763 (+3.0 %, +1.3 %; aihwkit's single-pair converter adds the noise of the
    unused minus device, ~+2 % on the mean).  Only the device statistics: the tile's IR drop and
    ADC are in forward.out_res/out_bound and the cimphys block, not checked here."""
    pytest.importorskip("aihwkit", reason="pip install aihwkit==1.1.0 (pulls torch)")
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
