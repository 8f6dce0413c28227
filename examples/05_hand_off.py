# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Hand-off: a card's error model in CrossSim and aihwkit
#
# Architecture simulators take a tile's error as a few statistical parameters.
# `cimphys.export.error_model` runs the physics once -- a device card written into a tile card's
# crossbar by write-verify, with its wires, DACs, sense amplifiers and ADC -- and tabulates the
# matrix-vector-product (MVM) error against ADC resolution, input and weight magnitude.  The
# same table is then written in the vocabularies of
#
# * Sandia's **CrossSim 3.2** (`write_crosssim`: a JSON that `CrossSimParameters.from_json`
#   reads, plus notes on what it approximates), and
# * IBM's **aihwkit 1.1** (`write_aihwkit`; `cimphys.exports.aihwkit.rpu_config` builds aihwkit's
#   own `InferenceRPUConfig` from it).
#
# The command line does the export in one go: `cimphys export yakopcic2011_oblea --to crosssim`.
# Here the device card is the shipped Yakopcic fit; pass the path of your own fitted card (for
# example the one notebook 1 writes) instead.  CrossSim is not on PyPI: install the wheel of its
# release (`pip install crosssim-3.2.0-py3-none-any.whl`, numpy and scipy only); aihwkit is
# `pip install aihwkit` (it pulls torch).

# %%
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from cimphys.export import aihwkit_config, error_model, write_aihwkit, write_crosssim
from cimphys.exports import crosssim as cx

DEVICE, TILE = "yakopcic2011_oblea", "isaac_128x128"
ROWS, COLS = 32, 16  # a corner of the 128 x 128 tile keeps this quick; the CLI's default is the whole tile
OUT = Path(tempfile.mkdtemp())

# %% [markdown]
# ## The physics: error against ADC resolution
#
# Weights and inputs are normalised to `[0, 1]`; the error is that of the product `y = x @ W` in
# those units.  Every draw (weights, inputs, programming, noise, mismatch) follows `seed`.

# %%
model = error_model(DEVICE, TILE, adc_bits=(4, 6, 8), input_magnitudes=(1.0,), weight_magnitudes=(1.0,),
                    rows=ROWS, cols=COLS, n_tiles=8, batch=64, seed=1)
print(model.error_std.squeeze().to_series())
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogy(model.adc_bits, model.error_std.squeeze(), "o-", label="std")
ax.semilogy(model.adc_bits, np.abs(model.error_mean.squeeze()), "s--", label="|mean|")
ax.set(xlabel="ADC bits", ylabel="MVM error (normalised output)", title=f"{DEVICE} on {TILE} ({ROWS}x{COLS})")
ax.legend()
plt.show()

# %% [markdown]
# ## CrossSim runs the exported tile
#
# `write_crosssim` picks one ADC resolution (6 bits here) and writes the JSON.  CrossSim programs
# its own cores from it (its device errors drawn from numpy's global generator: seed it), and
# `cimphys.exports.crosssim.to_matrix` / `from_output` map the normalised weights and outputs onto
# CrossSim's conventions.  CrossSim's errors are zero-mean; the notes file carries the static
# (IR-drop and programming) bias to add back.

# %%
BITS = 6
try:
    from simulator import AnalogCore, CrossSimParameters
except ImportError:
    AnalogCore = None
    print("CrossSim is not installed: pip install crosssim-3.2.0-py3-none-any.whl (from the CrossSim 3.2.0 "
          "release); skipping its half")

path = write_crosssim(model, OUT / "crosssim.json", adc_bits=BITS)
notes = json.loads(path.with_name("crosssim.notes.json").read_text())
print(f"wrote {path.name}; static error mean {notes['static_error_mean_rel']:+.4f}, std {notes['static_error_std_rel']:.4f}")
print("approximations:", str(notes["approximations"])[:300], "...")

if AnalogCore is not None:
    params = CrossSimParameters.from_json(path)
    rng = np.random.default_rng(5)
    np.random.seed(5)  # CrossSim draws its device errors from numpy's global generator
    errors = []
    for _ in range(8):
        w = rng.uniform(0.0, 1.0, (ROWS, COLS))
        x = rng.integers(0, 2**16, (64, ROWS)) / (2**16 - 1)
        core = AnalogCore(cx.to_matrix(w, False), params)
        y = cx.from_output(core.matmat(x.T).T, x, False, notes["static_error_mean_rel"])
        errors.append((y - x @ w).ravel())
    errors = np.concatenate(errors)
    ours = model.sel(adc_bits=BITS).squeeze()
    print(f"MVM error at {BITS} bits   mean        std")
    print(f"  cimphys physics   {float(ours.error_mean):+.5f}   {float(ours.error_std):.5f}")
    print(f"  CrossSim          {errors.mean():+.5f}   {errors.std(ddof=1):.5f}")
    # Each side draws its own 8 tiles x 64 inputs x 16 columns: the std is known to a few %,
    # the mean (IR drop and programming bias) to ~10 % (tests/integration/test_crosssim_peer.py
    # holds 48 tiles to 5 %).
    assert abs(errors.std(ddof=1) / float(ours.error_std) - 1) < 0.15
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(errors, bins=60, density=True, alpha=0.7, label="CrossSim")
    grid = np.linspace(errors.min(), errors.max(), 200)
    m, s = float(ours.error_mean), float(ours.error_std)
    ax.plot(grid, np.exp(-0.5 * ((grid - m) / s) ** 2) / (s * np.sqrt(2 * np.pi)), "k-", label="cimphys mean, std")
    ax.set(xlabel="MVM error (normalised output)", ylabel="density", title=f"{BITS}-bit ADC")
    ax.legend()
    plt.show()

# %% [markdown]
# ## aihwkit
#
# The aihwkit file holds the noise model and the forward IO parameters (input and output
# resolution, output bound).  aihwkit models RRAM with its `ReRamWan2022NoiseModel`; the exported
# `coeff_dic` are the polynomial fits of the programming error that the physics measured.

# %%
cfg = aihwkit_config(model, adc_bits=BITS)
write_aihwkit(model, OUT / "aihwkit.json", adc_bits=BITS)
print(json.dumps({k: cfg[k] for k in ("noise_model", "t_inference")}, indent=1)[:600])
try:
    import torch
    from aihwkit.nn import AnalogLinear

    from cimphys.exports.aihwkit import rpu_config, t_inference
except ImportError:
    print("aihwkit is not installed: pip install aihwkit==1.1.0 (it pulls torch); skipping its half")
else:
    torch.manual_seed(0)
    w = np.random.default_rng(3).uniform(0.0, 1.0, (COLS, ROWS))
    layer = AnalogLinear(ROWS, COLS, bias=False, rpu_config=rpu_config(cfg))
    layer.set_weights(torch.tensor(w, dtype=torch.float32))
    layer.eval()
    layer.drift_analog_weights(t_inference(cfg))  # programs the weights with the exported noise model
    x = np.random.default_rng(4).uniform(0.0, 1.0, (64, ROWS))
    y = layer(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    print(f"aihwkit MVM error (its own noise model, normalised): std {np.std(y - x @ w.T):.4f}")
