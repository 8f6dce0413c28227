"""The linear crossbar against ngspice: the validation campaign and the netlist writer."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits import Crossbar, spice
from cimphys.circuits.nodal import Network
from conftest import load_module

# The campaign's tolerance: ngspice's reltol is 1e-9; we are exact to 1e-12.
RTOL_NGSPICE = 1e-9


@pytest.mark.ngspice
def test_campaign_quick(needs_ngspice, tmp_path):
    campaign = load_module("validation/crossbar_ngspice.py")
    result = campaign.run(tmp_path, quick=True)
    assert result["campaign"] == "crossbar_ngspice" and "ngspice" in result["reference"]
    assert len(result["checks"]) >= 3 * 3 * 2
    for check in result["checks"]:
        assert check["value"] <= check["tolerance"], check
        assert check["passed"], check
    assert result["passed"]
    assert all((tmp_path / p).exists() for p in result["files"])


@pytest.mark.ngspice
def test_sinh_netlist_reproduces_the_reference_case(needs_ngspice, reference_dir, tmp_path):
    """The writer's nonlinear cells (B sources) against the shared ngspice reference."""
    d = np.load(reference_dir / "sinh_16x12_r2.npz")
    net = Network.build(d["k"].shape, d["r_wl"], d["r_bl"], d["r_driver"], d["r_sense"])
    v_wl, v_bl, i_out = spice.simulate(net, d["v_in"], spice.sinh_cells(d["k"], d["a"]), tmp_path)
    assert np.abs(i_out - d["i_out"]).max() < RTOL_NGSPICE * np.abs(d["i_out"]).max()
    assert np.abs(v_bl - d["v_bl"]).max() < RTOL_NGSPICE * np.abs(d["v_bl"]).max()


@pytest.mark.ngspice
def test_floating_lines_and_open_cells(needs_ngspice, rng, tmp_path):
    g = rng.uniform(1e-5, 1e-3, (5, 4))
    g[2, 1] = 0.0
    kw = dict(r_wl=2.0, r_bl=3.0, r_driver=4.0, wl_floating=np.array([0, 0, 1, 0, 0], bool))
    kw["bl_floating"] = np.array([0, 1, 0, 0], bool)
    xb = Crossbar(g, **kw)
    v = rng.uniform(-1, 1, 5)
    ref = spice.simulate(xb.network, v, spice.resistor_cells(g), tmp_path)
    sol = xb.solve(v)
    for ours, theirs in zip((sol.v_wl, sol.v_bl, sol.i_out), ref):
        assert np.abs(ours - theirs).max() <= RTOL_NGSPICE * np.abs(theirs).max()


def test_write_netlist_rejects_bad_input(tmp_path):
    net = Network.build((2, 2))
    with pytest.raises(Exception, match="v_in"):
        spice.write_netlist(tmp_path / "x.cir", net, [0.1, np.nan], spice.resistor_cells(np.ones((2, 2))))
