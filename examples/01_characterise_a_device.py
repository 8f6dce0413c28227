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
# # 1. Characterise a device
#
# From a file of I-V sweeps to a device card you can hand to the rest of cimphys:
#
# 1. read the sweeps with `cimphys.devices.measurements.read_sweeps` (CSV/TSV with units in the
#    header, two-column files, Keysight B1500 exports);
# 2. fit a compact model with `cimphys.devices.calibrate` (bounded least squares, 95 %
#    confidence intervals from the Jacobian);
# 3. look at the residuals;
# 4. write the fitted card (TOML, with a `[provenance]` naming the data and its SHA-256) and load
#    it back as any shipped card;
# 5. fit a second model to the same data and compare.
#
# The data here are **synthetic**: `data/yakopcic_sweeps.csv` was made by
# `data/make_yakopcic_sweeps.py` from a Yakopcic device whose `a1`, `a2`, `ap` differ from the
# shipped `yakopcic2011_oblea` card, plus 1 % seeded current noise, so the fit has a known
# answer.  Put your own file in its place: the steps are the same.  The command line does steps
# 1-4 in one go: `cimphys calibrate data.csv --model yakopcic`.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import cimphys
from cimphys.devices import SinhCell, Yakopcic, calibrate, integrate, pwl
from cimphys.devices.measurements import file_hash, read_sweeps

HERE = Path(__file__).parent if "__file__" in globals() else Path.cwd()  # a kernel runs in examples/
DATA = HERE / "data" / "yakopcic_sweeps.csv"
OUT = Path(tempfile.mkdtemp())  # where the fitted card goes

# %% [markdown]
# ## Read the sweeps
#
# Each `Sweep` holds `voltage` (V), `current` (A) and `time` (s) in SI units, whatever units the
# header named (here mA and ms).  A dynamic model needs the time column: it integrates the state
# under the measured voltage.

# %%
sweeps = read_sweeps(DATA)
for s in sweeps:
    print(f"lines {s.lines}: {s.voltage.size} points, V {s.voltage.min():+.2f}..{s.voltage.max():+.2f} V, "
          f"|I| max {np.abs(s.current).max() * 1e3:.3f} mA, {s.time[-1] * 1e3:.2f} ms")

fig, ax = plt.subplots(figsize=(5, 3.5))
for k, s in enumerate(sweeps):
    ax.plot(s.voltage, s.current * 1e3, ".", ms=3, label=f"sweep {k + 1}")
ax.set(xlabel="voltage (V)", ylabel="current (mA)", title="the data (synthetic)")
ax.legend()
plt.show()

# %% [markdown]
# ## Fit the Yakopcic model
#
# `calibrate(card, forward, x, y, names)` fits the parameters `names` of a card.  `forward(card, x)`
# evaluates the model of a candidate card; here it integrates each sweep from the state 0.5 under
# its own measured voltage (piecewise linear between samples).  The starting point is the
# shipped card, the bounds are the ranges its model declares.

# %%
v = np.concatenate([s.voltage for s in sweeps])
i_meas = np.concatenate([s.current for s in sweeps])
STATE0 = 0.5  # the device's state when the sweeps started (dimensionless, 0..1)


def yakopcic_current(card, _v):
    model = Yakopcic.from_card(card)
    return np.concatenate([integrate(model, pwl(s.time, s.voltage), STATE0, rtol=1e-9, atol=1e-12).current.values[:, 0]
                           for s in sweeps])


start = cimphys.load_device("yakopcic2011_oblea")
label = f"{DATA.name} (sha256 {file_hash(DATA)})"
yak_card, yak = calibrate(start, yakopcic_current, v, i_meas, ("a1", "a2", "ap"), data=label)
for name in yak.names:
    lo, hi = yak.ci[name]
    print(f"{name:3s} = {yak.values[name]:10.5g}   95 % CI [{lo:.5g}, {hi:.5g}]   (card started at {start[name]:g})")
print(f"residual rms {yak.residual_rms:.3g} of the rms current, {yak.nfev} model evaluations")

# %% [markdown]
# The data were made with `a1 = 0.2`, `a2 = 0.14`, `ap = 5000`: each should lie inside its
# 95 % interval (for three parameters at once, one of them falls outside more often than 1 time in
# 20; other noise seeds of the data script put the fit 0.2 to 2.8 standard errors from the truth).  (`b` is left alone: at `b V < 0.1` the card's `sinh(b V)` is linear, so only the
# product `a1 b` is identifiable, and fitted together `a1` and `b` come back with intervals that
# span zero: the confidence intervals tell you so.)

# %%
truth = {"a1": 0.2, "a2": 0.14, "ap": 5000.0}
for name, value in truth.items():
    lo, hi = yak.ci[name]
    z = (yak.values[name] - value) / yak.stderr[name]
    print(f"{name}: truth {value:g} {'inside' if lo <= value <= hi else 'outside'} [{lo:.5g}, {hi:.5g}], "
          f"fit - truth = {z:+.2f} standard errors")
    # Three standard errors: a 95 % interval misses its truth 1 time in 20 (for three correlated
    # parameters, one of them more often), three standard errors 3 times in 1000.
    assert abs(z) < 3.0

# %% [markdown]
# ## Residuals
#
# Residuals that look like noise (no structure against voltage or time) say the law fits; a
# pattern says the law misses something.

# %%
i_yak = yakopcic_current(yak_card, v)
fig, (ax, res) = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
ax.plot(v, i_meas * 1e3, ".", ms=3, label="data")
ax.plot(v, i_yak * 1e3, "-", lw=1, color="k", label="Yakopcic fit")
ax.set(xlabel="voltage (V)", ylabel="current (mA)", title="data and fit")
ax.legend()
res.plot(v, (i_yak - i_meas) * 1e3, ".", ms=3)
res.set(xlabel="voltage (V)", ylabel="fit - data (mA)", title="residuals")
plt.show()

# %% [markdown]
# ## Write the card and load it back
#
# `Card.to_toml()` writes the card with its provenance: the data file and its hash, the fitted
# keys, the method, the residual and the intervals.  `cimphys.load_device(path)` checks every key
# and range on the way back in, as for a shipped card.

# %%
path = OUT / "yakopcic_fitted.toml"
path.write_text(yak_card.to_toml())
again = cimphys.load_device(path)
print(path.read_text().split("[provenance]")[1])
assert again["a1"] == yak_card["a1"]

# %% [markdown]
# ## A second model on the same data
#
# A static law, `I = k sinh(a V)` (`SinhCell`), has no state: it cannot draw a pinched hysteresis
# loop.  Fitted to the same points it finds the best single curve through both branches, and its
# residual is many times the Yakopcic fit's.  The sinh law ships no card, so the start is a card
# made from a mapping (`cimphys.cards.card_from_mapping`), and the bounds are narrowed to a
# physical range (A for `k`, 1/V for `a`) instead of the model's declared ones.

# %%
from cimphys.cards import card_from_mapping

sinh_start = card_from_mapping(
    {"model": {"name": "sinh"}, "parameters": {"k": 1e-4, "a": 2.0},
     "provenance": {"source": "first guess", "url": "none", "fitted": "none", "method": "by hand",
                    "residual": "not applicable"}},
    "device", "notebook", "sinh_guess")
sinh_card, sinh = calibrate(sinh_start, lambda c, volts: SinhCell.from_card(c).current(volts), v, i_meas,
                            ("k", "a"), bounds={"k": (1e-9, 1e-1), "a": (0.1, 20.0)}, data=label)
print(f"Yakopcic: residual rms {yak.residual_rms:.3g} of the rms current ({len(yak.names)} parameters)")
print(f"sinh    : residual rms {sinh.residual_rms:.3g} of the rms current ({len(sinh.names)} parameters)")
assert sinh.residual_rms > 3 * yak.residual_rms  # the static law misses the hysteresis

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(v, i_meas * 1e3, ".", ms=3, color="0.6", label="data")
ax.plot(v, i_yak * 1e3, "-", lw=1, label=f"Yakopcic (residual {yak.residual_rms:.1%})")
order = np.argsort(v)
ax.plot(v[order], SinhCell.from_card(sinh_card).current(v[order]) * 1e3, "--", lw=1,
        label=f"k sinh(aV) (residual {sinh.residual_rms:.1%})")
ax.set(xlabel="voltage (V)", ylabel="current (mA)", title="two models, same data")
ax.legend(fontsize=8)
plt.show()
