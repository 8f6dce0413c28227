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
# # 2. Validate a circuit
#
# A crossbar with the resistance of its wires, solved by nodal analysis and checked against
# ngspice; then the two things a memory designer asks of an array: how far sneak paths eat the
# read margin, and whether a V/3 write disturbs the cells it does not select.
#
# Geometry and signs are those of the reference crossbar (`DESIGN.md`): word line `i` is driven
# at its column-0 end, bit line `j` is sensed at its row `M-1` end into a virtual ground, and
# `i_out` is positive out of the array into the sense node.

# %%
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import cimphys
from cimphys.circuits import Crossbar, write_bias
from cimphys.circuits.array_write import apply_pulse, write_bias_voltages
from cimphys.circuits.sneak import linear_cells, read_margin
from cimphys.devices import VTEAM

rng = np.random.default_rng(7)

# %% [markdown]
# ## A 32 x 32 array with wires
#
# Cells between 10 kOhm and 300 kOhm, 2.5 Ohm of wire per cell segment on both lines (the
# default card's), 5 Ohm drivers and 10 Ohm sense inputs, every word line at 0.2 V.

# %%
M, N = 32, 32
G = rng.uniform(1 / 300e3, 1 / 10e3, size=(M, N))  # S
xb = Crossbar(G, r_wl=2.5, r_bl=2.5, r_driver=5.0, r_sense=10.0)
v_in = np.full(M, 0.2)  # V
sol = xb.solve(v_in)
ideal = v_in @ G  # what the array would give without wires: i_out = G^T v
loss = 1 - sol.i_out / ideal
print(f"column currents {sol.i_out.min() * 1e3:.3f} .. {sol.i_out.max() * 1e3:.3f} mA; "
      f"IR-drop loss {loss.min():.1%} .. {loss.max():.1%}")

# %% [markdown]
# The voltage each cell actually sees is `v_wl - v_bl`: the IR drop along the word lines (left
# to right) and the bit lines (top to bottom) leaves the far corner with the least.

# %%
v_cell = sol.v_wl - sol.v_bl
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
for ax, data, title in zip(axes, (sol.v_wl, sol.v_bl, v_cell), ("word-line node (V)", "bit-line node (V)",
                                                                  "cell voltage (V)")):
    im = ax.imshow(data, cmap="viridis")
    ax.set(title=title, xlabel="column (bit line)", ylabel="row (word line)")
    fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# The same solution as an xarray Dataset, with units on every variable, saved as NetCDF:

# %%
ds = sol.to_xarray()
print({name: ds[name].attrs.get("units") for name in ds.data_vars})
cimphys.save(ds, Path(tempfile.mkdtemp()) / "read.nc")

# %% [markdown]
# ## The same array in ngspice
#
# `Crossbar.to_spice` writes the array as an ngspice netlist (one resistor per cell and per wire
# segment, the sources and sense nodes of the reference geometry); `cimphys.circuits.spice`
# runs it (`ngspice -b`) and reads the node voltages and sense currents back.  Both solve the
# same linear network, so they agree to ngspice's own iteration tolerance.

# %%
from cimphys.circuits import spice

workdir = Path(tempfile.mkdtemp())
netlist = xb.to_spice(workdir / "crossbar.cir", v_in, title="32x32 with wires")
print(netlist.read_text().splitlines()[:6])
if shutil.which("ngspice") is None:
    print("ngspice is not installed: skipping the comparison "
          "(apt-get install ngspice, or conda install -c conda-forge ngspice)")
else:
    v_wl, v_bl, i_out = spice.crossbar_from_values(spice.run_ngspice(netlist), xb.network)
    err = np.max(np.abs(sol.i_out - i_out)) / np.max(np.abs(i_out))
    err_v = np.max(np.abs(sol.v_wl - v_wl)) / np.max(np.abs(v_wl))
    print(f"cimphys vs ngspice: i_out max relative difference {err:.1e}, v_wl {err_v:.1e}")
    # ngspice iterates to reltol 1e-9: 1e-7 of the largest value leaves it two decades.
    assert err < 1e-7 and err_v < 1e-7
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(i_out * 1e3, sol.i_out * 1e3, "o", ms=4)
    ax.plot(i_out * 1e3, i_out * 1e3, "k-", lw=0.8)
    ax.set(xlabel="ngspice i_out (mA)", ylabel="cimphys i_out (mA)", title="sense currents, 32 columns")
    plt.show()

# %% [markdown]
# ## Sneak paths
#
# In an array without selectors and with floating unselected lines, the current read from one
# cell also flows through the others ("sneak paths").  `read_margin` reads the far cell (row 0,
# column N-1) ON and OFF with every other cell ON (the worst case) through a load resistor and
# reports the margin `(V_on - V_off) / V_read` against array size.

# %%
sizes = [2, 4, 8, 16, 32]
g_on, g_off = 1 / 1e3, 1 / 300e3
margins = {}
for r_wire in (0.0, 2.5):
    m = read_margin(sizes, linear_cells(g_on, g_off), v_read=0.2, r_load=1e3, r_wl=r_wire, r_bl=r_wire)
    margins[r_wire] = m.margin.values
    print(f"r_wire {r_wire} Ohm: margin " + ", ".join(f"{n}x{n} {v:.3f}" for n, v in zip(sizes, m.margin.values)))
fig, ax = plt.subplots(figsize=(5, 3.5))
for r_wire, values in margins.items():
    ax.semilogx(sizes, values, "o-", base=2, label=f"{r_wire} Ohm per segment")
ax.set(xlabel="array size N (N x N)", ylabel="read margin (V_on - V_off) / V_read", title="sneak paths, floating lines")
ax.legend()
plt.show()
assert np.all(np.diff(margins[0.0]) < 0)  # the margin shrinks as the array grows

# %% [markdown]
# ## A V/3 write and its disturb
#
# To write cell `(row, col)` a V/2 scheme drives the unselected lines at `V/2`; V/3 drives the
# unselected word lines at `V/3` and the unselected bit lines at `2V/3`, so no unselected cell
# sees more than `V/3`.  `write_bias` solves the array (wires included) and reports the voltage
# on every cell by role:

# %%
SEL = (3, 5)
V_WRITE = 0.9  # V
for scheme in ("V/2", "V/3"):
    wb = write_bias(G[:8, :8], V_WRITE, *SEL, scheme=scheme, r_wl=2.5, r_bl=2.5)
    print(f"{scheme}: selected cell {float(wb.v_selected_min):.3f} V, worst half-selected "
          f"{float(wb.v_half_max):.3f} V, write margin {float(wb.write_margin):.3f} V")

# %% [markdown]
# Now apply the pulse to VTEAM cells (the `kvatinsky2015_vteam_pickett` card: switching
# threshold `v_off = 0.3 V`).  `apply_pulse` cuts the pulse into substeps, solves the array with
# every cell's I-V at its present state, and integrates each cell's state under the voltage it
# actually sees.  With V/2 the half-selected cells see 0.45 V, above threshold, and drift; with
# V/3 they see at most 0.3 V and stay where they were.

# %%
vteam = VTEAM.from_card(cimphys.load_device("kvatinsky2015_vteam_pickett"))
shape = (8, 8)
state0 = np.full(shape, 1.0e-9)  # m: every cell at a third of the 3 nm window
moved = {}
for scheme in ("V/2", "V/3"):
    wl, bl = write_bias_voltages(shape, V_WRITE, *SEL, scheme=scheme)
    state, pulse = apply_pulse(vteam, state0, wl, bl, width=20e-9, substeps=8, r_wl=2.5, r_bl=2.5)
    moved[scheme] = np.abs(pulse.delta_state.values)
    others = moved[scheme].copy()
    others[SEL] = 0.0
    print(f"{scheme}: selected cell moved {moved[scheme][SEL] * 1e9:.3f} nm, worst other cell "
          f"{others.max() * 1e9:.2e} nm; the sources delivered {float(pulse.energy_sources) * 1e12:.2f} pJ")
    moved[scheme + " others"] = others.max()
# V/2 disturbs its half-selected cells by a few % of the window; V/3 leaves them (0.30 V, at the
# threshold after the IR drop) a million times less
assert moved["V/3 others"] < 1e-6 * moved["V/2 others"]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
for ax, scheme in zip(axes, ("V/2", "V/3")):
    d = moved[scheme]
    im = ax.imshow(d * 1e9, cmap="magma")
    ax.set(title=f"{scheme}: |state change| (nm)", xlabel="column", ylabel="row")
    fig.colorbar(im, ax=ax)
plt.show()
