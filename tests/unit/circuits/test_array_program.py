"""Row-parallel write-verify through the array (:mod:`cimphys.circuits.array_program`) against
the cell-by-cell scheme of :mod:`cimphys.circuits.array_write`, its bias pattern, the write
disturb of V/3 and V/2 on a device with asymmetric thresholds (VTEAM), and a 1T1R write pulse
against an ngspice transient."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from cimphys.cards import load_device
from cimphys.circuits.array_program import ArrayWriter, row_bias_voltages, write_verify_rows
from cimphys.circuits import spice
from cimphys.circuits.array_write import apply_pulse, write_verify
from cimphys.circuits.nodal import Network
from cimphys.devices import Level1Mosfet, StanfordPKU
from cimphys.devices.dynamics import model_from_card
from cimphys.errors import InputError


@pytest.fixture(scope="module")
def pku():
    return StanfordPKU.from_card(load_device("guan2012_stanford_pku"))


def _targets(model, shape, seed):
    """Log-spaced read targets inside the Stanford window (read at 0.2 V)."""
    g_lo, g_hi = model.current(0.2, 1.7e-9) / 0.2, model.current(0.2, 0.2e-9) / 0.2
    frac = np.random.default_rng(seed).uniform(0.2, 0.8, shape)
    return np.exp(np.log(g_lo) + frac * (np.log(g_hi) - np.log(g_lo)))


def test_row_bias_pattern_and_bad_input():
    v_in, v_bl = row_bias_voltages((3, 4), 1, [1.8, 0.0, 1.5, 0.0], "V/3")
    np.testing.assert_allclose(v_in, [0.6, 1.8, 0.6])
    np.testing.assert_allclose(v_bl, [0.0, 1.2, 0.3, 1.2])  # pulsed cells see 1.8 and 1.5 V
    v_in, v_bl = row_bias_voltages((2, 2), 0, [-1.0, 0.0], "V/2")
    np.testing.assert_allclose(v_in, [-1.0, -0.5])
    np.testing.assert_allclose(v_bl, [0.0, -0.5])
    with pytest.raises(InputError, match="one polarity"):
        row_bias_voltages((2, 2), 0, [1.0, -1.0])
    with pytest.raises(InputError, match="inhibit"):  # 0.5 V beside 1.8 V: the others would see > V/3
        row_bias_voltages((2, 2), 0, [1.8, 0.5])
    with pytest.raises(InputError, match="scheme"):
        row_bias_voltages((2, 2), 0, [1.0, 0.0], "V/4")


def test_a_single_pulsed_cell_is_the_cell_by_cell_pulse(pku):
    """One cell pulsed in its row: the bias is write_bias_voltages' and the writer's pulse is
    apply_pulse's (the same circuit and integration; the writer only skips cells whose rate is
    zero, which the integrator leaves where they are)."""
    from cimphys.circuits.array_write import write_bias_voltages

    m, n = 3, 3
    gap0 = np.random.default_rng(1).uniform(0.5e-9, 1.6e-9, (m, n))
    v_in, v_bl = row_bias_voltages((m, n), 1, [0.0, -1.4, 0.0], "V/3")
    ref_in, ref_bl = write_bias_voltages((m, n), -1.4, 1, 1, "V/3")
    np.testing.assert_allclose(v_in, ref_in, rtol=1e-15)
    np.testing.assert_allclose(v_bl, ref_bl, atol=1e-15)
    wires = dict(r_wl=5.0, r_bl=5.0, r_driver=10.0, r_sense=10.0)
    x_ref, ds = apply_pulse(pku, gap0, v_in, v_bl, 50e-9, substeps=4, **wires)
    x, energy = ArrayWriter(pku, (m, n), **wires).pulse(gap0, v_in, v_bl, 50e-9, substeps=4)
    # the same node voltages to Newton's tolerance (1e-10 relative), so the same states to ~1e-9
    np.testing.assert_allclose(x, x_ref, rtol=1e-9, atol=0.0)
    assert x[1, 1] > gap0[1, 1] + 0.1e-9  # the selected cell resets
    assert energy == pytest.approx(float(ds.energy_sources), rel=1e-8)


@pytest.mark.slow
def test_row_parallel_equals_cell_by_cell_with_ideal_wires(pku):
    """Ideal wires and V/3 below the Stanford cell's minimum field: no cell outside the pulsed
    ones moves and each pulsed cell sees exactly its own amplitude, so every cell gets the same
    pulses in both schemes and ends in the same state; the row-parallel chip time is shorter."""
    m, n = 3, 4
    gap0 = np.full((m, n), 1.7e-9)
    target = _targets(pku, (m, n), 3)
    kw = dict(rtol=0.05, v_set=(1.35, 0.02, 2.0), r_wl=0.0, r_bl=0.0, r_driver=0.0, r_sense=0.0)
    x_cell, ds_cell = write_verify(pku, gap0, target, **kw)
    x_row, ds_row = write_verify_rows(pku, gap0, target, **kw)
    assert ds_row.done.values.all() and ds_cell.done.values.all()
    np.testing.assert_array_equal(ds_row.writes.values, ds_cell.writes.values)
    # cell voltages v_w - (v_w - a) against a: one rounding, ~1e-16 relative in the state
    np.testing.assert_allclose(x_row, x_cell, rtol=1e-12, atol=0.0)
    np.testing.assert_array_equal(ds_row.disturb.values, 0.0)
    assert ds_row.attrs["pulses"] < int(ds_cell.writes.sum())
    assert float(ds_row.time) < float(ds_cell.time)


@pytest.mark.slow
def test_row_parallel_with_wires_differs_by_the_rows_ir_drop(pku):
    """With 1 ohm wires the pulsed cells of a row share the word line: their summed current
    drops more voltage than one cell's, so cells take other pulse counts than cell by cell,
    but both schemes verify every cell through the array to the same tolerance."""
    m, n = 2, 3
    gap0 = np.full((m, n), 1.7e-9)
    target = _targets(pku, (m, n), 3)
    kw = dict(rtol=0.05, v_set=(1.35, 0.02, 2.0), r_wl=1.0, r_bl=1.0)
    _, ds_cell = write_verify(pku, gap0, target, **kw)
    x, ds_row = write_verify_rows(pku, gap0, target, **kw)
    assert ds_row.done.values.all()
    # a read-back verified within 5 % can be moved by later rows' states through the wires
    # (sneak currents, IR drop): measured <= 5.3 % here
    assert np.abs(ds_row.error.values).max() < 0.06
    assert np.abs(ds_cell.error.values).max() < 0.06
    assert not np.array_equal(ds_row.writes.values, ds_cell.writes.values)
    np.testing.assert_allclose(ds_row.g_read.values, ds_cell.g_read.values, rtol=0.12)


def test_v3_disturbs_vteam_and_v2_does_not():
    """VTEAM (Pickett fit) turns off above v_off = +0.3 V and on below v_on = -1.5 V.  A V/3
    SET pulse of -1.8 V puts +0.6 V (-V_w/3 of the opposite sign) on every cell outside the
    selected row and columns: above v_off, they move.  V/2 puts 0 V there and -0.9 V on the
    half-selected cells (above v_on): nothing moves but the pulsed cells."""
    vt = model_from_card(load_device("kvatinsky2015_vteam_pickett"))
    m, n = 4, 4
    x0 = np.full((m, n), 1.5e-9)
    a = np.array([-1.8, 0.0, -1.8, 0.0])
    for scheme, moved_elsewhere in (("V/3", True), ("V/2", False)):
        writer = ArrayWriter(vt, (m, n), r_wl=2.5, r_bl=2.5)
        v_in, v_bl = row_bias_voltages((m, n), 1, a, scheme)
        x, _ = writer.pulse(x0, v_in, v_bl, 10e-9)
        pulsed = np.zeros((m, n), bool)
        pulsed[1, [0, 2]] = True
        assert (x[pulsed] < x0[pulsed]).all()  # set (towards x_on)
        assert (x[~pulsed] != x0[~pulsed]).any() == moved_elsewhere, scheme
        if moved_elsewhere:
            others = np.ones((m, n), bool)
            others[1] = False
            others[:, [0, 2]] = False
            assert (x[others] > x0[others]).all()  # turned towards off by +V/3


def test_bad_arguments(pku):
    with pytest.raises(InputError, match="set_polarity"):
        write_verify_rows(pku, np.full((2, 2), 1.7e-9), np.full((2, 2), 1e-4), set_polarity=0)
    with pytest.raises(InputError, match="g_target"):
        write_verify_rows(pku, np.full((2, 2), 1.7e-9), np.full((2, 3), 1e-4))


@pytest.mark.slow
@pytest.mark.ngspice
def test_1t1r_pulse_matches_an_ngspice_transient(pku, needs_ngspice, tmp_path):
    """2 x 2 1T1R Stanford array, V/3 SET of cell (0, 0) through its transistor (gate 2.5 V; the
    NMOS in saturation limits the current, a compliance; row 1's gates at 0 V), against ngspice:
    the same wires, the level-1 NMOS (junctions off) and the card's Stanford equations as a B
    source with the gap on a capacitor.  ngspice starts from its operating point (no ``uic``:
    the inner nodes of the off cells float until it is solved)."""
    from test_array_write import _pku_cell_lines

    nmos = Level1Mosfet.from_card(load_device("level1_access_nmos"))
    p = {k: float(v) for k, v in load_device("guan2012_stanford_pku").parameters.items()}
    m, n, width = 2, 2, 200e-9
    gap0 = np.full((m, n), 1.7e-9)
    v_in, v_bl = row_bias_voltages((m, n), 0, [2.6, 0.0], "V/3", grounded=True)
    v_gate = np.array([2.5, 0.0])
    wires = dict(r_wl=5.0, r_bl=5.0, r_driver=10.0, r_sense=10.0)
    net = Network.build((m, n), v_bl_end=v_bl, **wires)
    cells = []
    for i in range(m):
        for j in range(n):
            cells += _pku_cell_lines(p, i, j, f"w{i}_{j}", f"y{i}_{j}", gap0[i, j])
            cells.append(f"mc{i}_{j} y{i}_{j} g{i} b{i}_{j} 0 nacc w={nmos.w!r} l={nmos.l!r}")
    names = " ".join(f"v(x{i}_{j})" for i in range(m) for j in range(n))
    text = ["* 1T1R array write pulse", *spice._wl_lines(net, v_in), *spice._bl_lines(net), *cells,
            *spice.access_extra(nmos, v_gate, m), ".options reltol=1e-7 abstol=1e-15 vntol=1e-9", ".control",
            "set numdgt=15", f"tran {width / 4000!r} {width!r} 0 {width / 4000!r}", f"wrdata x.txt {names}",
            "quit", ".endc", ".end"]
    (tmp_path / "w.cir").write_text("\n".join(text) + "\n")
    subprocess.run(["ngspice", "-b", "w.cir"], cwd=tmp_path, capture_output=True, timeout=600, check=True)
    ref = np.loadtxt(tmp_path / "x.txt")[-1, 1::2].reshape(m, n) * 1e-9
    writer = ArrayWriter(pku, (m, n), access=(nmos, 2.5), **wires)
    moved = gap0[0, 0] - ref[0, 0]
    assert moved > 0.3e-9  # the selected cell sets (ngspice: 1.70 -> 1.31 nm)
    # Lie splitting is first order: the error falls like 1 / substeps towards ngspice's answer
    steps = np.array([16, 64])
    errs = [abs(writer.pulse(gap0, v_in, v_bl, width, substeps=int(k), row=0)[0][0, 0] - ref[0, 0]) for k in steps]
    slope = np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert -1.3 < slope < -0.7, errs
    assert errs[-1] < 0.02 * moved, errs  # 64 substeps: within 2 % of the move
    x, _ = writer.pulse(gap0, v_in, v_bl, width, substeps=8, row=0)
    np.testing.assert_allclose(np.delete(ref.ravel(), 0), np.delete(gap0.ravel(), 0), atol=1e-15)
    np.testing.assert_array_equal(np.delete(x.ravel(), 0), np.delete(gap0.ravel(), 0))


def test_touch_up_pass_brings_back_cells_that_later_rows_pushed_out():
    """Rows written later add their current to the shared bit lines, so an earlier row's cells
    read lower through the finished array than at their own verify (40 ohm wires per cell on a
    16 x 16 VTEAM array make the shift several percent).  A verify-and-touch-up pass over the
    whole array re-pulses exactly the cells out of tolerance: after it every cell reads within
    the 5 % tolerance through the finished array (the same read the first pass failed on)."""
    vt = model_from_card(load_device("kvatinsky2015_vteam_pickett"))
    m = 16
    target = 1.0 / np.exp(np.random.default_rng(1).uniform(np.log(110e3), np.log(280e3), (m, m)))
    kw = dict(rtol=0.05, v_set=(1.6, 0.02, 2.5), v_reset=(0.4, 0.02, 0.59), set_polarity=-1, substeps=1,
              r_wl=40.0, r_bl=40.0, width=10e-9, max_pulses=100, scheme="V/2")
    x1, ds1 = write_verify_rows(vt, np.full((m, m), 3e-9), target, **kw)
    x2, ds2 = write_verify_rows(vt, np.full((m, m), 3e-9), target, touch_up=2, **kw)
    first = np.abs(ds2.error_first_pass.values)
    np.testing.assert_allclose(first, np.abs(ds1.error.values), rtol=0, atol=1e-12)  # same first pass
    assert (first > 0.05).sum() >= 5  # the later rows pushed cells out of tolerance
    assert np.abs(ds2.error.values).max() <= 0.05 and bool(ds2.done.all())
    touched = ds2.writes.values > ds1.writes.values
    assert touched.any() and np.all(first[touched.any(axis=1)].max(axis=1) > 0.05)  # only rows with a miss
    assert ds2.attrs["touch_up_passes"] >= 1 and ds2.attrs["reads"] > ds1.attrs["reads"]
