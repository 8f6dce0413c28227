"""``Crossbar.to_spice``: the netlist of any array the solvers take, run through ngspice.

Every kind of cell and wire the solvers accept is written by the one API, run by ``ngspice -b``
and compared with cimphys's own solution of the same ``Crossbar``.
"""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits import Crossbar, spice
from cimphys.devices import Level1Mosfet, OneTransistorOneResistor, SelectorResistorCell, SinhCell, SinhSelector
from cimphys.errors import InputError

# ngspice iterates to reltol 1e-9 (spice.OPTIONS); linear solves are exact to 1e-12, Newton's
# to ~1e-10: 1e-7 of the largest value leaves two decades for ngspice's own stopping rule (the
# tolerance of validation/nonlinear_ngspice.py).
RTOL = 1e-7
NMOS = dict(vto=0.43, kp=115e-6, lambda_=0.06, gamma=0.4, phi=0.6, w=0.5e-6, l=0.25e-6)


def _cases(rng):
    m, n = 5, 4
    g = rng.uniform(1e-6, 1e-4, (m, n))
    yield "linear", Crossbar(g, r_wl=2.0, r_bl=3.0, r_driver=15.0, r_sense=7.0), rng.uniform(0.1, 0.3, m)
    seg_wl, seg_bl = rng.uniform(0.5, 5.0, (m, n)), rng.uniform(0.5, 5.0, (m, n))
    yield ("per_segment", Crossbar(g, r_wl=seg_wl, r_bl=seg_bl, r_driver=rng.uniform(1, 20, m),
                                   r_sense=rng.uniform(1, 20, n)), rng.uniform(0.1, 0.3, m))
    yield ("both_ends_row0_sense", Crossbar(g, r_wl=4.0, r_bl=4.0, r_driver=10.0, wl_drive="both", sense_at="first"),
           rng.uniform(0.1, 0.3, m))
    yield ("sinh", Crossbar(None, r_wl=5.0, r_bl=5.0, r_driver=10.0, r_sense=10.0,
                            cell=SinhCell(k=rng.uniform(2e-6, 2e-5, (m, n)), a=4.0)), rng.uniform(0.1, 0.4, m))
    r = np.where(rng.uniform(size=(m, n)) < 0.7, 1e4, 1e6)
    yield ("1s1r", Crossbar(None, r_wl=2.0, r_bl=2.0, r_sense=100.0,
                            cell=SelectorResistorCell(SinhSelector(i_0=2e-10, v_0=0.0724), r)), np.full(m, 1.0))
    cell = OneTransistorOneResistor(Level1Mosfet(**NMOS), rng.uniform(5e3, 2e4, (m, n)), rng.uniform(1.0, 1.8, m))
    yield "1t1r", Crossbar(None, r_wl=5.0, r_bl=5.0, r_driver=20.0, r_sense=2000.0, cell=cell), rng.uniform(-0.4, 0.5, m)


@pytest.mark.ngspice
def test_to_spice_matches_the_solver_for_every_cell_kind(needs_ngspice, tmp_path):
    for name, xb, v_in in _cases(np.random.default_rng(16)):
        path = xb.to_spice(tmp_path / f"{name}.cir", v_in, title=name)
        assert path.read_text().startswith(f"* {name}")
        v_wl, v_bl, i_out = spice.crossbar_from_values(spice.run_ngspice(path), xb.network)
        sol = xb.solve(v_in)
        for key, ref in (("i_out", i_out), ("v_wl", v_wl), ("v_bl", v_bl)):
            ours = np.asarray(getattr(sol, key))
            err = np.max(np.abs(ours - ref)) / np.max(np.abs(ref))
            assert err < RTOL, (name, key, err)


def test_to_spice_refuses_what_it_cannot_write(tmp_path):
    class Other:
        three_terminal = False

    xb = Crossbar(np.full((2, 2), 1e-5))
    with pytest.raises(InputError, match="v_in"):
        xb.to_spice(tmp_path / "x.cir", [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="no SPICE writer for Other"):
        spice.cells_of(Other(), None, (2, 2))


def test_netlist_text_is_the_array(tmp_path):
    """Without ngspice: one resistor per cell at 1/G, one sense source per column, the drive."""
    g = np.array([[1e-5, 2e-5], [4e-5, 0.0]])
    text = Crossbar(g, r_wl=1.0, r_bl=1.0).to_spice(tmp_path / "a.cir", [0.2, 0.1]).read_text()
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if not line.startswith((".", "*"))}
    assert lines["rc0_1"][:2] == ["w0_1", "b0_1"] and float(lines["rc0_1"][2]) == pytest.approx(5e4, rel=1e-15)
    assert "rc1_1" not in lines  # 0 S: an open cell
    assert float(lines["vin0"][3]) == 0.2 and lines["vs1"] == ["s1", "0", "dc", "0"]


@pytest.mark.ngspice
def test_crossbar_command_writes_a_netlist_ngspice_agrees_with(needs_ngspice, tmp_path, capsys):
    """``cimphys crossbar in.npz --spice out.cir``: the netlist of the solved case, run by ngspice,
    gives the currents the command saved (first input vector), to ngspice's tolerance."""
    import cimphys
    from cimphys.cli import main

    rng = np.random.default_rng(7)
    g, v_in = rng.uniform(1e-6, 1e-4, (6, 5)), rng.uniform(0.0, 0.3, (3, 6))
    np.savez(tmp_path / "case.npz", G=g, v_in=v_in, r_wl=2.0, r_bl=3.0, r_driver=5.0, r_sense=4.0)
    cir = tmp_path / "out" / "case.cir"
    assert main(["crossbar", str(tmp_path / "case.npz"), "-o", str(tmp_path / "out"), "--spice", str(cir)]) == 0
    assert f"wrote {cir}" in capsys.readouterr().out
    saved = cimphys.open(tmp_path / "out" / "crossbar.nc").i_out.values[0]
    values = spice.run_ngspice(cir)
    theirs = np.array([values[f"i(vs{j})"] for j in range(5)])
    np.testing.assert_allclose(theirs, saved, rtol=RTOL)


# ---- .tran: a read pulse on every word line ------------------------------------------------
# The arrays are resistive (no capacitance in the netlist or in the solvers), so at every instant
# ngspice's transient solution is the operating point of the sources' values at that instant:
# the plateau must agree with cimphys's solve of v_in, and a point on the rising edge with the
# solve of v_in * fraction(t), to the .op tolerance RTOL.
PULSE = spice.Pulse(width=20e-9, rise=2e-9, fall=3e-9, delay=1e-9, step=0.5e-9)


@pytest.mark.ngspice
def test_pulse_netlist_matches_the_solver_on_the_plateau_and_the_edge(needs_ngspice, tmp_path):
    for name, xb, v_in in _cases(np.random.default_rng(16)):
        path = xb.to_spice(tmp_path / f"{name}_pulse.cir", v_in, title=name, pulse=PULSE)
        waves = spice.run_transient(path)
        time = waves["time"]
        # .tran honours the stated step: no gap between ngspice's time points exceeds it
        assert time[-1] == pytest.approx(PULSE.t_stop, rel=1e-9) and np.diff(time).max() <= PULSE.t_step * (1 + 1e-9)
        # on the rise: one of ngspice's own time points (between points ngspice's waveform is a
        # straight line, a nonlinear cell's current is not), near the middle of the edge
        on_edge = time[(time > PULSE.delay + 0.2 * PULSE.rise) & (time < PULSE.delay + 0.8 * PULSE.rise)]
        assert on_edge.size, name
        t_edge = float(on_edge[on_edge.size // 2])
        for t, v in ((PULSE.plateau(), v_in), (t_edge, v_in * PULSE.fraction(t_edge))):
            v_wl, v_bl, i_out = spice.crossbar_from_values(spice.at_time(waves, t), xb.network)
            sol = xb.solve(v)
            for key, ref in (("i_out", i_out), ("v_wl", v_wl), ("v_bl", v_bl)):
                ours = np.asarray(getattr(sol, key))
                err = np.max(np.abs(ours - ref)) / np.max(np.abs(ref))
                assert err < RTOL, (name, t, key, err)
        # before the pulse and after its fall every source is at 0 V: no current anywhere
        i_cols = np.array([waves[f"i(vs{j})"] for j in range(xb.shape[1])])
        idle = (time < PULSE.delay) | (time > PULSE.t_stop - PULSE.rise + 1e-15)
        assert idle.any() and np.abs(i_cols[:, idle]).max() < 1e-15, name


def test_pulse_netlist_text_and_bad_pulses(tmp_path):
    """Without ngspice: one PULSE source per driven line (0 V to v_in, delay, edges, width),
    ``.tran`` with the stated step as print and largest step; bad times are refused by name."""
    text = Crossbar(np.full((2, 2), 1e-5), r_wl=1.0, r_bl=1.0).to_spice(
        tmp_path / "p.cir", [0.2, 0.1], pulse=PULSE).read_text()
    src = [line.split(None, 3) for line in text.splitlines() if line.startswith("vin")]
    assert [s[:3] for s in src] == [["vin0", "in0", "0"], ["vin1", "in1", "0"]]
    args = [float(x) for x in src[0][3].removeprefix("pulse(").removesuffix(")").split()]
    assert args[:6] == [0.0, 0.2, 1e-9, 2e-9, 3e-9, 20e-9]
    (tran,) = [line.split()[1:] for line in text.splitlines() if line.startswith("tran ")]
    np.testing.assert_allclose([float(x) for x in tran], [5e-10, 28e-9, 0.0, 5e-10], rtol=1e-12)
    assert "\nop\n" not in text
    assert PULSE.t_stop == pytest.approx(1e-9 + 2e-9 + 20e-9 + 3e-9 + 2e-9)
    np.testing.assert_allclose(PULSE.fraction([0.0, 2e-9, 10e-9, 24.5e-9, 27e-9]), [0.0, 0.5, 1.0, 0.5, 0.0])
    for bad in (dict(width=0.0), dict(width=1e-8, rise=-1e-9), dict(width=1e-8, delay=-1.0),
                dict(width=float("nan")), dict(width=1e-8, step=0.0)):
        with pytest.raises(InputError, match=r"Pulse\.(width|rise|delay|step)"):
            spice.Pulse(**bad)
    with pytest.raises(InputError, match="pulse"):
        Crossbar(np.full((2, 2), 1e-5)).to_spice(tmp_path / "q.cir", [0.1, 0.1], pulse=1e-9)


@pytest.mark.ngspice
def test_crossbar_command_writes_a_pulse_netlist(needs_ngspice, tmp_path, capsys):
    """``--spice out.cir --spice-pulse WIDTH:RISE``: a .tran netlist whose plateau gives the
    currents the command saved; a malformed or lone pulse is one clear error."""
    import cimphys
    from cimphys.cli import main

    rng = np.random.default_rng(8)
    g, v_in = rng.uniform(1e-6, 1e-4, (4, 3)), rng.uniform(0.0, 0.3, (2, 4))
    np.savez(tmp_path / "case.npz", G=g, v_in=v_in, r_wl=2.0, r_bl=3.0)
    cir = tmp_path / "out" / "pulse.cir"
    args = ["crossbar", str(tmp_path / "case.npz"), "-o", str(tmp_path / "out"), "--spice", str(cir)]
    assert main([*args, "--spice-pulse", "20e-9:1e-9"]) == 0
    saved = cimphys.open(tmp_path / "out" / "crossbar.nc").i_out.values[0]
    waves = spice.run_transient(cir)
    at = spice.at_time(waves, spice.Pulse(width=20e-9, rise=1e-9).plateau())
    np.testing.assert_allclose([at[f"i(vs{j})"] for j in range(3)], saved, rtol=RTOL)
    capsys.readouterr()
    for bad, match in (("20e-9", "expected WIDTH:RISE"), ("20e-9:0", "Pulse.rise")):
        assert main([*args, "--spice-pulse", bad]) == 1
        err = capsys.readouterr().err
        assert "InputError: --spice-pulse" in err and match in err, err
    assert main(["crossbar", str(tmp_path / "case.npz"), "-o", str(tmp_path / "out"), "--spice-pulse", "2e-8:1e-9"]) == 1
    assert "without --spice" in capsys.readouterr().err
