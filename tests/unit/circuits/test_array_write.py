"""A write pulse through the array (:mod:`cimphys.circuits.array_write`) against an ngspice
transient of the same netlist with the same behavioural Stanford cells, and its physics limits."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from cimphys.cards import load_device
from cimphys.circuits import spice
from cimphys.circuits.array_write import apply_pulse, read_through_array, write_bias_voltages, write_verify
from cimphys.circuits.nodal import Network
from cimphys.devices import StanfordPKU

KB_Q = 8.617333262e-5


@pytest.fixture
def pku():
    return StanfordPKU.from_card(load_device("guan2012_stanford_pku"))


def _pku_cell_lines(p, i, j, top, bottom, gap0):
    """The card's equations (r_th = 0: T = t0) as an ngspice B-source cell with its integrated
    gap on a 1 F capacitor (node x{i}_{j}, in nm)."""
    g = f"min(max(1e-9*v(x{i}_{j}),{p['g_min']!r}),{p['g_max']!r})"
    v = f"(v({top})-v({bottom}))"
    kt = f"({KB_Q!r}*{p['t0']!r})"
    gam = f"((({v})<0 ? {p['gamma_reset']!r} : {p['gamma0']!r})-{p['beta']!r}*pow({g}/{p['g1']!r},3))"
    s = f"min(max(({gam}*abs({v})/{p['t_ox']!r}/{p['f_min']!r}-1)/{p['f_min_width']!r}+0.5,0),1)"
    rate = (f"-{p['vel0']!r}*exp(-{p['ea']!r}/{kt})*sinh({gam}*{p['a0']!r}/{p['t_ox']!r}*{v}/{kt})"
            f"*{s}*{s}*(3-2*{s})*1e9")
    return [
        f"bc{i}_{j} {top} {bottom} i={p['i0']!r}*exp(-{g}/{p['g0']!r})*sinh({v}/{p['v0']!r})",
        f"bx{i}_{j} 0 x{i}_{j} i={rate}",
        f"cx{i}_{j} x{i}_{j} 0 1",
        f".ic v(x{i}_{j})={float(gap0) * 1e9!r}",
    ]


@pytest.mark.slow
@pytest.mark.ngspice
def test_pulse_matches_an_ngspice_transient(pku, needs_ngspice, tmp_path):
    p = {k: float(v) for k, v in load_device("guan2012_stanford_pku").parameters.items()}
    m, n, width = 3, 3, 200e-9
    gap0 = np.full((m, n), 0.5e-9)
    v_in, v_bl = write_bias_voltages((m, n), -1.4, 1, 1, "V/3")  # RESET of cell (1, 1)
    wires = dict(r_wl=5.0, r_bl=5.0, r_driver=10.0, r_sense=10.0)
    net = Network.build((m, n), v_bl_end=v_bl, **wires)
    cells = [line for i in range(m) for j in range(n)
             for line in _pku_cell_lines(p, i, j, f"w{i}_{j}", f"b{i}_{j}", gap0[i, j])]
    names = " ".join(f"v(x{i}_{j})" for i in range(m) for j in range(n))
    text = ["* array write pulse", *spice._wl_lines(net, v_in), *spice._bl_lines(net), *cells,
            ".options reltol=1e-7 abstol=1e-15 vntol=1e-9", ".control", "set numdgt=15",
            f"tran {width / 4000!r} {width!r} 0 {width / 4000!r} uic", f"wrdata x.txt {names}", "quit", ".endc", ".end"]
    (tmp_path / "w.cir").write_text("\n".join(text) + "\n")
    subprocess.run(["ngspice", "-b", "w.cir"], cwd=tmp_path, capture_output=True, timeout=600, check=True)
    table = np.loadtxt(tmp_path / "x.txt")
    ref = table[-1, 1::2].reshape(m, n) * 1e-9
    x, ds = apply_pulse(pku, gap0, v_in, v_bl, width, substeps=64, **wires)
    moved = ref - gap0
    assert moved[1, 1] > 0.2e-9  # the selected cell resets (to where F_min stops it)
    # Half-selected and unselected cells stay (|V| ~ 0.47-0.93 V, below the minimum field).
    np.testing.assert_array_equal(np.delete(x.ravel(), 4), np.delete(gap0.ravel(), 4))
    np.testing.assert_allclose(np.delete(ref.ravel(), 4), np.delete(gap0.ravel(), 4), atol=1e-15)
    # Lie splitting is first order: the error of the selected cell falls like 1 / substeps
    # (measured 2.3e-11, 6.3e-12, 1.6e-12 m at 16, 64, 256) towards ngspice's answer.
    steps = np.array([8, 32, 128])
    errs = [abs(apply_pulse(pku, gap0, v_in, v_bl, width, substeps=int(k), **wires)[0][1, 1] - ref[1, 1])
            for k in steps]
    slope = np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert -1.25 < slope < -0.75, errs
    assert errs[-1] < 0.015 * moved[1, 1]  # 128 substeps: 1.1 % of the move measured (ngspice: ~1e-4)
    assert 0 < float(ds.energy_cells) < float(ds.energy_sources)  # the wires take the rest


def test_v3_write_sets_one_cell_and_leaves_the_half_selected_ones(pku):
    """V/3 SET of one cell of a 4 x 4 HRS array: the selected gap closes, every other cell sees at
    most V/3 (below F_min) and keeps its gap exactly; the voltage pattern is the scheme's."""
    m, n = 4, 4
    gap0 = np.full((m, n), 1.7e-9)
    v_in, v_bl = write_bias_voltages((m, n), 1.8, 2, 1, "V/3")  # the release's SET pulse height
    x, ds = apply_pulse(pku, gap0, v_in, v_bl, 100e-9, substeps=8, r_wl=1.0, r_bl=1.0)
    assert x[2, 1] < 1.0e-9
    assert np.array_equal(np.delete(x.ravel(), 2 * n + 1), np.delete(gap0.ravel(), 2 * n + 1))
    v0 = ds.v_cell.values[0]
    # 1 ohm wires, 0.75 mA in HRS over ~4 ohm of line: an IR drop of ~3 mV (0.2 %)
    assert v0[2, 1] == pytest.approx(1.8, rel=5e-3) and v0[2, 1] < 1.8
    others = np.delete(np.abs(v0).ravel(), 2 * n + 1)
    np.testing.assert_allclose(others, 0.6, rtol=5e-3)  # V/3 on every other cell
    assert set(ds.data_vars) >= {"v_cell", "i_cell", "state", "delta_state", "energy_cells", "energy_sources"}
    assert all("units" in ds[name].attrs for name in ds.data_vars)


def test_bias_voltages_and_bad_input():
    v_in, v_bl = write_bias_voltages((3, 2), 0.9, 0, 1, "V/2")
    np.testing.assert_allclose(v_in, [0.9, 0.45, 0.45])
    np.testing.assert_allclose(v_bl, [0.45, 0.0])
    with pytest.raises(Exception, match="scheme"):
        write_bias_voltages((3, 2), 0.9, 0, 1, "V/4")


@pytest.mark.slow
def test_write_verify_programs_a_small_matrix_through_the_array(pku):
    """3 x 3 array from HRS to log-spaced targets inside the window, V/3, read back through the
    array: every cell ends within 5 % of its target (the read-back, with IR drop and sneak
    currents, is what is verified); V/3 half-selection stays below F_min, so no disturb."""
    from cimphys.devices.variability import EnduranceWindow

    m, n = 3, 3
    gap0 = np.full((m, n), 1.7e-9)
    g_lo = read_through_array(pku, np.full((m, n), 1.7e-9), 0.2)
    g_hi = read_through_array(pku, np.full((m, n), 0.2e-9), 0.2)
    rng = np.random.default_rng(3)
    frac = rng.uniform(0.2, 0.8, (m, n))
    target = np.exp(np.log(g_lo) + frac * (np.log(g_hi) - np.log(g_lo)))
    window = EnduranceWindow(cycles=(1.0, 1e6), g_on=(4e-3, 2e-3), g_off=(1e-5, 2e-5))
    x, ds = write_verify(pku, gap0, target, rtol=0.05, endurance=window, v_set=(1.35, 0.02, 2.0))
    assert ds.done.values.all(), ds.error.values
    assert np.abs(ds.error.values).max() <= 0.05 + 1e-9
    # the final read-back equals an independent read of the returned states
    np.testing.assert_allclose(ds.g_read.values, read_through_array(pku, x, 0.2), rtol=1e-12)
    assert (ds.writes.values >= 1).all() and float(ds.energy) > 0 and float(ds.time) > 0
    np.testing.assert_array_equal(ds.disturb.values, 0.0)
    assert ds.g_on_window.shape == (m, n)


def test_a_selector_shields_the_half_selected_memory_elements(pku):
    """1S1R (selector + Stanford cell at its state): in a V/2 write the selector takes most of a
    half-selected cell's voltage, so its memory element sees less than the bare cell would."""
    from cimphys.devices import SelectorMemoryCell, SinhSelector

    m, n = 3, 3
    gap0 = np.full((m, n), 1.7e-9)
    sel = SinhSelector(i_0=1e-8, v_0=0.1)
    v_in, v_bl = write_bias_voltages((m, n), 3.0, 1, 1, "V/2")
    x, ds = apply_pulse(pku, gap0, v_in, v_bl, 50e-9, substeps=4, selector=sel)
    v0 = ds.v_cell.values[0]
    vm = SelectorMemoryCell(sel, pku, gap0).memory_voltage(v0)
    # half-selected on the row: 1.5 V on the cell, 0.73 V on its memory element (below the
    # ~1.4 V the Stanford cell needs at HRS); the selected one: 3 V, 1.8 V on its memory: it sets
    assert abs(vm[1, 0]) < 0.55 * abs(v0[1, 0])
    np.testing.assert_array_equal(np.delete(x.ravel(), 4), np.delete(gap0.ravel(), 4))
    assert x[1, 1] < 0.5e-9
